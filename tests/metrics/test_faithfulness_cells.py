"""Faithfulness per cell on multivariate series: comprehensiveness, sufficiency and the
deletion/insertion curves remove the top-k (step, feature) cells (replaced by the
baseline) when the attributions are per cell, and ``benchmark`` without a ground truth
ranks methods by them; its pick is checked against the ground truth on the HMM "state"
data and on state_switching."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_benchmark_cells import FAST, METRICS, _hmm_case, _switching_case
from test_faithfulness import LinearSeries

from captum_rnn.metrics import (
    benchmark,
    comprehensiveness,
    comprehensiveness_sufficiency,
    deletion_curve,
    insertion_curve,
    sufficiency,
)
from captum_rnn.models import RNNRegressor

from conftest import token_model

X = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.5, 0.5]]])  # w = (1, -2)
CELLS = torch.tensor([[[0.9, 0.1], [0.0, 0.8], [0.7, 0.3], [0.2, 0.4]]])


def _z(x):
    return float((x @ torch.tensor([1.0, -2.0])).sum()) + 0.4  # LinearSeries, length 4


def _without(cells, base=0.0):
    x = X.clone()
    for t, f in cells:
        x[0, t, f] = base if not isinstance(base, torch.Tensor) else base[f]
    return x


def test_top_cells_are_replaced_by_hand():
    model = LinearSeries()
    # 8 cells ranked (0,0) .9, (1,1) .8, (2,0) .7, (3,1) .4, (2,1) .3 ...
    comp, suff = comprehensiveness_sufficiency(model, X, CELLS, fractions=[0.25, 0.5])
    top2, top4 = [(0, 0), (1, 1)], [(0, 0), (1, 1), (2, 0), (3, 1)]
    rest = [(t, f) for t in range(4) for f in range(2)]
    assert float(comp) == pytest.approx(
        ((_z(X) - _z(_without(top2))) + (_z(X) - _z(_without(top4)))) / 2
    )
    keep2 = [c for c in rest if c not in top2]
    keep4 = [c for c in rest if c not in top4]
    assert float(suff) == pytest.approx(
        ((_z(X) - _z(_without(keep2))) + (_z(X) - _z(_without(keep4)))) / 2
    )
    # the time average of each feature (Crabbé & van der Schaar 2021) as the baseline
    mean = X[0].mean(dim=0)
    by_mean = comprehensiveness(model, X, CELLS, fractions=[0.25], baseline="mean")
    assert float(by_mean) == pytest.approx(_z(X) - _z(_without(top2, mean)))
    # a padded step's cells are never ranked or replaced
    huge = CELLS.clone()
    huge[0, 3] = 50.0
    short = comprehensiveness(model, X, huge, lengths=[3], fractions=[0.34])
    x3 = X[:, :3]
    z3 = float((x3 @ torch.tensor([1.0, -2.0])).sum()) + 0.3
    assert float(short) == pytest.approx(z3 - (z3 - 1.0 - (-2.0)))  # (0,0) and (1,1) out


def test_step_attributions_and_cells_false_keep_the_per_step_metric():
    model = LinearSeries()
    steps = CELLS.sum(dim=-1)
    for fn in (comprehensiveness, sufficiency):
        per_step = fn(model, X, steps, fractions=[0.25, 0.5])
        assert torch.equal(fn(model, X, CELLS, fractions=[0.25, 0.5], cells=False), per_step)
        # per step by deletion, per cell by replacement: different numbers here
        assert not torch.equal(fn(model, X, CELLS, fractions=[0.25, 0.5]), per_step)
    # cells=True with per-cell attributions is what None picks
    a = comprehensiveness(model, X, CELLS, cells=True)
    assert torch.equal(a, comprehensiveness(model, X, CELLS))


def test_per_cell_ranking_tells_features_apart():
    """A model that reads feature 0 only: the ranking that puts feature 0 first is more
    comprehensive than one that spreads each step's score over its features."""
    model = LinearSeries(w=(1.0, 0.0), length_weight=0.0)
    x = torch.rand(4, 6, 2, generator=torch.Generator().manual_seed(0)) + 0.5
    right = x * torch.tensor([1.0, 0.0])
    spread = right.sum(dim=-1, keepdim=True).expand_as(x) / 2
    wrong = x * torch.tensor([0.0, 1.0])
    kw = dict(fractions=[0.25, 0.5])
    assert bool(
        (comprehensiveness(model, x, right, **kw) > comprehensiveness(model, x, spread, **kw)).all()
    )
    assert bool((comprehensiveness(model, x, wrong, **kw) < 1e-12).all())
    assert bool((sufficiency(model, x, right, **kw) < sufficiency(model, x, wrong, **kw)).all())


