"""Leave-one-out Kendall and infidelity per cell on multivariate series: each real
(step, feature) cell is replaced by the baseline alone (its own leave-one-out drop, its
own infidelity presence), so a method that finds the feature the model reads scores
better than one that spreads a step's score over its features; per step
(``cells=False``) the two cannot be told apart and the numbers are the former ones."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_faithfulness import LinearSeries
from torch import nn

import captum_rnn
from captum_rnn.metrics import benchmark, infidelity, leave_one_out, loo_kendall
from captum_rnn.models import RNNRegressor

from conftest import token_model

W = torch.tensor([1.0, -2.0, 0.0])


class CountingSeries(nn.Module):
    """``sum_t w . x_t`` over every step given (padding included: it does not mask),
    counting the sequences it is run on."""

    def __init__(self, w=W):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.rows = 0

    def sequence_model_hints(self):  # the model contract (captum_rnn.adapt)
        return {"batch_first": True, "output": "regression"}

    def forward(self, x, lengths=None):
        self.rows += x.shape[0]
        return (x @ self.w).sum(1)[:, None]


def _series(seed=0, batch=3, time=5, features=3):
    return torch.rand(batch, time, features, generator=torch.Generator().manual_seed(seed)) + 0.5


def test_drops_per_cell_are_the_cells_contributions_one_forward_per_real_cell():
    model = CountingSeries()
    x = _series()
    lengths = torch.tensor([5, 2, 4])
    x[1, 2:], x[2, 4:] = 100.0, -100.0  # padding that would move the output if touched
    drops = leave_one_out(model, x, lengths=lengths)
    assert drops.shape == x.shape and drops.dtype == torch.float64
    real = torch.arange(5)[None, :, None] < lengths[:, None, None]
    # baseline 0: w_f x_tf (float32 sums next to the large padding)
    torch.testing.assert_close(drops, (x * W * real).double(), atol=1e-4, rtol=0)
    assert model.rows == 3 + 3 * int(lengths.sum())  # m(x) once, then one per real cell
    # a per-feature baseline replaces the cell by its feature's value
    base = torch.tensor([0.5, 1.0, -3.0])
    shifted = leave_one_out(model, x, lengths=lengths, baseline=base)
    torch.testing.assert_close(shifted, ((x - base) * W * real).double(), atol=1e-4, rtol=0)
    # per step (cells=False) the former drops: whole steps replaced (this model reads
    # its padding, so deleting steps, which shifts the padding, would move it)
    model.rows = 0
    steps = leave_one_out(model, x, lengths=lengths, cells=False, removal="replace")
    torch.testing.assert_close(steps, ((x @ W) * real[..., 0]).double(), atol=1e-4, rtol=0)
    assert model.rows == 3 + int(lengths.sum())


def test_exact_cells_score_tau_one_a_step_spread_does_not_and_per_step_cannot_tell():
    """The model reads feature 0 only: the exact per-cell attribution orders the cells
    as their drops do (tau 1, feature 0 ranked first); spreading each step's score over
    its features keeps the per-step sums, so per step both score 1."""
    model = LinearSeries(w=(1.0, 0.0), length_weight=0.0)
    x = _series(1, batch=4, time=6, features=2)
    exact = x * torch.tensor([1.0, 0.0])
    spread = exact.sum(-1, keepdim=True).expand_as(x) / 2
    drops = leave_one_out(model, x)
    top = drops.flatten(1).argmax(1) % 2
    assert top.tolist() == [0] * 4  # the cell the model reads has the largest drop
    assert loo_kendall(model, x, exact).tolist() == pytest.approx([1.0] * 4)
    tau_spread = loo_kendall(model, x, spread, drops=drops)
    assert bool((tau_spread < 0.8).all())
    for attr in (exact, spread):
        per_step = loo_kendall(model, x, attr, cells=False)
        assert per_step.tolist() == pytest.approx([1.0] * 4)
        torch.testing.assert_close(per_step, loo_kendall(model, x, attr.sum(-1)))


def test_infidelity_per_cell_prefers_the_exact_cells_to_permuted_features():
    model = LinearSeries(w=(1.0, -2.0), length_weight=0.0)
    x = _series(2, batch=4, time=6, features=2)
    exact = x * torch.tensor([1.0, -2.0])
    permuted = exact.flip(-1)  # each step's sum kept, the features swapped
    for noise in ("subset", "gaussian"):
        right = infidelity(model, x, exact, noise=noise)
        wrong = infidelity(model, x, permuted, noise=noise)
        assert right.tolist() == pytest.approx([0.0] * 4, abs=1e-6)
        assert bool((wrong > 1e-3).all())
        # per step both predict every step's removal exactly
        for attr in (exact, permuted):
            steps = infidelity(model, x, attr, noise=noise, cells=False)
            assert steps.tolist() == pytest.approx([0.0] * 4, abs=1e-6)
            torch.testing.assert_close(steps, infidelity(model, x, attr.sum(-1), noise=noise))


def test_padding_is_never_perturbed_or_counted_and_batch_equals_singles():
    model = RNNRegressor(input_size=3, hidden_size=6, cell="gru").eval()
    x = torch.randn(3, 6, 3, generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([6, 2, 4])
    attr = torch.randn(3, 6, 3, generator=torch.Generator().manual_seed(4))
    padded_attr = attr.clone()
    for i, n in enumerate(lengths.tolist()):
        padded_attr[i, n:] = 50.0  # would dominate any ranking that counted it
    drops = leave_one_out(model, x, lengths=lengths, batch_size=5)
    tau = loo_kendall(model, x, padded_attr, lengths=lengths, drops=drops)
    for i, n in enumerate(lengths.tolist()):
        assert bool((drops[i, n:] == 0).all())
        alone = leave_one_out(model, x[i : i + 1, :n])
        torch.testing.assert_close(drops[i : i + 1, :n], alone, atol=1e-6, rtol=0)
        single = loo_kendall(model, x[i : i + 1, :n], attr[i : i + 1, :n])
        torch.testing.assert_close(tau[i : i + 1], single, atol=1e-12, rtol=0)
    # infidelity: exact cells of a linear model stay exact whatever the padding holds
    linear = CountingSeries()
    exact = (x * W).masked_fill(torch.arange(6)[None, :, None] >= lengths[:, None, None], 9.0)
    zeroed = x.masked_fill(torch.arange(6)[None, :, None] >= lengths[:, None, None], 0.0)
    values = infidelity(linear, zeroed, exact, lengths=lengths, noise="gaussian")
    assert values.tolist() == pytest.approx([0.0] * 3, abs=1e-6)


def test_explanations_with_feature_scores_are_scored_per_cell():
    """Feature ablation of a linear model is each cell's leave-one-out drop: tau 1 per
    cell, read from ``explain``'s ``feature_scores`` exactly as from the tensor."""
    model = LinearSeries(w=(1.0, -2.0), length_weight=0.0)
    x = _series(5, batch=3, time=5, features=2)
    lengths = torch.tensor([5, 3, 4])
    kw = dict(lengths=lengths, output="regression")
    explanations = captum_rnn.explain(model, x, method="feature_ablation", **kw)
    cells = torch.zeros(3, 5, 2, dtype=torch.float64)
    for i, e in enumerate(explanations):
        cells[i, : len(e.feature_scores)] = torch.tensor(e.feature_scores)
    tau = loo_kendall(model, x, explanations, **kw)
    assert tau.tolist() == pytest.approx([1.0] * 3)
    torch.testing.assert_close(tau, loo_kendall(model, x, cells, **kw))
    torch.testing.assert_close(
        infidelity(model, x, explanations, **kw), infidelity(model, x, cells, **kw)
    )
    per_step = loo_kendall(model, x, explanations, cells=False, **kw)
    torch.testing.assert_close(per_step, loo_kendall(model, x, cells.sum(-1), **kw))


