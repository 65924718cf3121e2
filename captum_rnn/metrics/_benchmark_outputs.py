"""The rows of :func:`~captum_rnn.metrics.benchmark` for models with one output per step.

A tagger or forecaster is benchmarked output step by output step: each method explains
every selected output (``explain(..., outputs=...)``), and each output's explanation is
scored on that output by every chosen metric's ``per_output`` declaration
(comprehensiveness and sufficiency through
:func:`comprehensiveness_sufficiency_per_output`; with a ground truth of shape
``(batch, output steps, time)`` the plausibility metrics of each output's row). A
random attribution of the same shape is scored as the chance reference. The rows then
go through the same recommendation as one-output benchmarks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from captum_rnn._explain import explain
from captum_rnn._utils.state import seeded
from captum_rnn.explanation import Explanation
from captum_rnn.metrics._base import Metric
from captum_rnn.metrics._per_output import OutputStepContext

__all__ = ["output_step_rows"]

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


def output_step_rows(
    model: Any,
    inputs: Tensor,
    methods: Sequence[str],
    *,
    outputs: Any,
    lengths: Tensor | None,
    real: Tensor,
    rationale: Tensor | None,
    metrics: Sequence[Metric],
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
        metrics: the metrics to score, each with a ``per_output`` declaration.
        method_kwargs: options per method.
        removal: ``"replace"``/``"delete"``/``None`` (see the per-output metric).
        seed: seeds sampling methods and the random reference.
        hints: the model contract's hints.

    Returns:
        ``(rows, skipped)``: one row per method plus the random reference (a column per
        metric), and the methods that failed with their error.
    """
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
            context = OutputStepContext(
                model, inputs, explanations, lengths=lengths, removal=removal, hints=hints,
                rationale=rationale, real=real,
            )  # fmt: skip
            values = {m.name: m.per_output(context) for m in metrics}  # type: ignore[misc]
        except Exception as error:  # noqa: BLE001 - a method that fails is reported
            if name == RANDOM:
                raise
            skipped[name] = f"{type(error).__name__}: {error}"
            continue
        first = explanations if first is None else first
        n_outputs = sum(e.n_outputs for e in explanations)
        rows.append(
            {
                "method": name,
                "reference": name == RANDOM,
                "seconds": seconds,
                "ms_per_sequence": 1e3 * seconds / len(explanations),
                "ms_per_output": 1e3 * seconds / max(n_outputs, 1),
                **values,
            }
        )
    return rows, skipped
