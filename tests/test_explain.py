import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import captum_rnn
from captum_rnn import Explanation, explain
from captum_rnn.attr import available_methods
from captum_rnn.data import PadCollate, Vocabulary

from conftest import average_precision, continuous_model, padded_batch, token_model


def _scores(explanations):
    return [torch.tensor(e.scores) for e in explanations]


def _model_state(model):
    """Everything explaining must leave as it was."""
    return {
        "params": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
        "dropout": [getattr(m, "dropout", None) for m in model.modules()],
        "grad": [p.grad for p in model.parameters()],
    }


def _assert_same_state(a, b):
    assert a["params"].keys() == b["params"].keys()
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k
    for key in ("training", "requires_grad", "hooks", "dropout"):
        assert a[key] == b[key], key
    assert all(g is None for g in b["grad"])


@pytest.mark.parametrize("method", sorted(set(available_methods()) - {"ig"}))
def test_every_method_gives_one_score_per_real_token(method):
    model = token_model("lstm-bi-additive")
    ids, lengths = padded_batch(batch=3)
    explanations = (
        explain(model, ids, method=method, n_samples=40)
        if method in ("lime", "kernel_shap", "gradient_shap")
        else explain(model, ids, method=method)
    )
    assert [len(e) for e in explanations] == lengths.tolist()
    for e, row, n in zip(explanations, ids, lengths, strict=True):
        assert e.tokens == [str(int(t)) for t in row[:n]]
        assert all(isinstance(s, float) for s in e.scores)
        assert e.method in available_methods()


def test_padding_invariance_of_ig(any_token_model):
    ids, lengths = padded_batch(batch=1, max_len=7)
    own = explain(any_token_model, ids)
    padded = torch.cat([ids, torch.zeros(1, 21, dtype=torch.long)], dim=1)
    four_times = explain(any_token_model, padded)
    torch.testing.assert_close(_scores(own)[0], _scores(four_times)[0], atol=1e-5, rtol=0)


def test_padded_positions_are_exactly_zero_in_raw_attributions():
    model = token_model("gru-dot")
    ids, lengths = padded_batch()
    for method in ("integrated_gradients", "saliency", "deeplift", "occlusion"):
        result = captum_rnn.attr.get_method(method)(model, ids=ids).attribute(
            model.embedding(ids).detach(),
            torch.zeros(*ids.shape, 8),
            torch.zeros(4).long(),
            lengths,
        )
        assert (result.attributions[ids == 0] == 0).all(), method


def test_batch_equals_each_sequence_alone(any_token_model):
    ids, lengths = padded_batch(batch=4)
    batch = explain(any_token_model, ids, target=1)
    for i in range(4):
        [alone] = explain(any_token_model, ids[i, : lengths[i]], target=1)
        torch.testing.assert_close(
            torch.tensor(alone.scores), torch.tensor(batch[i].scores), atol=1e-5, rtol=0
        )
        assert alone.delta == pytest.approx(batch[i].delta, abs=1e-5)


def test_completeness_on_trained_model_with_adaptive_steps(cue_task):
    model, data = cue_task
    ids = torch.nn.utils.rnn.pad_sequence(data.sequences[:16], batch_first=True)
    rtol, atol = 0.01, 1e-4
    explanations = explain(model, ids, n_steps=4, max_steps=512, rtol=rtol, atol=atol)
    raised = [e.n_steps for e in explanations]
    assert max(raised) > 4  # four steps are too few on a trained LSTM: explain raised them
    with torch.no_grad():
        lengths = model.lengths_of(ids)
        out = model(ids)
        base = model(model.embedding(torch.zeros_like(ids)), lengths)
    for i, e in enumerate(explanations):
        difference = float(out[i, e.target] - base[i, e.target])
        assert sum(e.scores) - difference == pytest.approx(e.delta, abs=1e-4)
        assert abs(e.delta) <= rtol * abs(difference) + atol
    print(
        f"steps used: {sorted(raised)}; max |delta| {max(abs(e.delta) for e in explanations):.2e}"
    )


def test_ig_finds_planted_cues(cue_task):
    model, data = cue_task
    ids = torch.nn.utils.rnn.pad_sequence(data.sequences, batch_first=True)
    labels = torch.tensor(data.labels)
    with torch.no_grad():
        accuracy = float((model(ids).argmax(-1) == labels).float().mean())
    assert accuracy > 0.95
    explanations = explain(model, ids, target=labels)
    scores = torch.cat([torch.tensor(e.scores) for e in explanations])
    relevant = torch.cat(data.masks).float()
    auprc = average_precision(scores, relevant)
    chance = float(relevant.mean())
    print(f"IG AUPRC on planted cues: {auprc:.3f} (chance {chance:.3f}, accuracy {accuracy:.3f})")
    assert auprc > 0.9 and auprc > 5 * chance