def test_cell_curves_run_over_every_real_cell():
    model = LinearSeries()
    deletion = deletion_curve(model, X, CELLS, steps=None)
    insertion = insertion_curve(model, X, CELLS, steps=None)
    assert deletion.fractions[0].tolist() == [k / 8 for k in range(9)]
    assert deletion.unit == "cells" and "cells removed" in deletion.plot().axes[0].get_xlabel()
    assert float(deletion.values[0][0]) == pytest.approx(_z(X))
    everything = _z(torch.zeros_like(X))
    assert float(deletion.values[0][-1]) == pytest.approx(everything)
    assert float(insertion.values[0][0]) == pytest.approx(everything)
    assert float(deletion.values[0][2]) == pytest.approx(_z(_without([(0, 0), (1, 1)])))
    # 10 points over 8 cells, rounded and deduplicated
    assert len(deletion_curve(model, X, CELLS).fractions[0]) == 9


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(removal="delete"), ValueError, "removal='replace'"),
        (dict(cells="yes"), TypeError, "cells must be"),
        (dict(baseline="median"), ValueError, "'mean'"),
        (dict(baseline=torch.zeros(3)), ValueError, "baseline must be"),
    ],
)
def test_bad_options_name_the_keyword(kwargs, error, match):
    with pytest.raises(error, match=match):
        comprehensiveness(LinearSeries(), X, CELLS, **kwargs)


def test_cells_true_needs_cell_attributions_of_continuous_input():
    with pytest.raises(ValueError, match="cells=True"):
        comprehensiveness(LinearSeries(), X, CELLS.sum(-1), cells=True)
    model, ids = token_model(), torch.tensor([[4, 5, 6, 0]])
    with pytest.raises(ValueError, match="cells=True"):
        comprehensiveness(model, ids, torch.rand(1, 4, 8), cells=True)
    # token input with embedding-wide attributions keeps summing them per token
    attr = torch.rand(1, 4, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        comprehensiveness(model, ids, attr), comprehensiveness(model, ids, attr.sum(-1))
    )


def _reference(model, x, lengths, attr, fractions, baseline):
    """Comprehensiveness and sufficiency per cell by brute force, one sequence at a time."""
    comp, suff = [], []
    with torch.no_grad():
        for i, n in enumerate(lengths.tolist()):
            xi, ai = x[i : i + 1, :n], attr[i, :n].reshape(-1)
            full = float(model(xi, torch.tensor([n]))[0, 0])
            order = sorted(range(len(ai)), key=lambda j: (-float(ai[j]), j))
            c = s = 0.0
            for f in fractions:
                k = min(max(int(f * len(ai) + 0.5 + 1e-9), 1), len(ai))
                top = torch.zeros(len(ai), dtype=torch.bool)
                top[order[:k]] = True
                top = top.view(n, -1)[None]
                removed = torch.where(top, baseline, xi)
                kept = torch.where(top, xi, baseline)
                c += full - float(model(removed, torch.tensor([n]))[0, 0])
                s += full - float(model(kept, torch.tensor([n]))[0, 0])
            comp.append(c / len(fractions))
            suff.append(s / len(fractions))
    return torch.tensor(comp, dtype=torch.float64), torch.tensor(suff, dtype=torch.float64)


MODEL = RNNRegressor(input_size=3, hidden_size=6, cell="gru").eval()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=4),
    st.lists(st.sampled_from([0.1, 0.2, 0.34, 0.5, 0.9, 1.0]), min_size=1, max_size=3),
    st.sampled_from([None, 0.5]),
    st.integers(0, 2**16),
)
def test_matches_a_brute_force_reference(lengths, fractions, baseline, seed):
    g = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(lengths)
    x = torch.randn(len(lengths), 6, 3, generator=g)
    attr = torch.randint(0, 4, (len(lengths), 6, 3), generator=g).double()  # with ties
    comp, suff = comprehensiveness_sufficiency(
        MODEL, x, attr, lengths=lengths_t, fractions=fractions, baseline=baseline, batch_size=5
    )
    base = torch.tensor(0.0 if baseline is None else baseline)
    want_c, want_s = _reference(MODEL, x, lengths_t, attr, fractions, base)
    assert torch.allclose(comp, want_c, atol=1e-6)
    assert torch.allclose(suff, want_s, atol=1e-6)


