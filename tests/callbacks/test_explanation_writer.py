"""ExplanationWriter + ExplainingModule + read_explanations under trainer.predict."""

from __future__ import annotations

import os

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from callback_helpers import cue_data, tiny_model, trainer
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader

import captum_rnn
from captum_rnn.callbacks import (
    ExplainingModule,
    ExplanationWriter,
    explain_batch,
    read_explanations,
)
from captum_rnn.data import SequenceDataset, pad_collate
from captum_rnn.models import RNNRegressor


@pytest.fixture(scope="module")
def setting():
    data = cue_data(n=37)
    model = tiny_model(len(data.vocab), attention="additive").eval()
    dataset = data.to_dataset()
    ids = torch.nn.utils.rnn.pad_sequence([s for s, _ in dataset], batch_first=True)
    with torch.random.fork_rng():
        reference = captum_rnn.explain(model, ids, vocab=data.vocab, n_steps=16)
    return data, model, dataset, reference


def _assert_same(got, reference, atol=1e-6):
    assert len(got) == len(reference)
    for i, (g, r) in enumerate(zip(got, reference, strict=True)):
        assert g.extra["index"] == i
        assert g.tokens == r.tokens
        assert g.target == r.target and g.predicted == r.predicted
        np.testing.assert_allclose(g.scores, r.scores, rtol=1e-5, atol=atol)
        assert g.delta == pytest.approx(r.delta, abs=1e-5)


def _predict(tmp_path, module, loader, writer, **kwargs):
    t = trainer(tmp_path, callbacks=[writer], **kwargs)
    assert t.predict_loop.inference_mode  # Lightning's default
    return t.predict(module, dataloaders=loader, return_predictions=False)


def test_writer_explains_every_sequence_in_dataset_order(tmp_path, setting):
    data, model, dataset, reference = setting
    # A shuffled loader: the shards must still be keyed by dataset index.
    loader = DataLoader(
        dataset,
        batch_size=8,
        shuffle=True,
        generator=torch.Generator().manual_seed(3),
        collate_fn=pad_collate,
    )
    out = tmp_path / "out"
    writer = ExplanationWriter(out)
    _predict(tmp_path, ExplainingModule(model, vocab=data.vocab, n_steps=16), loader, writer)
    shards = sorted(p.name for p in out.glob("*.npz"))
    assert len(shards) == 5 and all("-rank000-" in s for s in shards)
    assert not [p for p in out.iterdir() if p.suffix not in (".npz", ".json")]
    for path in out.glob("*.npz"):
        with np.load(path, allow_pickle=False) as shard:
            assert all(shard[k].dtype != object for k in shard.files)
    merged = read_explanations(out)
    _assert_same(merged, reference)
    assert merged[0].method == "integrated_gradients"
    arrays = read_explanations(out, as_arrays=True)
    assert arrays["index"].tolist() == list(range(len(dataset)))
    assert arrays["label"].tolist() == [int(y) for _, y in dataset]


def test_plain_model_and_epoch_interval_give_the_same_shards(tmp_path, setting):
    data, model, dataset, reference = setting
    loader = DataLoader(dataset, batch_size=10, collate_fn=pad_collate)
    writer = ExplanationWriter(tmp_path / "plain", method="ig", vocab=data.vocab, n_steps=16)
    _predict(tmp_path, model, loader, writer)
    _assert_same(read_explanations(tmp_path / "plain"), reference)

    writer = ExplanationWriter(tmp_path / "epoch", write_interval="epoch")
    _predict(tmp_path, ExplainingModule(model, vocab=data.vocab, n_steps=16), loader, writer)
    assert len(list((tmp_path / "epoch").glob("*.npz"))) == 1
    _assert_same(read_explanations(tmp_path / "epoch"), reference)


