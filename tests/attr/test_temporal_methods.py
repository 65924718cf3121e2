"""Temporal methods: the time-forward tunnel, temporal IG, the extremal mask and pruned
Shapley (TimeSHAP) on tint's HMM ground truth, on users' models, with padding, batch =
single, state kept, clear errors; TimeSHAP's pruning against the exact Shapley values."""

from __future__ import annotations

import pytest
import torch
import zoo
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import captum_rnn
from captum_rnn._utils.grad import gradient_context
from captum_rnn._utils.state import preserve_state
from captum_rnn.attr import get_method, ground_truth_auprc, time_forward_attributions
from captum_rnn.attr._timeshap import prune_events
from captum_rnn.data import hmm_state
from captum_rnn.models import RNNClassifier

#: the four temporal methods with options small enough for tests
METHODS = {
    "time_forward": dict(base="saliency"),
    "temporal_integrated_gradients": dict(n_steps=8),
    "extremal_mask": dict(n_iter=20),
    "timeshap": dict(samples_per_group=20),
}


# ---------------------------------------------------------------------- HMM ground truth
@pytest.fixture(scope="module")
def hmm():
    """A GRU trained on every step of tint's HMM "state" data (the prediction at step t
    from x[:t+1]: with "last" pooling that is the head on step t's state), and test data
    of variable lengths."""
    torch.manual_seed(0)
    train = hmm_state(300, length=40, seed=0)
    model = RNNClassifier(2, input_size=3, cell="gru", hidden_size=24)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(8):
        order = torch.randperm(len(train))
        for start in range(0, len(train), 32):
            rows = order[start : start + 32]
            states, mask, _ = model.encode(train.series[rows], train.lengths[rows])
            loss = nn.functional.cross_entropy(model.head(states)[mask], train.labels[rows][mask])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), hmm_state(12, length=(20, 30), seed=1)


def test_hmm_state_time_forward_with_step_normalisation_beats_every_captum_method(hmm):
    model, data = hmm
    x, n = data.series, data.lengths

    def score(method, **options):
        a = time_forward_attributions(model, x, n, method, **options)
        padded = ~data.real
        assert bool((a[padded] == 0).all())
        return ground_truth_auprc(a, data.masks, n)

    ours = {
        "temporal IG, normalize=step": score("temporal_ig", n_steps=16, normalize="step"),
        "time_forward saliency, normalize=step": score("saliency", normalize="step"),
    }
    captum = {
        "IG": score("integrated_gradients", n_steps=16, max_steps=16),
        "DeepLift": score("deeplift"),
        "InputXGradient": score("input_x_gradient"),
        "saliency": score("saliency"),
        "feature ablation per cell": score("feature_ablation", features="cell"),
        "temporal IG (raw)": score("temporal_ig", n_steps=16),
    }
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    captum["random"] = ground_truth_auprc(noise, data.masks, n)
    print("\nAUPRC on hmm_state (12 sequences, lengths 20-30, GRU of 24):")
    for name, value in {**ours, **captum}.items():
        print(f"  {name:40s} {value:.4f}")
    best = max(ours.values())
    assert best >= 0.97
    assert best > max(captum.values()) + 0.01
    assert 0.25 < captum["random"] < 0.45  # one true cell in three
    assert max(captum.values()) > 0.85  # the model did learn the task


# ---------------------------------------------------------------------- padding, batch
def _model(cell="gru", **kwargs):
    torch.manual_seed(2)
    kwargs.setdefault("input_size", 3)
    return RNNClassifier(3, cell=cell, hidden_size=6, **kwargs).eval()


def _raw(model, method, inputs, lengths, target, ids=None, **options):
    """The registered method on a batch, as explain runs it (through the contract)."""
    seq = captum_rnn.adapt(model)
    with preserve_state(seq.module), gradient_context(seq.module):
        result = get_method(method)(seq, ids=ids).attribute(
            inputs, torch.zeros_like(inputs), target, lengths, **options
        )
    return result


