"""``benchmark(..., outputs=...)``: methods compared output step by output step on a tagger
and a forecaster from the zoo, each output's explanation measured on that output."""

from __future__ import annotations

import math

import pytest
import torch
import zoo
from zoo.pos_tagger import WINDOW

import captum_rnn
from captum_rnn.metrics import OutputStepContext, auprc, available_metrics, benchmark, get_metric
from captum_rnn.metrics._per_output import output_rationale_metric

METHODS = ["integrated_gradients", "feature_ablation", "occlusion"]


@pytest.fixture(scope="module")
def tagger():
    return zoo.build("pos_tagger")


def _window_truth(ids_time_major):
    """(batch, T_out, T_in): output t's rule reads inputs t-2..t."""
    time = ids_time_major.shape[0]
    t = torch.arange(time)
    window = (t[None, :] <= t[:, None]) & (t[:, None] - t[None, :] < WINDOW)
    return window[None].expand(ids_time_major.shape[1], time, time).clone()


def test_benchmark_per_output_step_on_a_time_major_tagger(tagger):
    ids = tagger.inputs[:, :6]
    result = benchmark(
        tagger.model, ids, METHODS, outputs="all", rationale=_window_truth(ids),
        progress=False, **tagger.hints,
    )  # fmt: skip
    print("\n" + result.to_markdown())
    rows = {r["method"]: r for r in result}
    assert set(rows) == {*METHODS, "random"}
    assert not result.skipped
    for name in METHODS:
        assert rows[name]["faithfulness"] > rows["random"]["faithfulness"] + 0.1
        assert rows[name]["auprc"] > rows["random"]["auprc"] + 0.1
        assert rows[name]["ms_per_output"] > 0
    assert result.recommendation in METHODS
    best = max(rows[m]["faithfulness"] for m in METHODS)
    assert (
        rows[result.recommendation]["faithfulness"]
        >= best - 0.1 * (best - rows["random"]["faithfulness"]) - 1e-9
    )


def test_benchmark_rows_equal_the_per_output_metric_by_hand(tagger):
    ids = tagger.inputs[:, :3]
    result = benchmark(
        tagger.model, ids, ["feature_ablation"], outputs="all", progress=False, **tagger.hints
    )
    row = next(r for r in result if r["method"] == "feature_ablation")
    explanations = captum_rnn.explain(
        tagger.model, ids, method="feature_ablation", outputs="all", **tagger.hints
    )
    comp, suff = captum_rnn.metrics.comprehensiveness_sufficiency_per_output(
        tagger.model, ids, explanations, **tagger.hints
    )
    assert row["comprehensiveness"] == pytest.approx(float(torch.cat(comp).mean()), abs=1e-9)
    assert row["sufficiency"] == pytest.approx(float(torch.cat(suff).mean()), abs=1e-9)
    assert "auprc" not in row  # no ground truth, no AUPRC


def test_benchmark_per_output_step_on_a_forecaster():
    case = zoo.build("multistep_forecaster")
    result = benchmark(
        case.model, case.inputs, ["integrated_gradients", "feature_ablation"],
        outputs=[0, 3], progress=False, **case.hints,
    )  # fmt: skip
    rows = {r["method"]: r for r in result}
    assert set(rows) == {"integrated_gradients", "feature_ablation", "random"}
    assert all(math.isfinite(r["faithfulness"]) for r in rows.values())


def test_output_auprc_skips_rows_without_a_true_cell_and_scores_a_perfect_ranking():
    e = captum_rnn.Explanation(
        tokens=["a", "b", "c"],
        scores=[[0.9, 0.1, 0.0], [0.0, 0.0, 0.0], [0.1, 0.2, 0.8]],
        method="m",
        output_labels=["x", "y", "z"],
        target=[0, 0, 0],
    )
    truth = torch.zeros(1, 3, 3, dtype=torch.bool)
    truth[0, 0, 0] = truth[0, 2, 2] = True  # row 1 has no true cell
    context = OutputStepContext(
        None, None, [e], rationale=truth, real=torch.ones(1, 3, dtype=torch.bool)
    )
    assert output_rationale_metric(auprc)(context) == pytest.approx(1.0)
    assert get_metric("auprc").per_output(context) == pytest.approx(1.0)
    truth[0, 2] = torch.tensor([True, False, False])  # row 2 now ranked worst: AP 1/3
    assert get_metric("auprc").per_output(context) == pytest.approx((1 + 1 / 3) / 2)


def test_benchmark_outputs_scores_every_metric_declared_per_output_and_only_those(tagger):
    ids = tagger.inputs[:, :2]
    truth = _window_truth(ids)
    result = benchmark(
        tagger.model, ids, ["occlusion"], outputs="all", rationale=truth,
        progress=False, **tagger.hints,
    )  # fmt: skip
    assert set(result.metrics) == set(available_metrics(per_output=True))
    for row in result:
        assert set(result.metrics) <= set(row)
        assert 0.0 <= row["auroc"] <= 1.0 and 0.0 <= row["token_iou"] <= 1.0
    chosen = benchmark(
        tagger.model, ids, ["occlusion"], outputs="all", metrics=["auprc"], rationale=truth,
        progress=False, **tagger.hints,
    )  # fmt: skip
    # what the recommendation reads comes along with what was asked for
    assert list(chosen.metrics) == ["faithfulness", "comprehensiveness", "sufficiency", "auprc"]
    with pytest.raises(ValueError, match="not defined per output step"):
        benchmark(
            tagger.model, ids, ["occlusion"], outputs="all", metrics=["loo_kendall"],
            **tagger.hints,
        )  # fmt: skip


def test_benchmark_outputs_rejects_a_rationale_of_the_wrong_shape(tagger):
    ids = tagger.inputs[:, :2]
    with pytest.raises(ValueError, match="rationale"):
        benchmark(
            tagger.model, ids, ["occlusion"], outputs="all",
            rationale=torch.ones(2, ids.shape[0]), progress=False, **tagger.hints,
        )  # fmt: skip
