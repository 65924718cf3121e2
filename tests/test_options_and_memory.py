"""Options are checked with their valid range; IG's memory is bounded by chunking."""

from __future__ import annotations

import pytest
import torch

import captum_rnn
from captum_rnn.attr._methods import activation_bytes
from captum_rnn.models import RNNClassifier, adapt


def _model():
    torch.manual_seed(0)
    return RNNClassifier(2, vocab_size=30, hidden_size=6, embedding_dim=4, cell="gru").eval()


def _ids(batch=6, time=7):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 30, (batch, time), generator=g)
    ids[1, 5:] = 0
    ids[3, 2:] = 0
    return ids


@pytest.mark.parametrize(
    ("method", "option", "value"),
    [
        ("integrated_gradients", "n_steps", 2.5),
        ("integrated_gradients", "n_steps", 1),
        ("integrated_gradients", "max_steps", 4),
        ("integrated_gradients", "rtol", float("nan")),
        ("integrated_gradients", "atol", float("inf")),
        ("integrated_gradients", "internal_batch_size", 0),
        ("integrated_gradients", "memory_budget", 0),
        ("gradient_shap", "n_samples", 0),
        ("lime", "n_samples", 0),
        ("kernel_shap", "n_samples", True),
        ("occlusion", "window", 0),
        ("occlusion", "window", 1.5),
        ("feature_ablation", "perturbations_per_eval", -1),
    ],
)
def test_bad_options_name_the_option_and_its_range(method, option, value):
    with pytest.raises(ValueError, match=rf"{option} must be .*(integer|number)"):
        captum_rnn.explain(_model(), _ids(), method=method, **{option: value})


def test_uint8_ids_are_refused_clearly():
    with pytest.raises(TypeError, match="int64, int32 or int16"):
        captum_rnn.explain(_model(), _ids().to(torch.uint8))


def test_chunked_ig_equals_one_pass_and_bounds_rows_per_forward():
    model = _model()
    ids = _ids()
    whole = captum_rnn.explain(model, ids, n_steps=16, max_steps=16)
    rows = []

    def record(module, args, out):
        if torch.is_grad_enabled():  # the integration steps, not the plain forwards
            states = out[0]  # packed where lengths differ (bidirectional), else a tensor
            rows.append(states.batch_sizes[0] if hasattr(states, "batch_sizes") else len(states))

    handle = model.rnn.register_forward_hook(record)
    try:
        budget = 3 * activation_bytes(adapt(model), model.embedding(ids))
        chunked = captum_rnn.explain(
            model, ids, n_steps=16, max_steps=16, memory_budget=int(budget)
        )
    finally:
        handle.remove()
    # 3 rows fit the budget: no forward pass saw more than 3 sequences x steps.
    assert max(int(r) for r in rows) <= 3
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(b.scores))
        assert a.delta == pytest.approx(b.delta, abs=1e-6)


def test_small_inputs_run_in_one_pass_by_default():
    model = _model()
    ids = _ids()
    calls = []
    handle = model.rnn.register_forward_hook(lambda m, args, out: calls.append(1))
    try:
        captum_rnn.explain(model, ids, n_steps=16, max_steps=16)
    finally:
        handle.remove()
    # one forward for the outputs, then IG: one pass for inputs+baselines and one for the steps
    assert len(calls) <= 4


def test_activation_estimate_grows_with_length_and_width():
    seq = adapt(_model())
    short = activation_bytes(seq, torch.zeros(1, 10, 4))
    long = activation_bytes(seq, torch.zeros(1, 500, 4))
    assert long == 50 * short


def test_nan_baselines_are_refused_by_name():
    model = _model()
    ids = _ids()
    bad = model.embedding(ids).detach()
    bad[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="baselines contains NaN"):
        captum_rnn.explain(model, ids, baselines=bad)
    series = RNNClassifier(2, input_size=3, hidden_size=4).eval()
    x = torch.randn(1, 5, 3)
    with pytest.raises(ValueError, match="baselines contains NaN"):
        captum_rnn.explain(series, x, baselines=torch.full_like(x, float("nan")))
