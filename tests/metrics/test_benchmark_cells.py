"""benchmark with a ground truth of salient cells (batch, time, features) on multivariate
series, the parameter-randomisation screen, and the recommendation checked against the
ground truth on the HMM "state" data and on state_switching."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from captum_rnn.data import hmm_state, state_switching
from captum_rnn.metrics import benchmark
from captum_rnn.metrics._benchmark import _recommend
from captum_rnn.metrics._plausibility import auroc
from captum_rnn.models import RNNClassifier

FAST = ["integrated_gradients", "input_x_gradient", "saliency", "feature_ablation", "decomposition"]
METRICS = ["faithfulness", "comprehensiveness", "sufficiency", "auprc", "auroc", "randomization"]


def _train(x, lengths, y, features, epochs, seed=0):
    torch.manual_seed(seed)
    model = RNNClassifier(2, input_size=features, cell="gru", hidden_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for rows in torch.randperm(len(y)).split(64):
            loss = model.compute_loss(model(x[rows], lengths[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def _hmm_case():
    """A GRU predicting the label at step t from x[:t+1]; the truth of each prefix is the
    cell its last label is drawn from (tint's protocol reads that step's cells)."""
    x, lengths, y = hmm_state(120, length=(8, 14), seed=0).prefixes(min_length=3)
    model = _train(x, lengths, y, 3, 4)
    test = hmm_state(12, length=(8, 14), seed=1)
    tx, tl, _ = test.prefixes(min_length=3)
    source = torch.repeat_interleave(torch.arange(len(test)), test.lengths - 2)
    keep = torch.arange(len(tl))[::3]
    tx, tl, source = tx[keep], tl[keep], source[keep]
    truth = torch.zeros_like(tx, dtype=torch.bool)
    rows, last = torch.arange(len(tl)), tl - 1
    truth[rows, last] = test.masks[source, last]
    return model, tx, tl, truth


def _switching_case():
    train = state_switching(300, length=(10, 16), features=4, states=3, seed=0)
    model = _train(train.series, train.lengths, train.labels, 4, 8)
    test = state_switching(32, length=(10, 16), features=4, states=3, seed=1)
    return model, test.series, test.lengths, test.masks


@pytest.mark.parametrize("case", ["hmm_state", "state_switching"])
def test_recommendation_is_within_005_auprc_of_the_best_on_ground_truth(case):
    model, x, lengths, truth = _hmm_case() if case == "hmm_state" else _switching_case()
    result = benchmark(model, (x, lengths), FAST, METRICS, rationale=truth, progress=False)
    print(f"\n{case}: {len(x)} sequences, per-cell ground truth\n{result.to_markdown()}")
    blind, _ = _recommend(list(result), "faithfulness", 0.1, 0.5)
    print(f"without the ground truth: {blind} (auprc {result.row(blind)['auprc']:.3f})")
    random = result.row("random")
    best = max(result.methods, key=lambda m: result.row(m)["auprc"])
    chosen = result.row(result.recommendation)
    assert chosen["auprc"] >= result.row(best)["auprc"] - 0.05
    assert result.row(best)["auprc"] > random["auprc"] + 0.3
    # the per-cell default: feature ablation tells a step's features apart
    assert result.row("feature_ablation")["auprc"] > random["auprc"] + 0.3
    assert result.cells["feature_ablation"].shape == x.shape
    assert 0.4 < random["auroc"] < 0.6
    # gradient methods pass the screen (what shares is the architecture's recency)
    assert (
        "excluded for failing" not in result.reason
        or "integrated_gradients"
        not in (result.reason.split("excluded for failing that check:")[-1])
    )


def test_cell_rationale_as_a_tensor_or_per_sequence_masks():
    torch.manual_seed(0)
    model = RNNClassifier(2, input_size=3, cell="gru", hidden_size=4).eval()
    x = torch.randn(3, 5, 3)
    lengths = torch.tensor([5, 3, 4])
    truth = torch.zeros(3, 5, 3, dtype=torch.bool)
    truth[:, 0, 1] = truth[:, 2, 2] = True
    common = dict(methods=["input_x_gradient"], metrics=["auprc", "auroc"], progress=False)
    a = benchmark(model, (x, lengths), rationale=truth, **common)
    rows = [truth[i, : int(n)] for i, n in enumerate(lengths)]
    b = benchmark(model, (x, lengths), rationale=rows, **common)
    assert a.row("input_x_gradient")["auprc"] == pytest.approx(b.row("input_x_gradient")["auprc"])
    # per cell, by |attribution|: the method's cells, not its step sums, are ranked
    cells = a.cells["input_x_gradient"]
    assert cells.shape == (3, 5, 3) and bool((cells[1, 3:] == 0).all())
    with pytest.raises(ValueError, match="rationale"):
        benchmark(model, (x, lengths), rationale=torch.zeros(3, 5, 2, dtype=torch.bool), **common)
    with pytest.raises(ValueError, match="rationale"):
        benchmark(model, (x, lengths), rationale=[r[:, :2] for r in rows], **common)
    with pytest.raises(ValueError, match="truth_tolerance"):
        benchmark(model, (x, lengths), rationale=truth, truth_tolerance=-0.1, **common)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=2, max_size=25),
    st.lists(st.booleans(), min_size=25, max_size=25),
)
def test_auroc_is_the_share_of_correctly_ordered_pairs(scores, flags):
    s = torch.tensor(scores, dtype=torch.float64)
    r = torch.tensor(flags[: len(scores)])
    value = float(auroc(s[None], r[None])[0])
    if r.all() or not r.any():
        assert math.isnan(value)
        return
    p, q = s[r], s[~r]
    pairs = (p[:, None] > q[None]).double() + 0.5 * (p[:, None] == q[None]).double()
    assert value == pytest.approx(float(pairs.mean()), abs=1e-12)


def _row(method, seconds, faithfulness, similarity, floor=None, auprc=None):
    row = {"method": method, "reference": False, "seconds": seconds,
           "ms_per_sequence": seconds, "faithfulness": faithfulness,
           "randomization": similarity}  # fmt: skip
    if floor is not None:
        row["randomization_floor"] = floor
    if auprc is not None:
        row["auprc"] = auprc
    return row


def test_screen_measures_similarity_against_two_random_draws():
    random = {**_row("random", 0.0, 0.0, 0.0), "reference": True, "auprc": 0.33}
    # above the threshold but below what two random models share: it passes
    rows = [_row("ig", 1.0, 0.6, 0.6, floor=0.65), _row("lime", 5.0, 0.59, 0.1), random]
    assert _recommend(rows, "faithfulness", 0.1, 0.5)[0] == "ig"
    # above both: the explanation barely depends on the weights, it fails
    rows[0]["randomization_floor"] = 0.3
    choice, reason = _recommend(rows, "faithfulness", 0.1, 0.5)
    assert choice == "lime" and "ig" in reason
    # a ground truth narrows the candidates to those that agree with it
    rows = [_row("fast", 1.0, 0.6, 0.1, auprc=0.5), _row("slow", 3.0, 0.6, 0.1, auprc=0.9), random]
    assert _recommend(rows, "faithfulness", 0.1, 0.5)[0] == "fast"
    choice, reason = _recommend(rows, "faithfulness", 0.1, 0.5, truth="auprc")
    assert choice == "slow" and "ground truth" in reason
    # within truth_tolerance of the best, the faster one is kept
    rows[0]["auprc"] = 0.86
    assert (
        _recommend(rows, "faithfulness", 0.1, 0.5, truth="auprc", truth_tolerance=0.05)[0] == "fast"
    )
    assert (
        _recommend(rows, "faithfulness", 0.1, 0.5, truth="auprc", truth_tolerance=0.02)[0] == "slow"
    )