def test_explaining_changes_nothing():
    model = token_model("lstm-bi-additive").train()
    ids, _ = padded_batch()
    before = _model_state(model)
    for method in ("integrated_gradients", "deeplift", "lime"):
        explain(model, ids, method=method, **({"n_samples": 20} if method == "lime" else {}))
    _assert_same_state(before, _model_state(model))
    assert model.training


def test_explaining_changes_nothing_when_attribution_raises():
    model = token_model("gru-bi-mean").eval()
    ids, _ = padded_batch()
    calls = {"n": 0}

    def explode(module, args, output):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("boom")

    handle = model.head.register_forward_hook(explode)
    try:
        before = _model_state(model)
        for method in ("deeplift", "integrated_gradients"):
            calls["n"] = 0
            with pytest.raises(RuntimeError, match="boom"):
                explain(model, ids, method=method)
            _assert_same_state(before, _model_state(model))
    finally:
        handle.remove()
    assert torch.is_grad_enabled()


def test_explain_inside_inference_mode_on_tensors_made_there():
    model = token_model("lstm-last")
    with torch.inference_mode():
        ids, _ = padded_batch()
        ids = ids.clone()  # an inference tensor
        assert ids.is_inference()
        explanations = explain(model, ids)
        assert torch.is_inference_mode_enabled()
    reference = explain(model, padded_batch()[0])
    for a, b in zip(explanations, reference, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-6)


class _ExplainingClassifier(captum_rnn.models.RNNClassifier):
    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        x, lengths, _ = self.unpack_batch(batch)
        return explain(self, x, lengths=lengths)


def test_explain_in_trainer_predict_under_inference_mode(tmp_path):
    torch.manual_seed(0)
    model = _ExplainingClassifier(2, vocab_size=30, embedding_dim=8, hidden_size=12)
    ids, lengths = padded_batch()
    data = [(ids[i, : lengths[i]], torch.tensor(0)) for i in range(4)]
    loader = DataLoader(data, batch_size=2, collate_fn=PadCollate())
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    assert trainer.predict_loop.inference_mode
    out = trainer.predict(model, loader)
    assert [len(e) for batch in out for e in batch] == lengths.tolist()


def test_continuous_regression_explanation():
    model = continuous_model(cell="rnn")
    x = torch.randn(2, 6, 3)
    explanations = explain(model, x, lengths=[6, 4], feature_names=["a", "b", "c"])
    e = explanations[1]
    assert len(e.tokens) == 4 and len(e.feature_scores) == 4 and len(e.feature_scores[0]) == 3
    assert e.predicted is None and e.target == 0
    assert sum(e.scores) == pytest.approx(sum(map(sum, e.feature_scores)))
    fig = e.plot()
    assert fig.axes