@settings(max_examples=8, deadline=None)
@given(
    method=st.sampled_from(sorted(METHODS)),
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    cell=st.sampled_from(["lstm", "gru"]),
)
def test_padded_steps_get_exactly_zero_and_batch_equals_single(method, lengths, cell):
    model = _model(cell)
    time = max(lengths) + 2
    g = torch.Generator().manual_seed(len(lengths))
    x = torch.randn(len(lengths), time, 3, generator=g)
    x[torch.arange(time)[None, :] >= torch.tensor(lengths)[:, None]] = 7.0  # garbage
    n = torch.tensor(lengths)
    target = torch.tensor([i % 3 for i in range(len(lengths))])
    batch = _raw(model, method, x, n, target, **METHODS[method])
    padded = torch.arange(time)[None, :] >= n[:, None]
    assert bool((batch.attributions[padded] == 0).all())
    for i, length in enumerate(lengths):
        alone = _raw(
            model, method, x[i : i + 1, :length], n[i : i + 1], target[i : i + 1], **METHODS[method]
        )
        torch.testing.assert_close(
            batch.attributions[i, :length], alone.attributions[0], atol=2e-4, rtol=1e-3
        )
    if method == "timeshap":
        assert batch.forward_passes is not None and bool((batch.forward_passes > 0).all())


def test_token_models_padded_get_zero_and_left_padding_is_refused():
    torch.manual_seed(0)
    model = RNNClassifier(2, vocab_size=12, embedding_dim=4, hidden_size=5, cell="gru").eval()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    seq = captum_rnn.adapt(model)
    embedded = seq.embed(ids).detach()
    lengths = torch.tensor([4, 2])
    for method, options in METHODS.items():
        result = _raw(model, method, embedded, lengths, torch.tensor([0, 1]), ids=ids, **options)
        assert bool((result.attributions[1, 2:] == 0).all()), method
        assert result.attributions[1, :2].abs().sum() > 0, method
    left = torch.tensor([[0, 0, 7, 8]])
    with pytest.raises(ValueError, match="padded on the right"):
        _raw(
            model,
            "temporal_ig",
            seq.embed(left).detach(),
            torch.tensor([2]),
            torch.tensor([0]),
            ids=left,
        )


# ---------------------------------------------------------------------- users' models
def _state(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
    )


