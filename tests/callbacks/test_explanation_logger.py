"""ExplanationLogger in fit, validate and test, with and without loggers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from callback_helpers import NoisyMethod, cue_data, loaders, tiny_model, trainer
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader

import captum_rnn
from captum_rnn.attr import AttributionMethod
from captum_rnn.callbacks import ExplanationLogger, rank_correlation
from captum_rnn.data import pad_collate


@pytest.fixture
def noisy_registered(monkeypatch):
    monkeypatch.setitem(AttributionMethod._registry, "callback_test_noisy", NoisyMethod)
    NoisyMethod.calls = 0
    return NoisyMethod


def _fit_weights(tmp_path, callbacks, seed=0):
    data = cue_data()
    pl.seed_everything(seed, verbose=False)
    model = tiny_model(len(data.vocab), dropout=0.3, seed=seed)
    train, val = loaders(data.to_dataset())
    # A CSV logger: figures are drawn on the callback's worker thread while training runs.
    csv_logger = CSVLogger(tmp_path, name="run")
    trainer(tmp_path, max_epochs=3, logger=csv_logger, callbacks=callbacks).fit(model, train, val)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_weights_are_bit_identical_with_and_without_the_callback(tmp_path, noisy_registered):
    plain = _fit_weights(tmp_path / "a", [])
    logger_cb = ExplanationLogger(
        range(2), methods=("integrated_gradients", "callback_test_noisy", "gradient_shap")
    )
    explained = _fit_weights(tmp_path / "b", [logger_cb])
    assert noisy_registered.calls == 3  # it ran every epoch and drew random numbers
    assert [r["epoch"] for r in logger_cb.history] == [0, 1, 2]
    assert len(list((tmp_path / "b").rglob("callback_test_noisy.png"))) == 3
    assert plain.keys() == explained.keys()
    for key in plain:
        assert torch.equal(plain[key], explained[key]), key


def test_the_identity_check_can_fail(tmp_path):
    # The same comparison notices a callback that draws from the training's RNG.
    class Careless(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            torch.rand(1)

    plain = _fit_weights(tmp_path / "a", [])
    careless = _fit_weights(tmp_path / "b", [Careless()])
    assert any(not torch.equal(plain[k], careless[k]) for k in plain)


def test_validate_and_test_run_under_default_inference_mode(tmp_path):
    data = cue_data()
    model = tiny_model(len(data.vocab)).eval()
    _, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(5), methods=("integrated_gradients", "saliency"), vocab=data.vocab)
    t = trainer(tmp_path, callbacks=[cb])
    assert t.predict_loop.inference_mode  # Lightning's default
    t.validate(model, val, verbose=False)
    [record] = cb.history
    assert record["stage"] == "validate"
    assert record["explanations/integrated_gradients/mean_abs_delta"] < 1e-2
    # The same explanations as explaining the sequences directly.
    items = [val.dataset[i] for i in range(5)]
    ids = torch.nn.utils.rnn.pad_sequence([s for s, _ in items], batch_first=True)
    direct = captum_rnn.explain(model, ids)
    for logged, expected in zip(cb.last_explanations["integrated_gradients"], direct, strict=True):
        np.testing.assert_allclose(logged.scores, expected.scores, rtol=1e-5, atol=1e-7)
    assert cb.last_explanations["integrated_gradients"][0].tokens[0] in data.vocab

    t.test(model, val, verbose=False)
    assert cb.history[-1]["stage"] == "test"
    assert "explanations_test/saliency/mean_abs_delta" not in cb.history[-1]
    assert "explanations_test/integrated_gradients/mean_abs_delta" in cb.history[-1]


def test_never_runs_in_the_sanity_check_and_follows_every_n_epochs(tmp_path):
    data = cue_data()
    model = tiny_model(len(data.vocab))
    train, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2), every_n_epochs=2, faithfulness=None)
    trainer(tmp_path, max_epochs=5, num_sanity_val_steps=2, callbacks=[cb]).fit(model, train, val)
    assert [r["epoch"] for r in cb.history] == [1, 3]


def test_runs_at_train_epoch_end_when_there_is_no_validation(tmp_path):
    data = cue_data()
    model = tiny_model(len(data.vocab))
    train, _ = loaders(data.to_dataset())
    cb = ExplanationLogger([[4, 5, 6], [7, 8]], faithfulness=None)
    trainer(tmp_path, max_epochs=2, callbacks=[cb]).fit(model, train)
    assert [r["epoch"] for r in cb.history] == [0, 1]
    assert "explanations/integrated_gradients/stability" in cb.history[1]


def test_resuming_from_a_checkpoint_continues_the_schedule(tmp_path):
    data = cue_data()
    train, val = loaders(data.to_dataset())
    checkpoints = tmp_path / "ckpt"

    first = ExplanationLogger(range(3), every_n_epochs=2, faithfulness=None)
    saver = ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0)
    trainer(tmp_path, max_epochs=3, callbacks=[first, saver], enable_checkpointing=True).fit(
        tiny_model(len(data.vocab)), train, val
    )
    assert [r["epoch"] for r in first.history] == [1]

    second = ExplanationLogger(range(3), every_n_epochs=2, faithfulness=None)
    resumed = trainer(tmp_path, max_epochs=6, callbacks=[second], enable_checkpointing=True)
    resumed.fit(
        tiny_model(len(data.vocab), seed=1), train, val, ckpt_path=checkpoints / "last.ckpt"
    )
    assert [r["epoch"] for r in second.history] == [3, 5]
    assert second._num_runs == 3
    # Stability compares with the last log before the checkpoint, restored from it.
    assert "explanations/integrated_gradients/stability" in second.history[0]


def test_fast_dev_run_works_and_writes_nothing(tmp_path):
    data = cue_data()
    train, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2))
    t = pl.Trainer(
        fast_dev_run=True, callbacks=[cb], default_root_dir=tmp_path, enable_progress_bar=False
    )
    t.fit(tiny_model(len(data.vocab)), train, val)
    assert len(cb.history) == 1
    assert not list(tmp_path.rglob("*.png"))


def test_no_logger_keeps_results_in_memory(tmp_path):
    data = cue_data()
    train, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2), faithfulness=None)
    trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb]).fit(
        tiny_model(len(data.vocab)), train, val
    )
    assert len(cb.last_explanations["integrated_gradients"]) == 2
    assert not list(tmp_path.rglob("*.png"))


def test_csv_logger_gets_png_json_and_scalars(tmp_path):
    data = cue_data()
    train, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(3), methods=("integrated_gradients", "saliency"), vocab=data.vocab)
    csv_logger = CSVLogger(tmp_path, name="run")
    trainer(tmp_path, max_epochs=2, logger=csv_logger, callbacks=[cb]).fit(
        tiny_model(len(data.vocab)), train, val
    )
    folder = tmp_path / "run" / "version_0" / "explanations"
    steps = sorted(p.name for p in folder.iterdir())
    assert len(steps) == 2
    last = folder / steps[-1]
    assert (last / "integrated_gradients.png").read_bytes()[:4] == b"\x89PNG"
    assert (last / "saliency.png").exists()
    document = json.loads((last / "integrated_gradients.json").read_text())
    assert document["method"] == "integrated_gradients" and document["indices"] == [0, 1, 2]
    restored = captum_rnn.Explanation.from_dict(document["explanations"][0])
    assert restored.tokens == cb.last_explanations["integrated_gradients"][0].tokens
    table = json.loads((last / "table.json").read_text())
    assert table["columns"][:2] == ["sample", "method"] and len(table["rows"]) == 6
    with open(tmp_path / "run" / "version_0" / "metrics.csv") as handle:
        header = next(csv.reader(handle))
    assert "explanations/integrated_gradients/mean_abs_delta" in header
    assert "explanations/saliency/stability" in header
    assert "explanations/integrated_gradients/comprehensiveness" in header  # faithfulness="auto"


def test_probe_forms_give_the_same_explanations(tmp_path):
    data = cue_data()
    model = tiny_model(len(data.vocab)).eval()
    dataset = data.to_dataset()
    texts = [" ".join(data.vocab.decode(dataset[i][0])) for i in range(3)]
    batch = pad_collate([dataset[i] for i in range(3)])
    forms = {
        "strings": texts,
        "id lists": [dataset[i][0].tolist() for i in range(3)],
        "batch": batch,
        "loader": DataLoader(dataset, batch_size=2, collate_fn=pad_collate),
        "dataset": dataset,
    }
    results = {}
    for name, samples in forms.items():
        cb = ExplanationLogger(samples, max_samples=3, vocab=data.vocab, faithfulness=None)
        trainer(tmp_path, callbacks=[cb]).validate(
            model, DataLoader(dataset, batch_size=8, collate_fn=pad_collate), verbose=False
        )
        results[name] = cb.last_explanations["integrated_gradients"]
    reference = results.pop("batch")
    for name, explanations in results.items():
        assert len(explanations) == 3, name
        for got, want in zip(explanations, reference, strict=True):
            assert got.tokens == want.tokens, name
            np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-7, err_msg=name)
    assert reference[0].label == int(dataset[0][1])


def test_target_label_explains_the_true_class(tmp_path):
    data = cue_data()
    model = tiny_model(len(data.vocab)).eval()
    _, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(6), target="label", faithfulness=None)
    trainer(tmp_path, callbacks=[cb]).validate(model, val, verbose=False)
    explanations = cb.last_explanations["integrated_gradients"]
    assert [e.target for e in explanations] == [int(val.dataset[i][1]) for i in range(6)]


def test_unknown_method_is_refused_when_training_starts_with_the_available_list(tmp_path):
    data = cue_data()
    train, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2), methods=("integrated_gradients", "no_such_method"))
    with pytest.raises(ValueError, match=r"no_such_method.*available: \[.*integrated_gradients"):
        trainer(tmp_path, callbacks=[cb]).fit(tiny_model(len(data.vocab)), train, val)


def test_unknown_metric_is_refused_with_the_available_list(tmp_path):
    data = cue_data()
    _, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2), faithfulness="no_such_metric")
    with pytest.raises(ValueError, match="no_such_metric.*available"):
        trainer(tmp_path, callbacks=[cb]).validate(tiny_model(len(data.vocab)), val, verbose=False)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(samples=None), ValueError),
        (dict(samples=range(2), every_n_epochs=0), ValueError),
        (dict(samples=range(2), max_samples=0), ValueError),
        (dict(samples=range(2), methods=()), TypeError),
        (dict(samples=range(2), target="predicted"), ValueError),
        (dict(samples=range(2), method_kwargs={"saliency": {}}), ValueError),
    ],
)
def test_bad_arguments_are_refused(kwargs, error):
    with pytest.raises(error):
        ExplanationLogger(**kwargs)


def test_a_method_registered_by_subclassing_is_available_by_name(tmp_path, monkeypatch):
    from captum_rnn.attr import MethodResult, available_methods
    from captum_rnn.callbacks import available_explainers

    monkeypatch.setattr(AttributionMethod, "_registry", dict(AttributionMethod._registry))

    class FirstStep(AttributionMethod):
        """All the credit to the first step."""

        name = "callback_test_first_step"
        uses_gradients = False

        def attribute(self, inputs, baselines, target, lengths, **kwargs):
            out = torch.zeros_like(inputs)
            out[:, 0] = 1.0 / inputs.shape[-1]
            return MethodResult(out)

    assert "callback_test_first_step" in available_methods()
    assert available_explainers() == available_methods() + ["nearest_examples"]
    data = cue_data()
    model = tiny_model(len(data.vocab)).eval()
    _, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(3), methods=("callback_test_first_step",), faithfulness=None)
    trainer(tmp_path, callbacks=[cb]).validate(model, val, verbose=False)
    explanations = cb.last_explanations["callback_test_first_step"]
    assert len(explanations) == 3
    for e in explanations:
        assert e.method == "callback_test_first_step"
        np.testing.assert_allclose(e.scores, [1.0] + [0.0] * (len(e.scores) - 1), atol=1e-12)


def test_rank_correlation():
    assert rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 1, 2], [1, 2, 3]) == pytest.approx(np.sqrt(3) / 2)
    assert np.isnan(rank_correlation([1.0], [2.0]))
    assert np.isnan(rank_correlation([1, 1], [1, 2]))


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_mixed_precision_training_explains_in_full_precision(tmp_path, precision):
    data = cue_data()
    train, val = loaders(data.to_dataset())
    model = tiny_model(len(data.vocab))
    cb = ExplanationLogger(range(3), faithfulness=None)
    trainer(tmp_path, max_epochs=1, precision=precision, callbacks=[cb]).fit(model, train, val)
    explanations = cb.last_explanations["integrated_gradients"]
    model.eval()
    ids = torch.nn.utils.rnn.pad_sequence([val.dataset[i][0] for i in range(3)], batch_first=True)
    direct = captum_rnn.explain(model, ids)
    for got, want in zip(explanations, direct, strict=True):
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-7)


def test_predict_with_the_logger_attached_does_nothing(tmp_path):
    data = cue_data()
    _, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2))
    predictions = trainer(tmp_path, callbacks=[cb]).predict(tiny_model(len(data.vocab)), val)
    assert len(predictions) == 1 and cb.history == []
