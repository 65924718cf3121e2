"""The rows of :func:`~captum_rnn.metrics.benchmark` for models with one output per step.

A tagger or forecaster is benchmarked output step by output step: each method explains
every selected output (``explain(..., outputs=...)``), and each output's explanation is
scored on that output (comprehensiveness and sufficiency through
:func:`comprehensiveness_sufficiency_per_output`, and with a ground truth of shape
``(batch, output steps, time)`` the average precision of each output's row). A random
attribution of the same shape is scored as the chance reference. The rows then go
through the same recommendation as one-output benchmarks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from captum_rnn._explain import explain
from captum_rnn._utils.ranking import average_precision
from captum_rnn._utils.state import seeded
from captum_rnn.explanation import Explanation
from captum_rnn.metrics._per_output import comprehensiveness_sufficiency_per_output

__all__ = ["OUTPUT_STEP_METRICS", "output_step_rows"]

#: what a per-output benchmark reports (``auprc`` only with a ground truth).
OUTPUT_STEP_METRICS = ("faithfulness", "comprehensiveness", "sufficiency", "auprc")
RANDOM = "random"


def _random_like(explanations: Sequence[Explanation], seed: int) -> list[Explanation]:
    """The explanations with their scores replaced by seeded Gaussian noise."""
    generator = np.random.default_rng(seed)
    out = []
    for e in explanations:
        scores = generator.standard_normal(np.shape(e.scores))
        out.append(dataclasses.replace(e, scores=scores.tolist(), feature_scores=None,
                                       method=RANDOM))  # fmt: skip
    return out


def _output_auprc(explanations: Sequence[Explanation], truth: Tensor, real: Tensor) -> float:
    """Mean over sequences and output rows of the average precision of ``|scores|``
    against ``truth[i, output step, real input steps]`` (rows without a true cell are
    left out)."""
    values = []
    for i, e in enumerate(explanations):
        steps = e.extra.get("output_steps") or list(range(e.n_outputs))
        columns = real[i].nonzero()[:, 0]
        for row, step in zip(np.abs(np.asarray(e.scores, dtype=float)), steps, strict=True):
            relevant = truth[i, int(step)][columns].bool()
            value = average_precision(torch.as_tensor(row), relevant)
            if not math.isnan(value):
                values.append(value)
    return float(np.mean(values)) if values else math.nan


def output_step_rows(
    model: Any,
    inputs: Tensor,
    methods: Sequence[str],
    *,
    outputs: Any,
    lengths: Tensor | None,
    real: Tensor,
    rationale: Tensor | None,
    method_kwargs: Mapping[str, Mapping[str, Any]],
    removal: str | None,
    seed: int,
    hints: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, str], tuple[str, ...]]:
    """Benchmark rows of every method (and the random reference), per output step.

    Args:
        model: the user's tagger or forecaster (its own module, not adapted).
        inputs: the sequences in the model's own layout.
        methods: method names of ``captum_rnn.attr``.
        outputs: which output steps (``"all"``, a list or a slice), as ``explain`` takes.
        lengths: true lengths (continuous input) or ``None``.
        real: ``(batch, time)`` True at real input steps (batch first).
        rationale: ``(batch, output steps, time)`` 0/1 ground truth (batch first, the
            model's output steps on the second axis), or ``None``.
        method_kwargs: options per method.
        removal: ``"replace"``/``"delete"``/``None`` (see the per-output metric).
        seed: seeds sampling methods and the random reference.
        hints: the model contract's hints.

    Returns:
        ``(rows, skipped, metrics)``: one row per method plus the random reference, the
        methods that failed with their error, and the metric names in the rows.
    """
    metrics = OUTPUT_STEP_METRICS if rationale is not None else OUTPUT_STEP_METRICS[:3]
    rows, skipped, first = [], {}, None
    for name in [*methods, RANDOM]:
        try:
            start = time.perf_counter()
            if name == RANDOM:
                if first is None:
                    raise RuntimeError("no method explained the data")
                explanations = _random_like(first, seed)
            else:
                with seeded(seed):
                    explanations = explain(
                        model, inputs, method=name, outputs=outputs, lengths=lengths,
                        **dict(method_kwargs.get(name, {})), **hints,
                    )  # fmt: skip
            seconds = time.perf_counter() - start
            comp, suff = comprehensiveness_sufficiency_per_output(
                model, inputs, explanations, lengths=lengths, removal=removal, **hints
            )
        except Exception as error:  # noqa: BLE001 - a method that fails is reported
            if name == RANDOM:
                raise
            skipped[name] = f"{type(error).__name__}: {error}"
            continue
        first = explanations if first is None else first
        n_outputs = sum(e.n_outputs for e in explanations)
        comprehensiveness = float(torch.cat(comp).mean())
        sufficiency = float(torch.cat(suff).mean())
        row: dict[str, Any] = {
            "method": name,
            "reference": name == RANDOM,
            "seconds": seconds,
            "ms_per_sequence": 1e3 * seconds / len(explanations),
            "ms_per_output": 1e3 * seconds / max(n_outputs, 1),
            "faithfulness": comprehensiveness - sufficiency,
            "comprehensiveness": comprehensiveness,
            "sufficiency": sufficiency,
        }
        if rationale is not None:
            row["auprc"] = _output_auprc(explanations, rationale, real)
        rows.append(row)
    return rows, skipped, metrics