@pytest.mark.parametrize("name", ["stacked_lstm", "mfcc_lightning", "nll_gru", "imdb_lstm"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_users_models_explain_and_stay_unchanged(name, method):
    case = zoo.build(name)
    inputs = case.inputs[:3] if case.batch_first else case.inputs[:, :3]
    before = _state(case.model)
    explanations = captum_rnn.explain(
        case.model, inputs, method=method, **case.hints, **METHODS[method]
    )
    lengths = case.lengths[:3] if case.lengths is not None else None
    for i, e in enumerate(explanations):
        expected = int(lengths[i]) if lengths is not None else inputs.shape[1]
        assert len(e.scores) == expected
        assert all(map(lambda s: s == s, e.scores))  # no NaN
        assert any(s != 0 for s in e.scores)
    after = _state(case.model)
    assert after[1] == before[1] and after[2] == before[2]
    assert all(torch.equal(after[0][k], v) for k, v in before[0].items())


@pytest.mark.parametrize("name", ["nll_gru", "imdb_lstm"])
def test_users_token_models_give_padding_exactly_zero(name):
    case = zoo.build(name)
    ids = case.inputs[:4] if case.batch_first else case.inputs[:, :4].T
    seq = captum_rnn.adapt(case.model, **case.hints)
    embedded = seq.embed(ids).detach()
    lengths = seq.lengths_of(ids)
    assert int(lengths.min()) < ids.shape[1]  # some padding to check
    padded = ~seq.padding_mask(ids)
    for method, options in METHODS.items():
        result = _raw(
            seq, method, embedded, lengths, torch.zeros(4, dtype=torch.long), ids=ids, **options
        )
        assert bool((result.attributions[padded] == 0).all()), method
        assert bool((result.attributions[~padded] != 0).any()), method


def test_a_model_in_training_mode_stays_in_training_mode():
    model = RNNClassifier(2, input_size=3, cell="gru", hidden_size=5, dropout=0.3).train()
    x = torch.randn(2, 6, 3)
    for method, options in METHODS.items():
        captum_rnn.explain(model, x, method=method, **options)
        assert all(m.training for m in model.modules()), method


def test_time_forward_on_a_users_model_without_lengths():
    """stacked_lstm takes no lengths: the prefixes alone carry the time-forward view."""
    case = zoo.build("stacked_lstm")
    x = case.inputs[:2]
    case.model.train()  # the training flag is kept too
    before = _state(case.model)
    try:
        a = time_forward_attributions(case.model, x, torch.tensor([12, 7]), "saliency")
        after = _state(case.model)
    finally:
        case.model.eval()
    assert after[1] == before[1] and after[2] == before[2]
    assert all(torch.equal(after[0][k], v) for k, v in before[0].items())
    assert bool((a[1, 7:] == 0).all()) and bool((a[1, :7] != 0).any())
    # row t is the saliency of the prediction at t by step t's cells, computed by hand
    t = 4
    prefix = x[1:2, : t + 1].clone().requires_grad_()
    with torch.no_grad():
        predicted = case.model(x[1:2, : t + 1]).argmax(-1)
    case.model(prefix)[0, predicted].sum().backward()
    torch.testing.assert_close(a[1, t], prefix.grad[0, t].abs())


def test_extremal_mask_window_masks_only_the_last_real_steps():
    model = _model()
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(5))
    n = torch.tensor([6, 4])
    result = _raw(model, "extremal_mask", x, n, torch.tensor([0, 1]), window=2, n_iter=10)
    a = result.attributions
    assert bool((a[0, :4] == 0).all()) and bool((a[0, 4:] > 0).all())
    assert bool((a[1, :2] == 0).all()) and bool((a[1, 2:4] > 0).all())
    assert bool((a[1, 4:] == 0).all())
    with pytest.raises(ValueError, match="window"):
        _raw(model, "extremal_mask", x, n, torch.tensor([0, 1]), window=0)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "method, options, error, match",
    [
        ("time_forward", dict(base="nope"), ValueError, "method must be one of"),
        ("time_forward", dict(base="time_forward"), ValueError, "base must name another"),
        ("time_forward", dict(base_options=3), TypeError, "base_options must be a dict"),
        ("time_forward", dict(base_options=dict(n_iter=3)), TypeError, "takes no option"),
        ("time_forward", dict(normalize="max"), ValueError, "normalize must be"),
        ("temporal_ig", dict(n_steps=0), ValueError, "n_steps"),
        ("extremal_mask", dict(area=2.0), ValueError, "area must be"),
        ("extremal_mask", dict(game="keep"), ValueError, "game must be"),
        ("extremal_mask", dict(features="token"), ValueError, "features must be"),
        ("extremal_mask", dict(seed=1), TypeError, "takes no option"),
        ("timeshap", dict(level="window"), ValueError, "level must be"),
        ("timeshap", dict(tolerance=-1.0), ValueError, "tolerance"),
        ("timeshap", dict(n_samples=0), ValueError, "n_samples"),
    ],
)
def test_bad_options_get_clear_errors(method, options, error, match):
    with pytest.raises(error, match=match):
        captum_rnn.explain(_model(), torch.randn(2, 5, 3), method=method, **options)


def test_time_forward_attributions_checks_its_inputs():
    model = _model()
    with pytest.raises(TypeError, match="float tensor"):
        time_forward_attributions(model, torch.ones(2, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="lengths must be"):
        time_forward_attributions(model, torch.randn(2, 5, 3), torch.tensor([6, 2]))
    with pytest.raises(TypeError, match="lengths must be integers"):
        time_forward_attributions(model, torch.randn(2, 5, 3), torch.tensor([5.0, 2.0]))
    with pytest.raises(ValueError, match="NaN"):
        time_forward_attributions(model, torch.full((1, 3, 3), float("nan")))


# ---------------------------------------------------------------------- TimeSHAP
class RecentWeighted(nn.Module):
    """A model whose class-1 logit is linear in the events, each weighted by 0.4 per step of
    age: its Shapley values are known exactly (the weighted events)."""

    def __init__(self) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.tensor([1.0, -0.5]))

    def sequence_model_hints(self) -> dict:
        return {"batch_first": True, "output": "logits"}

    def weights(self, time: int) -> torch.Tensor:
        return 0.4 ** torch.arange(time - 1, -1, -1, dtype=torch.float32)

    def forward(self, x, lengths=None):
        s = (x @ self.v * self.weights(x.shape[1])).sum(1)
        return torch.stack([-s, s], dim=-1)