def test_bad_cells_and_drops_name_the_keyword():
    model, ids = token_model(), torch.tensor([[4, 5, 6, 0]])
    for call in (
        lambda: leave_one_out(model, ids, cells=True),
        lambda: loo_kendall(model, ids, torch.rand(1, 4), cells=True),
        lambda: infidelity(model, ids, torch.rand(1, 4), cells=True),
    ):
        with pytest.raises(ValueError, match="cells"):
            call()
    with pytest.raises(TypeError, match="cells must be"):
        loo_kendall(model, ids, torch.rand(1, 4), cells="yes")
    series, x = LinearSeries(), _series(batch=1, time=4, features=2)
    steps = leave_one_out(series, x, cells=False)
    with pytest.raises(ValueError, match="cells=True"):
        loo_kendall(series, x, torch.rand(1, 4, 2), drops=steps)
    with pytest.raises(ValueError, match="cells=False"):  # a cell cannot be deleted
        leave_one_out(series, x, removal="delete")
    # token input stays per token with cells=None
    assert leave_one_out(model, ids).shape == (1, 4)


def test_benchmark_shares_per_cell_drops_and_scores_cells():
    """benchmark computes the cells' drops once; loo_kendall and infidelity then rank
    each method's cells (a step-only method gives every feature its step's score)."""
    model = LinearSeries(w=(1.0, -2.0), length_weight=0.0)
    x = _series(6, batch=4, time=5, features=2)

    def exact_cells(m, inputs, lengths, target):
        return inputs * torch.tensor([1.0, -2.0])

    def steps_only(m, inputs, lengths, target):
        return inputs @ torch.tensor([1.0, -2.0])

    metrics = ["loo_kendall", "infidelity"]
    kw = dict(metrics=metrics, progress=False, output="regression")
    result = benchmark(model, x, [exact_cells, steps_only], **kw)
    exact, spread = result.row("exact_cells"), result.row("steps_only")
    assert exact["loo_kendall"] == pytest.approx(1.0)
    assert exact["infidelity"] == pytest.approx(0.0, abs=1e-6)
    assert spread["loo_kendall"] < 0.9 and spread["infidelity"] > 1e-3
    cells = result.cells["steps_only"]
    direct = loo_kendall(model, x, cells, output="regression")
    assert spread["loo_kendall"] == pytest.approx(float(direct.nanmean()))
    # removal="delete": whole steps, where both methods are exact
    steps = benchmark(model, x, [exact_cells, steps_only], removal="delete", **kw)
    for name in ("exact_cells", "steps_only"):
        assert steps.row(name)["loo_kendall"] == pytest.approx(1.0)