def test_string_input_with_vocabulary():
    vocab = Vocabulary(["a", "good", "film", "bad"])
    torch.manual_seed(0)
    model = captum_rnn.models.RNNClassifier(
        2, vocab_size=len(vocab), embedding_dim=4, hidden_size=6
    )
    explanations = explain(model, ["a good film", "bad"], vocab=vocab, labels=[1, 0])
    assert explanations[0].tokens == ["a", "good", "film"]
    assert explanations[1].tokens == ["bad"] and explanations[1].label == 0
    assert isinstance(explanations[0], Explanation)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m: explain(m, torch.tensor([[2.0, 3.0]])), TypeError, "token ids"),
        (lambda m: explain(m, torch.ones(2, 3, 4, dtype=torch.long)), ValueError, "inputs must be"),
        (lambda m: explain(m, torch.tensor([[2, 99]])), ValueError, "outside the vocabulary"),
        (lambda m: explain(m, torch.tensor([[2, 3], [0, 0]])), ValueError, r"inputs\[1\] is empty"),
        (lambda m: explain(m, [[2, 3], []]), ValueError, r"inputs\[1\] is empty"),
        (lambda m: explain(m, torch.zeros(1, 0, dtype=torch.long)), ValueError, "empty"),
        (lambda m: explain(m, ["good"]), TypeError, "vocab"),
        (lambda m: explain(m, torch.tensor([[2, 3]]), method="magic"), ValueError, "method must"),
        (lambda m: explain(m, torch.tensor([[2, 3]]), target=5), ValueError, "target must"),
        (lambda m: explain(m, torch.tensor([[2, 3]]), target=0.5), TypeError, "target must"),
        (
            lambda m: explain(m, torch.tensor([[2, 3]]), baselines=torch.zeros(1, 5, 8)),
            ValueError,
            "baselines must have shape",
        ),
        (
            lambda m: explain(m, torch.tensor([[2, 3]]), baselines=torch.zeros(1, 4).long()),
            ValueError,
            "baselines of token ids",
        ),
        (lambda m: explain(m, torch.tensor([[2, 3]]), lengths=[3]), ValueError, "lengths"),
        (lambda m: explain(m, torch.tensor([[2, 3]]), n_steps=1), ValueError, "n_steps"),
        (lambda m: explain(torch.nn.Linear(2, 2), torch.ones(1, 2)), ValueError, "batch_first"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(token_model("lstm-last"))


def test_bad_continuous_input():
    model = continuous_model()
    x = torch.randn(1, 4, 3)
    x[0, 2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        explain(model, x)
    with pytest.raises(ValueError, match=r"\(batch, time, 3\)"):
        explain(model, torch.randn(1, 4, 5))
    with pytest.raises(TypeError, match="float tensor"):
        explain(model, torch.ones(1, 4, 3, dtype=torch.long))


def test_baseline_token_and_explicit_ids_agree():
    model = token_model("lstm-last")
    ids, _ = padded_batch(batch=1)
    baseline_ids = torch.where(ids == 0, ids, torch.ones_like(ids))
    a = explain(model, ids, baselines=1)
    b = explain(model, ids, baselines=baseline_ids)
    assert a[0].scores == pytest.approx(b[0].scores, abs=1e-7)


def test_results_are_deterministic():
    model = token_model("gru-dot")
    ids, _ = padded_batch()
    for method, kw in (("gradient_shap", {}), ("lime", {"n_samples": 30})):
        torch.manual_seed(1)
        a = explain(model, ids, method=method, **kw)
        torch.manual_seed(2)
        b = explain(model, ids, method=method, **kw)
        assert [e.scores for e in a] == [e.scores for e in b]


@pytest.mark.gpu
def test_explain_on_cuda_in_eval_mode():
    # cuDNN refuses RNN backward in eval mode; the gradient context makes it work.
    model = token_model("lstm-bi-additive").cuda().eval()
    ids, _ = padded_batch()
    cpu = explain(token_model("lstm-bi-additive"), ids)
    gpu = explain(model, ids.cuda())
    for a, b in zip(cpu, gpu, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-4)
    assert not model.training and all(not m.training for m in model.modules())
    assert model.rnn.dropout == 0.0


@pytest.mark.parametrize(
    "method", ["integrated_gradients", "attention_rollout", "gradient_attention_rollout"]
)
def test_transformer_explains_like_the_recurrent_models(method):
    from captum_rnn.models import TransformerClassifier

    torch.manual_seed(0)
    model = TransformerClassifier(2, vocab_size=20, num_layers=2, num_heads=2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    padded = captum_rnn.explain(model, torch.tensor([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]]), method)
    alone = captum_rnn.explain(model, torch.tensor([[3, 4, 5]]), method)
    assert len(padded[0].scores) == 3  # padding stripped
    assert padded[0].scores == pytest.approx(alone[0].scores, abs=1e-5)
    assert any(abs(s) > 0 for s in padded[1].scores)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    if method == "integrated_gradients":
        assert abs(padded[0].delta) < 0.05


@pytest.mark.parametrize("method", ["feature_ablation", "occlusion", "lime"])
def test_perturbation_methods_score_single_cells_of_continuous_input(method):
    model = continuous_model(seed=1)
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([6, 4])
    kwargs = {"n_samples": 60} if method == "lime" else {}
    step = explain(model, x, method, lengths=lengths, features="step", **kwargs)
    cell = explain(model, x, method, lengths=lengths, features="cell", **kwargs)
    default = explain(model, x, method, lengths=lengths, **kwargs)
    step_grid = torch.tensor(step[0].feature_scores)
    cell_grid = torch.tensor(cell[1].feature_scores)
    # per step: every feature of a step shares its score; per cell: they differ
    assert torch.allclose(step_grid, step_grid[:, :1].expand_as(step_grid))
    assert cell_grid.shape == (4, 3)
    assert not torch.allclose(cell_grid, cell_grid[:, :1].expand_as(cell_grid))
    # multivariate continuous input is scored per cell unless features="step" is asked
    for d, c in zip(default, cell, strict=True):
        torch.testing.assert_close(torch.tensor(d.feature_scores), torch.tensor(c.feature_scores))
    with pytest.raises(ValueError, match="features"):
        explain(model, x, method, lengths=lengths, features="token")
    with pytest.raises(TypeError, match="feature_mask"):
        explain(model, x, method, lengths=lengths, feature_mask=torch.zeros(1, 6, 3))