def test_pruning_merges_old_events_agrees_with_unpruned_and_uses_fewer_passes():
    model = RecentWeighted()
    x = torch.rand(1, 10, 2, generator=torch.Generator().manual_seed(0)) + 0.5
    n, target = torch.tensor([10]), torch.tensor([1])
    exact = (x @ model.v.detach() * model.weights(10))[0]  # per event
    tolerance = 0.05
    # pruning keeps the shortest recent window whose older block is worth < tolerance
    k = prune_events(model, x, torch.zeros_like(x), target, (n,), tolerance)
    older = exact.cumsum(0)  # older[j]: the block of events 0..j
    assert abs(float(older[10 - k - 1])) < tolerance <= abs(float(older[10 - k]))
    assert 1 < k < 10
    pruned = _raw(model, "timeshap", x, n, target, tolerance=tolerance)
    unpruned = _raw(model, "timeshap", x, n, target, tolerance=0.0)
    p, u = pruned.attributions[0].sum(-1), unpruned.attributions[0].sum(-1)
    torch.testing.assert_close(u, exact, atol=1e-4, rtol=0)  # linear: KernelSHAP is exact
    torch.testing.assert_close(p[-k:], exact[-k:], atol=1e-4, rtol=0)
    # the merged block: its value spread evenly, worth what the old events are together
    assert float(p[: 10 - k].std()) < 1e-6
    assert abs(float(p[: 10 - k].sum() - exact[: 10 - k].sum())) < 1e-4
    assert float((p - u).abs().max()) < tolerance
    assert int(pruned.forward_passes[0]) < int(unpruned.forward_passes[0])
    print(
        f"\npruned Shapley: {k} recent events kept of 10; forward passes "
        f"{int(pruned.forward_passes[0])} pruned vs {int(unpruned.forward_passes[0])} unpruned"
    )


def test_timeshap_levels_sum_to_the_output_difference():
    """Every level's cells sum to f(x) - f(baseline) (KernelSHAP's efficiency)."""
    model = _model("lstm")
    x = torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(4))
    n, target = torch.tensor([6]), torch.tensor([2])
    with torch.no_grad():
        difference = float(model(x, n)[0, 2] - model(torch.zeros_like(x), n)[0, 2])
    for level in ("event", "feature", "cell"):
        result = _raw(model, "timeshap", x, n, target, level=level, tolerance=0.0)
        assert float(result.attributions.sum()) == pytest.approx(difference, abs=1e-3), level


def test_explain_reports_timeshaps_forward_passes_per_sequence():
    import captum_rnn
    from captum_rnn.models import RNNClassifier

    torch.manual_seed(0)
    model = RNNClassifier(2, input_size=3, cell="gru", hidden_size=4).eval()
    x = torch.randn(2, 6, 3)
    explanations = captum_rnn.explain(model, x, method="timeshap", lengths=torch.tensor([6, 4]))
    passes = [e.extra["forward_passes"] for e in explanations]
    assert all(isinstance(p, int) and p > 0 for p in passes)
    assert "forward_passes" not in captum_rnn.explain(model, x, method="saliency")[0].extra


class _PackedGRU(torch.nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = torch.nn.GRU(3, 5, batch_first=batch_first)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, x, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=self.rnn.batch_first, enforce_sorted=False
        )
        return self.fc(self.rnn(packed)[1][-1])


@pytest.mark.parametrize("method", ["temporal_integrated_gradients", "saliency"])
def test_time_forward_reads_a_time_major_models_own_layout(method):
    """(time, batch, features) in for a time-major model, as explain takes it; rows
    come back per sequence (batch-first), equal to the batch-first twin's."""
    x = torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(0))  # (batch=3, time=4)
    lengths = torch.tensor([4, 2, 3])
    want = time_forward_attributions(_PackedGRU(True).eval(), x, lengths, method)
    got = time_forward_attributions(_PackedGRU(False).eval(), x.transpose(0, 1), lengths, method)
    assert got.shape == (3, 4, 3)
    assert torch.allclose(got, want, atol=1e-5)
