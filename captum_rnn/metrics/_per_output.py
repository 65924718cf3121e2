"""Faithfulness per output step: output ``t``'s explanation measured on output ``t``.

A tagger or forecaster explained with ``explain(..., outputs=...)`` has one row of scores
per output step. Each row is an ordinary one-output explanation of one flattened output
column (``step * classes + class``), so the ERASER metrics apply to it unchanged: the
sequence is repeated once per explained output, each copy with its row's scores and
its column as target, and the model is read through the contract with its per-step
outputs turned into per-step probabilities (softmax over each step's classes, not over
all steps) before flattening.

:class:`OutputStepContext` is what a metric's ``per_output`` declaration gets (see
:class:`~captum_rnn.metrics.Metric`): the explanations of every output step and what
scoring them needs. ``benchmark(outputs=...)`` and the training callbacks score a
sequence-output explanation with every registered metric that declares it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from captum_rnn.explanation import Explanation
from captum_rnn.metrics._faithfulness import DEFAULT_FRACTIONS, comprehensiveness_sufficiency
from captum_rnn.models.protocol import SequenceModel, adapt

__all__ = [
    "OutputStepContext",
    "comprehensiveness_sufficiency_per_output",
    "output_aopc",
    "output_rationale_metric",
]


class _StepProbabilities(SequenceModel):
    """The contract's view of a per-step model whose outputs are normalised per step."""

    def __init__(self, module: nn.Module, kind: str, **hints: Any) -> None:
        target_kind = "regression" if kind == "regression" else "probs"
        super().__init__(module, **{**hints, "output": target_kind, "output_steps": True})
        object.__setattr__(self, "_kind", kind)

    def _as_matrix(self, out: Any, time: int, lengths: Tensor) -> Tensor:
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
            out = out[0]
        if isinstance(out, Tensor) and out.dim() == 3:
            if self._kind == "logits" and out.shape[-1] == 1:
                out = torch.sigmoid(out)  # one binary logit per step
            elif self._kind == "logits":
                out = torch.softmax(out, dim=-1)
            elif self._kind == "log_probs":
                out = out.exp()
        return super()._as_matrix(out, time, lengths)


def comprehensiveness_sufficiency_per_output(
    model: nn.Module,
    inputs: Tensor,
    explanations: Sequence[Explanation],
    *,
    lengths: Any = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    removal: str | None = None,
    baseline: Any = None,
    absolute: bool = False,
    batch_size: int = 256,
    **hints: Any,
) -> tuple[list[Tensor], list[Tensor]]:
    """ERASER comprehensiveness and sufficiency of every output step's explanation.

    Args:
        model: the tagger or forecaster that was explained.
        inputs: the inputs given to ``explain``, in the model's own layout (tensors).
        explanations: what ``explain(model, inputs, outputs=...)`` returned.
        lengths: true lengths (continuous input), as given to ``explain``.
        fractions, baseline, absolute, batch_size: as in
            :func:`~captum_rnn.metrics.comprehensiveness_sufficiency`.
        removal: ``"replace"`` or ``"delete"``; ``None`` replaces for a tagger (deleting
            tokens would move its output steps) and deletes otherwise.
        hints: the model contract's hints (``output="regression"`` for a forecaster...).

    Returns:
        ``(comprehensiveness, sufficiency)``: one float64 tensor per sequence, one value
        per explained output step (the order of ``output_labels``).

    Raises:
        ValueError: for explanations without output rows, or ``removal="delete"`` on a
            tagger.

    Example:
        >>> comp, suff = comprehensiveness_sufficiency_per_output(
        ...     tagger, ids, explain(tagger, ids))  # doctest: +SKIP
    """
    if not explanations or not all(e.is_sequence_output for e in explanations):
        raise ValueError(
            "explanations must come from explain(..., outputs=...): one row per output"
        )
    seq = adapt(model, **{**hints, "output_steps": True})
    x = seq.to_batch_first(inputs)
    if len(explanations) != x.shape[0]:
        raise ValueError(f"{len(explanations)} explanations for {x.shape[0]} input sequences")
    with torch.no_grad():
        flat = seq(x[:1], None if lengths is None else torch.as_tensor(lengths)[:1])
    steps_shape = seq.step_shape
    width = 1 if steps_shape is None else steps_shape[1]
    if seq.output is None:
        seq.observe(flat.reshape(-1, width))
    aligned = steps_shape is not None and steps_shape[0] == x.shape[1]
    if removal is None:
        removal = "replace" if aligned else "delete"
    if aligned and removal == "delete":
        raise ValueError(
            "removal='delete' would move a tagger's output steps: pass removal='replace'"
        )
    if seq.is_token_model:
        real = seq.padding_mask(x)
    else:
        n = (
            torch.as_tensor(lengths)
            if lengths is not None
            else torch.full((x.shape[0],), x.shape[1])
        )
        real = torch.arange(x.shape[1])[None, :] < n[:, None]
    rows, scores, targets, counts = [], [], [], []
    for i, e in enumerate(explanations):
        steps = e.extra.get("output_steps") or list(range(e.n_outputs))
        block = torch.zeros((e.n_outputs, x.shape[1]), dtype=torch.float64)
        block[:, real[i].cpu()] = torch.tensor(e.scores, dtype=torch.float64)
        scores.append(block)
        targets += [s * width + c for s, c in zip(steps, e.target, strict=True)]
        rows += [i] * e.n_outputs
        counts.append(e.n_outputs)
    index = torch.tensor(rows)
    repeated = x[index.to(x.device)]
    repeated = seq.to_native(repeated)
    kind = seq.output
    step_model = _StepProbabilities(seq.module, kind, **{k: v for k, v in seq.hints.items()
                                                         if k not in ("output", "output_steps")})  # fmt: skip
    comp, suff = comprehensiveness_sufficiency(
        step_model,
        repeated,
        torch.cat(scores),
        torch.tensor(targets),
        lengths=None if seq.is_token_model or lengths is None else torch.as_tensor(lengths)[index],
        fractions=fractions,
        removal=removal,
        baseline=baseline,
        absolute=absolute,
        batch_size=batch_size,
    )
    return list(comp.split(counts)), list(suff.split(counts))