@pytest.mark.parametrize("case", ["hmm_state", "state_switching"])
def test_recommendation_without_ground_truth_is_within_01_auprc_of_the_best(case):
    """benchmark without a ground truth ranks the methods by per-cell faithfulness; the
    ground truth (scored in a second run) says how good its pick is."""
    model, x, lengths, truth = _hmm_case() if case == "hmm_state" else _switching_case()
    blind = benchmark(model, (x, lengths), FAST, progress=False)
    print(f"\n{case}, no ground truth:\n{blind.to_markdown()}")
    known = benchmark(model, (x, lengths), FAST, METRICS, rationale=truth, progress=False)
    print(f"\n{case}, per-cell ground truth:\n{known.to_markdown()}")
    assert blind.details["removal"] == "replace cells"
    if case == "hmm_state":
        # removal="delete" deletes whole steps: the former step-level scores come back
        steps = benchmark(model, (x, lengths), FAST, ["faithfulness", "comprehensiveness",
                          "sufficiency"], removal="delete", progress=False)  # fmt: skip
        print(f"\n{case}, whole steps deleted (removal='delete'):\n{steps.to_markdown()}")
        for method in FAST:  # each method's summed cells, whole steps deleted
            by_steps = comprehensiveness(model, x, blind.attributions[method], lengths=lengths)
            assert steps.row(method)["comprehensiveness"] == pytest.approx(float(by_steps.mean()))
    assert blind.cells[blind.recommendation].shape == x.shape
    best = max(known.methods, key=lambda m: known.row(m)["auprc"])
    picked = known.row(blind.recommendation)["auprc"]
    print(
        f"without the ground truth: {blind.recommendation} (auprc {picked:.3f}); "
        f"best {best} ({known.row(best)['auprc']:.3f}); random {known.row('random')['auprc']:.3f}"
    )
    assert picked >= known.row(best)["auprc"] - 0.1
    # decomposition, the most faithful here when whole steps are deleted, ranks the
    # cells within a step poorly (ground truth: 0.29); per cell, faithfulness sees it
    if case == "hmm_state":
        top = max(blind.methods, key=lambda m: blind.row(m)["faithfulness"])
        assert known.row(top)["auprc"] >= known.row(best)["auprc"] - 0.1
        assert blind.row("decomposition")["faithfulness"] < blind.row(top)["faithfulness"]


def test_a_users_lightning_model_on_mfcc_like_cells():
    """The zoo's Lightning GRU over (batch, time, 13) features, whose class is the sign of
    coefficient 3 in frames 4-7: ranking those cells first removes the evidence (its
    comprehensiveness beats a random ranking, sufficiency too), and the values are the
    user's own forward on the cells replaced by hand."""
    import zoo
    from zoo.mfcc_lightning import CUE_COEF, CUE_FRAMES

    case = zoo.build("mfcc_lightning")
    x = case.inputs[:8]
    cue = torch.zeros_like(x)
    cue[:, CUE_FRAMES, CUE_COEF] = 1.0
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    kw = dict(fractions=[4 / 156])  # the four cue cells of 12 x 13
    comp, suff = comprehensiveness_sufficiency(case.model, x, cue + 1e-3 * noise, **kw)
    r_comp, r_suff = comprehensiveness_sufficiency(case.model, x, noise, **kw)
    assert float(comp.mean()) > float(r_comp.mean()) + 0.2
    assert float(suff.mean()) < float(r_suff.mean())
    with torch.no_grad():
        probs = torch.softmax(case.call(x, None), dim=-1)
        target = probs.argmax(-1)
        removed = torch.softmax(case.call(x * (1 - cue), None), dim=-1)
    rows = torch.arange(len(x))
    expected = (probs[rows, target] - removed[rows, target]).double()
    torch.testing.assert_close(comp, expected, atol=1e-6, rtol=1e-6)


def test_explanations_with_feature_scores_are_ranked_per_cell_like_their_tensor():
    """``explain``'s result on multivariate input carries per-cell ``feature_scores``:
    the metrics read them, with padding, exactly as the padded cell tensor."""
    import captum_rnn

    model = LinearSeries(w=(1.0, -2.0), length_weight=0.0)
    x = torch.rand(3, 5, 2, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([5, 3, 4])
    x[1, 3:] = 0.0
    x[2, 4:] = 0.0
    explanations = captum_rnn.explain(model, x, method="feature_ablation", lengths=lengths,
                                      output="regression")  # fmt: skip
    cells = torch.zeros(3, 5, 2, dtype=torch.float64)
    for i, e in enumerate(explanations):
        cells[i, : len(e.feature_scores)] = torch.tensor(e.feature_scores)
    kw = dict(lengths=lengths, fractions=[0.2, 0.5], output="regression")
    from_explanations = comprehensiveness_sufficiency(model, x, explanations, **kw)
    from_tensor = comprehensiveness_sufficiency(model, x, cells, **kw)
    per_step = comprehensiveness_sufficiency(model, x, explanations, cells=False, **kw)
    for a, b in zip(from_explanations, from_tensor, strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.equal(from_explanations[0], per_step[0])  # cells, not steps
    bad = [captum_rnn.Explanation(tokens=["a"] * 5, scores=[0.0] * 5, method="m",
                                  feature_scores=[[0.0, 0.0]] * 4)] * 3  # fmt: skip
    with pytest.raises(ValueError, match="feature_scores has shape"):
        comprehensiveness(model, x, bad, **kw)