def test_existing_shards_are_refused_unless_overwrite(tmp_path, setting):
    data, model, dataset, _ = setting
    loader = DataLoader(dataset, batch_size=20, collate_fn=pad_collate)
    module = ExplainingModule(model, method="saliency")
    _predict(tmp_path, module, loader, ExplanationWriter(tmp_path / "out"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _predict(tmp_path, module, loader, ExplanationWriter(tmp_path / "out"))
    small = DataLoader(
        torch.utils.data.Subset(dataset, range(5)), batch_size=2, collate_fn=pad_collate
    )
    _predict(tmp_path, module, small, ExplanationWriter(tmp_path / "out", overwrite=True))
    assert len(read_explanations(tmp_path / "out")) == 5  # nothing left of the first run


def test_duplicate_indices_are_reported(tmp_path, setting):
    data, model, dataset, _ = setting
    loader = DataLoader(
        torch.utils.data.Subset(dataset, range(4)), batch_size=4, collate_fn=pad_collate
    )
    _predict(
        tmp_path,
        ExplainingModule(model, method="saliency"),
        loader,
        ExplanationWriter(tmp_path / "out"),
    )
    [shard] = (tmp_path / "out").glob("*.npz")
    # A shard no manifest records (here of a rank the run did not have) is reported...
    twin = shard.with_name(shard.name.replace("rank000", "rank001"))
    os.link(shard, twin)
    with pytest.raises(ValueError, match="world_size mismatch.*rank001-batch0000000"):
        read_explanations(tmp_path / "out")
    # ...and, read anyway, the same sequence explained twice is kept once...
    with pytest.warns(UserWarning, match="no manifest records"):
        arrays = read_explanations(tmp_path / "out", as_arrays=True, strict=False)
    assert arrays["index"].tolist() == [0, 1, 2, 3]
    # ...but two different explanations of one index are refused.
    twin.unlink()
    with np.load(shard, allow_pickle=False) as loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    arrays["scores"] = arrays["scores"] + 1.0
    np.savez(twin, **arrays)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="written more than once"):
        read_explanations(tmp_path / "out", strict=False)


def test_progress_bar_reads_explaining_and_is_restored(tmp_path, setting):
    data, model, dataset, _ = setting
    seen = []

    class Spy(Callback):
        def on_predict_batch_end(self, trainer, *args, **kwargs):
            seen.append(trainer.progress_bar_callback.predict_description)

    loader = DataLoader(dataset, batch_size=20, collate_fn=pad_collate)
    writer = ExplanationWriter(tmp_path / "out")
    t = trainer(tmp_path, callbacks=[writer, Spy()], enable_progress_bar=True)
    t.predict(
        ExplainingModule(model, method="saliency"), dataloaders=loader, return_predictions=False
    )
    assert seen == ["Explaining", "Explaining"]
    assert t.progress_bar_callback.predict_description == "Predicting"


def test_return_predictions_true_warns_about_memory(tmp_path, setting):
    data, model, dataset, _ = setting
    loader = DataLoader(dataset, batch_size=20, collate_fn=pad_collate)
    t = trainer(tmp_path, callbacks=[ExplanationWriter(tmp_path / "out")])
    with pytest.warns(UserWarning, match="return_predictions=False"):
        predictions = t.predict(ExplainingModule(model, method="saliency"), dataloaders=loader)
    assert sum(len(p["lengths"]) for p in predictions) == len(dataset)


def test_several_dataloaders_are_read_one_at_a_time(tmp_path, setting):
    data, model, dataset, reference = setting
    first = DataLoader(
        torch.utils.data.Subset(dataset, range(6)), batch_size=4, collate_fn=pad_collate
    )
    second = DataLoader(
        torch.utils.data.Subset(dataset, range(6, 9)), batch_size=4, collate_fn=pad_collate
    )
    _predict(
        tmp_path,
        ExplainingModule(model, n_steps=16),
        [first, second],
        ExplanationWriter(tmp_path / "out"),
    )
    with pytest.raises(ValueError, match="dataloader_idx"):
        read_explanations(tmp_path / "out")
    got = read_explanations(tmp_path / "out", dataloader_idx=1)
    assert len(got) == 3
    np.testing.assert_allclose(got[0].scores, reference[6].scores, rtol=1e-5, atol=1e-6)


def test_continuous_regressor_round_trips_feature_scores(tmp_path):
    torch.manual_seed(0)
    model = RNNRegressor(input_size=3, hidden_size=6).eval()
    g = torch.Generator().manual_seed(0)
    sequences = [
        torch.randn(int(n), 3, generator=g) for n in torch.randint(2, 7, (9,), generator=g)
    ]
    dataset = SequenceDataset(sequences, torch.randn(9, generator=g).tolist())
    loader = DataLoader(dataset, batch_size=4, collate_fn=pad_collate)
    _predict(
        tmp_path, ExplainingModule(model, n_steps=16), loader, ExplanationWriter(tmp_path / "out")
    )
    got = read_explanations(tmp_path / "out")
    inputs, lengths, _ = pad_collate(list(dataset))
    direct = captum_rnn.explain(model, inputs, lengths=lengths, n_steps=16)
    for g_, d in zip(got, direct, strict=True):
        np.testing.assert_allclose(g_.feature_scores, d.feature_scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g_.scores, d.scores, rtol=1e-5, atol=1e-6)
        assert g_.tokens == d.tokens


def test_explain_batch_under_inference_mode_changes_nothing(setting):
    data, model, dataset, reference = setting
    batch = pad_collate([dataset[i] for i in range(4)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        arrays = explain_batch(model, batch, "integrated_gradients", n_steps=16)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    for i in range(4):
        n = arrays["lengths"][i]
        np.testing.assert_allclose(
            arrays["scores"][i, :n], reference[i].scores, rtol=1e-5, atol=1e-6
        )
        assert (arrays["scores"][i, n:] == 0).all()


def test_bad_arguments(tmp_path, setting):
    data, model, dataset, _ = setting
    with pytest.raises(ValueError, match="write_interval"):
        ExplanationWriter(tmp_path, write_interval="sometimes")
    loader = DataLoader(dataset, batch_size=20, collate_fn=pad_collate)
    with pytest.raises(ValueError, match="no_such_method.*available"):
        _predict(
            tmp_path,
            ExplainingModule(model, method="no_such_method"),
            loader,
            ExplanationWriter(tmp_path / "a"),
        )
    with pytest.raises(ValueError, match="differs"):
        _predict(
            tmp_path,
            ExplainingModule(model),
            loader,
            ExplanationWriter(tmp_path / "b", method="saliency"),
        )
    with pytest.raises(ValueError, match="write_interval='batch'"):
        _predict(tmp_path, model, loader, ExplanationWriter(tmp_path / "c", write_interval="epoch"))
    with pytest.raises(FileNotFoundError):
        read_explanations(tmp_path / "empty")


def _ddp_predict(tmp_path, strategy, model, dataset, vocab):
    loader = DataLoader(dataset, batch_size=6, collate_fn=pad_collate)
    environment = dict(os.environ)
    try:
        t = pl.Trainer(
            accelerator="cpu",
            devices=2,
            strategy=strategy,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
            callbacks=[ExplanationWriter(tmp_path / strategy)],
        )
        t.predict(
            ExplainingModule(model, vocab=vocab, n_steps=16),
            dataloaders=loader,
            return_predictions=False,
        )
    finally:  # the launcher leaves MASTER_PORT and friends behind
        os.environ.clear()
        os.environ.update(environment)
    return tmp_path / strategy


def _check_ddp_output(out, reference, size):
    shards = sorted(out.glob("*.npz"))
    ranks = {p.name.split("-")[2] for p in shards}
    assert ranks == {"rank000", "rank001"}
    written = np.concatenate([np.load(p, allow_pickle=False)["index"] for p in shards])
    assert sorted(written.tolist()) == list(range(size))  # each index exactly once
    _assert_same(read_explanations(out), reference)


def test_two_process_ddp_writes_each_index_once_and_matches_one_process(tmp_path, setting):
    data, model, dataset, reference = setting
    out = _ddp_predict(tmp_path, "ddp_fork", model, dataset, data.vocab)
    _check_ddp_output(out, reference, len(dataset))


@pytest.mark.slow
def test_two_process_ddp_spawn_matches_one_process(tmp_path, setting):
    # Spawned workers receive the module and writer pickled: the path real jobs take.
    data, model, dataset, reference = setting
    out = _ddp_predict(tmp_path, "ddp_spawn", model, dataset, data.vocab)
    _check_ddp_output(out, reference, len(dataset))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["32-true", "16-mixed"])
def test_cuda_predict_and_validate_match_cpu(tmp_path, setting, precision):
    from captum_rnn.callbacks import ExplanationLogger

    data, model, dataset, reference = setting
    gpu_model = tiny_model(len(data.vocab), attention="additive").eval()
    gpu_model.load_state_dict(model.state_dict())
    loader = DataLoader(dataset, batch_size=8, collate_fn=pad_collate)
    logger_cb = ExplanationLogger(range(4), method_kwargs={"integrated_gradients": {"n_steps": 16}})
    t = trainer(
        tmp_path,
        accelerator="gpu",
        devices=1,
        precision=precision,
        callbacks=[ExplanationWriter(tmp_path / "out"), logger_cb],
    )
    t.predict(
        ExplainingModule(gpu_model, vocab=data.vocab, n_steps=16), loader, return_predictions=False
    )
    _assert_same(read_explanations(tmp_path / "out"), reference, atol=1e-4)
    t.validate(gpu_model, loader, verbose=False)
    for got, want in zip(
        logger_cb.last_explanations["integrated_gradients"], reference, strict=False
    ):
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-3, atol=1e-4)
    assert all(not m.training for m in gpu_model.modules())


def test_mixed_precision_predict_explains_in_full_precision(tmp_path, setting):
    data, model, dataset, reference = setting
    loader = DataLoader(dataset, batch_size=8, collate_fn=pad_collate)
    writer = ExplanationWriter(tmp_path / "out")
    _predict(
        tmp_path,
        ExplainingModule(model, vocab=data.vocab, n_steps=16),
        loader,
        writer,
        precision="bf16-mixed",
    )
    _assert_same(read_explanations(tmp_path / "out"), reference)


def test_nothing_accumulates_in_memory_while_predicting(tmp_path, setting):
    data, model, dataset, _ = setting
    held = []

    class Spy(Callback):
        def on_predict_batch_end(self, trainer, *args, **kwargs):
            loop = trainer.predict_loop
            held.append(
                sum(len(p) for p in loop._predictions)
                + sum(len(b) for b in loop.epoch_batch_indices)
            )

    loader = DataLoader(dataset, batch_size=4, collate_fn=pad_collate)
    writer = ExplanationWriter(tmp_path / "out")
    t = trainer(tmp_path, callbacks=[writer, Spy()])
    t.predict(
        ExplainingModule(model, method="saliency"), dataloaders=loader, return_predictions=False
    )
    assert len(held) == 10 and set(held) == {0}
    assert len(list((tmp_path / "out").glob("*.npz"))) == 10