@dataclass
class OutputStepContext:
    """What a metric's ``per_output`` function gets: explanations of every output step.

    Attributes:
        model: the user's tagger, forecaster or seq2seq model (its own module).
        inputs: the explained sequences in the model's own layout.
        explanations: one :class:`Explanation` per sequence, one row per output step.
        lengths: true lengths of continuous input, or ``None``.
        removal: ``"replace"``, ``"delete"`` or ``None``, as the faithfulness metrics.
        hints: the model contract's hints.
        rationale: ``(batch, output steps, time)`` 0/1 ground truth, batch first, or
            ``None``.
        real: ``(batch, time)`` True at real input steps (with ``rationale``).
        cache: results shared by metrics (comprehensiveness and sufficiency).
    """

    model: nn.Module
    inputs: Tensor
    explanations: Sequence[Explanation]
    lengths: Any = None
    removal: str | None = None
    hints: Mapping[str, Any] = field(default_factory=dict)
    rationale: Tensor | None = None
    real: Tensor | None = None
    cache: dict[str, Any] = field(default_factory=dict)


def output_aopc(part: str) -> Callable[[OutputStepContext], float]:
    """The per-output form of ``"comprehensiveness"``, ``"sufficiency"`` or their
    difference ``"faithfulness"``: mean over sequences and output steps, each output
    step's explanation measured on that output."""

    def compute(ctx: OutputStepContext) -> float:
        if "aopc" not in ctx.cache:
            comp, suff = comprehensiveness_sufficiency_per_output(
                ctx.model, ctx.inputs, ctx.explanations, lengths=ctx.lengths,
                removal=ctx.removal, **ctx.hints,
            )  # fmt: skip
            ctx.cache["aopc"] = float(torch.cat(comp).mean()), float(torch.cat(suff).mean())
        comp, suff = ctx.cache["aopc"]
        return {"comprehensiveness": comp, "sufficiency": suff, "faithfulness": comp - suff}[part]

    return compute


def output_rationale_metric(
    function: Callable[..., Tensor],
) -> Callable[[OutputStepContext], float]:
    """The per-output form of a plausibility metric ``function(scores, rationale)``:
    each output row's ``|scores|`` against ``rationale[i, output step, real steps]``,
    averaged over the rows that have a true cell."""

    def compute(ctx: OutputStepContext) -> float:
        if ctx.rationale is None or ctx.real is None:
            raise ValueError("a plausibility metric per output step needs a rationale")
        values = []
        for i, e in enumerate(ctx.explanations):
            steps = e.extra.get("output_steps") or list(range(e.n_outputs))
            columns = ctx.real[i].nonzero()[:, 0]
            scores = torch.as_tensor(np.abs(np.asarray(e.scores, dtype=float)))
            truth = ctx.rationale[i][torch.as_tensor(steps, dtype=torch.long)][:, columns]
            keep = truth.any(dim=1)
            if keep.any():
                values.append(function(scores[keep], truth[keep].long()))
        if not values:
            return math.nan
        return float(torch.cat(values).double().nanmean())

    return compute