def _tau_b(a, b):
    """Kendall's tau-b by its definition, pair by pair (None when undefined)."""
    concordant = untied_a = untied_b = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        sa, sb = (a[i] > a[j]) - (a[i] < a[j]), (b[i] > b[j]) - (b[i] < b[j])
        concordant += sa * sb
        untied_a += sa != 0
        untied_b += sb != 0
    return None if untied_a * untied_b == 0 else concordant / (untied_a * untied_b) ** 0.5


GRU = RNNRegressor(input_size=3, hidden_size=5, cell="gru").eval()


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=3),
    st.integers(1, 3),
    st.sampled_from([None, 0.5]),
    st.integers(0, 2**16),
)
def test_matches_one_cell_at_a_time_and_tau_b_by_definition(lengths, features, baseline, seed):
    g = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(lengths)
    model = GRU if features == 3 else RNNRegressor(input_size=features, hidden_size=4).eval()
    x = torch.randn(len(lengths), 5, features, generator=g)
    attr = torch.randint(0, 3, x.shape, generator=g).double()  # with ties
    drops = leave_one_out(model, x, lengths=lengths_t, baseline=baseline, cells=True,
                          batch_size=4)  # fmt: skip
    tau = loo_kendall(model, x, attr, lengths=lengths_t, drops=drops, cells=True)
    base = 0.0 if baseline is None else baseline
    with torch.no_grad():
        for i, n in enumerate(lengths):
            xi = x[i : i + 1, :n]
            full = float(model(xi, torch.tensor([n]))[0, 0])
            want = torch.zeros(n, features, dtype=torch.float64)
            for t, f in itertools.product(range(n), range(features)):
                cut = xi.clone()
                cut[0, t, f] = base
                want[t, f] = full - float(model(cut, torch.tensor([n]))[0, 0])
            torch.testing.assert_close(drops[i, :n], want, atol=1e-6, rtol=0)
            assert bool((drops[i, n:] == 0).all())
            ref = _tau_b(attr[i, :n].flatten().tolist(), drops[i, :n].flatten().tolist())
            if ref is None:
                assert tau[i].isnan()
            else:
                assert float(tau[i]) == pytest.approx(ref, abs=1e-9)


def test_a_users_lightning_model_on_mfcc_like_cells():
    """The zoo's Lightning GRU over (batch, time, 13) features: each cell's drop is the
    user's own forward with that cell zeroed; occlusion's per-cell explanation orders
    the cells as their drops do far better than noise, and predicts cell removals
    better (infidelity)."""
    import zoo
    from zoo.mfcc_lightning import CUE_COEF, CUE_FRAMES

    case = zoo.build("mfcc_lightning")
    x = case.inputs[:8]
    drops = leave_one_out(case.model, x)
    assert drops.shape == x.shape
    with torch.no_grad():
        probs = torch.softmax(case.call(x, None), dim=-1)
        target = probs.argmax(-1)
        for t, f in [(CUE_FRAMES.start, CUE_COEF), (0, 0), (11, 12)]:
            cut = x.clone()
            cut[:, t, f] = 0.0
            after = torch.softmax(case.call(cut, None), dim=-1)
            rows = torch.arange(len(x))
            want = (probs[rows, target] - after[rows, target]).double()
            torch.testing.assert_close(drops[:, t, f], want, atol=1e-6, rtol=1e-6)
    explanations = captum_rnn.explain(case.model, x, method="occlusion")
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    tau = loo_kendall(case.model, x, explanations, drops=drops)
    tau_noise = loo_kendall(case.model, x, noise, drops=drops)
    assert float(tau.mean()) > float(tau_noise.mean()) + 0.5
    right = infidelity(case.model, x, explanations, n_perturb_samples=8)
    wrong = infidelity(case.model, x, noise, n_perturb_samples=8)
    assert float(right.mean()) < float(wrong.mean())
