"""Time-forward attribution: explain the prediction at each step from the past only.

A monitoring model predicts at every step ``t`` from ``x[:t+1]``. The time-forward view
(tint's ``TimeForwardTunnel`` and ``TemporalIntegratedGradients``, Enguehard 2023)
explains that prediction and keeps the attribution of step ``t``'s cells: row ``t`` of
the result says how the cells seen at ``t`` moved the prediction made at ``t``.

- :class:`TimeForwardMethod` (``method="time_forward"``): runs any registered method
  (``base=``) on every prefix ``x[:t+1]``, with the prefix's length passed to the model
  (the future removed), and keeps step ``t``.
- :class:`TemporalIntegratedGradientsMethod` (``"temporal_integrated_gradients"``): the
  same, with Captum's ``IntegratedGradients`` moving only step ``t`` from its baseline
  while the past stays fixed at the input.
- :func:`time_forward_attributions`: the same for a user's model and batch in one call,
  explaining by default the class predicted at each step (tint's protocol).
- :func:`ground_truth_auprc`: tint's score against true salient cells: per-sequence
  min-max normalised ``|attribution|``, average precision pooled over every real cell.

Each row ``t`` explains a different output (the prediction at ``t``), so the rows' scales
follow those outputs, not the evidence. ``normalize="step"`` divides each row by its L1
norm: row ``t`` then gives each cell's share of the evidence for prediction ``t`` (signs
kept). On tint's HMM "state" data this is what lifts the time-forward view above every
raw Captum method (``benchmarks/temporal.py``).

Every prefix batch holds the sequences long enough to have step ``t``, so padded steps
get exactly 0. Sequences must be padded on the right (prefixes are cut at the front).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from captum.attr import IntegratedGradients
from torch import Tensor, nn

from captum_rnn._utils.finite import fill_non_finite_padding
from captum_rnn._utils.grad import gradient_context
from captum_rnn._utils.options import check_int
from captum_rnn._utils.ranking import average_precision
from captum_rnn._utils.state import preserve_state
from captum_rnn.attr._methods import (
    AttributionMethod,
    MethodResult,
    check_options,
    get_method,
)
from captum_rnn.models.protocol import adapt, pop_hints

__all__ = [
    "TemporalIntegratedGradientsMethod",
    "TimeForwardMethod",
    "average_precision",
    "ground_truth_auprc",
    "normalize_steps",
    "time_forward_attributions",
]


def normalize_steps(attributions: Tensor) -> Tensor:
    """Each step's attributions divided by their L1 norm (a row of zeros stays zero).

    Args:
        attributions: ``(batch, time, dim)``.

    Returns:
        The same shape: each non-zero row sums to 1 in absolute value, signs kept.

    Example:
        >>> normalize_steps(torch.tensor([[[3.0, -1.0], [0.0, 0.0]]])).tolist()
        [[[0.75, -0.25], [0.0, 0.0]]]
    """
    total = attributions.abs().sum(-1, keepdim=True)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, attributions / safe, torch.zeros_like(attributions))


def _check_normalize(normalize: str | None) -> None:
    if normalize not in (None, "step"):
        raise ValueError(f"normalize must be None or 'step', got {normalize!r}")


class _TimeForward(AttributionMethod):
    """Shared: the prefixes of a right-padded batch, one step at a time."""

    def _prefixes(self, lengths: Tensor, time: int) -> Iterator[tuple[int, Tensor, Tensor]]:
        """``(t, rows, prefix_lengths)`` for each step ``t``: the rows that have step ``t``."""
        real = self.real_steps(lengths, time)
        prefix = torch.arange(time, device=real.device)[None, :] < real.sum(1, keepdim=True)
        if not bool((real == prefix).all()):
            raise ValueError(
                "time-forward attribution needs sequences padded on the right (pad after the "
                "real steps); pass lengths= for continuous input"
            )
        counts = real.sum(1)
        for t in range(int(counts.max())):
            rows = (counts > t).nonzero()[:, 0]
            yield t, rows, torch.full_like(lengths[rows], t + 1)

    def _args(self, rows: Tensor, t: int, prefix_lengths: Tensor) -> tuple:
        ids = None if self.ids is None else self.ids[rows, : t + 1]
        return (prefix_lengths, ids)

    @staticmethod
    def _target(target: Tensor, rows: Tensor, t: int) -> Tensor:
        """One target per row: ``target`` may hold one per sequence or one per step."""
        return target[rows] if target.dim() == 1 else target[rows, t]


class TimeForwardMethod(_TimeForward):
    """Any registered method in the time-forward view.

    Options:
        base: the registered method run on each prefix (default
            ``"integrated_gradients"``).
        base_options: that method's options, as a dict.
        normalize: ``None`` (default: the base method's values) or ``"step"`` (each
            row divided by its L1 norm, see :func:`normalize_steps`).

    Example:
        >>> # explain(model, x, lengths=n, method="time_forward", base="deeplift")
    """

    name = "time_forward"

    def attribute(
        self,
        inputs: Tensor,
        baselines: Tensor,
        target: Tensor,
        lengths: Tensor,
        base: str = "integrated_gradients",
        base_options: dict[str, Any] | None = None,
        normalize: str | None = None,
    ) -> MethodResult:
        _check_normalize(normalize)
        if not isinstance(base, str) or base in (self.name, *self.aliases):
            raise ValueError(f"base must name another registered method, got {base!r}")
        if base_options is not None and not isinstance(base_options, dict):
            raise TypeError(
                f"base_options must be a dict of the base method's options, got {base_options!r}"
            )
        cls = get_method(base)
        base_options = dict(base_options or {})
        check_options(cls, base_options)
        out = torch.zeros_like(inputs)
        passes = torch.zeros(inputs.shape[0], dtype=torch.long, device=inputs.device)
        for t, rows, prefix_lengths in self._prefixes(lengths, inputs.shape[1]):
            ids = None if self.ids is None else self.ids[rows, : t + 1]
            result = cls(self.model, ids=ids).attribute(
                inputs[rows, : t + 1],
                baselines[rows, : t + 1],
                self._target(target, rows, t),
                prefix_lengths,
                **base_options,
            )
            out[rows, t] = result.attributions[:, t].detach().to(out.dtype)
            forward = getattr(result, "forward_passes", None)
            if forward is not None:
                passes[rows] += forward.to(passes.device)
        if normalize == "step":
            out = normalize_steps(out)
        return MethodResult(out, forward_passes=passes if bool(passes.any()) else None)


class TemporalIntegratedGradientsMethod(_TimeForward):
    """Temporal integrated gradients: for the prediction at step ``t`` (from ``x[:t+1]``),
    Captum's ``IntegratedGradients`` moves step ``t`` from its baseline to the input while
    the past stays at the input; row ``t`` of the result is that attribution.

    Options: ``n_steps`` (default 50), ``method`` (Captum's rule, default
    ``"gausslegendre"``), ``internal_batch_size``, ``normalize`` (``None`` or ``"step"``,
    as for :class:`TimeForwardMethod`; the convergence delta is then of the raw values).

    Example:
        >>> # explain(model, x, lengths=n, method="temporal_ig", normalize="step")
    """

    name = "temporal_integrated_gradients"
    aliases = ("temporal_ig",)

    def attribute(
        self,
        inputs: Tensor,
        baselines: Tensor,
        target: Tensor,
        lengths: Tensor,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        normalize: str | None = None,
    ) -> MethodResult:
        _check_normalize(normalize)
        n_steps = check_int("n_steps", n_steps, 1)
        if internal_batch_size is not None:
            internal_batch_size = check_int("internal_batch_size", internal_batch_size, 1)
        ig = IntegratedGradients(self.model)
        out = torch.zeros_like(inputs)
        delta = torch.zeros(inputs.shape[0], dtype=inputs.dtype, device=inputs.device)
        for t, rows, prefix_lengths in self._prefixes(lengths, inputs.shape[1]):
            x = inputs[rows, : t + 1].detach()
            start = x.clone()
            start[:, t] = baselines[rows, t]
            attr, d = ig.attribute(
                x,
                baselines=start,
                target=self._target(target, rows, t),
                additional_forward_args=self._args(rows, t, prefix_lengths),
                n_steps=n_steps,
                method=method,
                internal_batch_size=internal_batch_size,
                return_convergence_delta=True,
            )
            out[rows, t] = attr[:, t].detach()
            delta[rows] = torch.maximum(delta[rows], d.detach().abs().to(delta.dtype))
        if normalize == "step":
            out = normalize_steps(out)
        return MethodResult(out, delta=delta)


# ---------------------------------------------------------------------- one call
def time_forward_attributions(
    model: nn.Module,
    inputs: Tensor,
    lengths: Tensor | None = None,
    method: str = "integrated_gradients",
    *,
    target: int | Tensor | None = None,
    baselines: Tensor | None = None,
    normalize: str | None = None,
    **options: Any,
) -> Tensor:
    """Time-forward attributions of a continuous-input model: row ``t`` explains the
    prediction at step ``t`` (from ``x[:t+1]``) by step ``t``'s cells.

    Args:
        model: the user's model (through :func:`captum_rnn.adapt`; its hints, e.g.
            ``batch_first=``, go in ``options``).
        inputs: ``(batch, time, features)`` in the model's own layout (``(time, batch,
            features)`` for a time-major model), padded on the right.
        lengths: ``(batch,)`` true lengths; all full when ``None``.
        method: a registered method name; ``"temporal_integrated_gradients"`` runs as
            itself, any other through :class:`TimeForwardMethod`.
        target: class explained at every step: an int, ``(batch,)``, ``(batch, time)``,
            or ``None`` for the class the model predicts at each step.
        baselines: reference input, shaped like ``inputs`` (zeros when ``None``).
        normalize: ``None`` (the method's values) or ``"step"``: each row divided by
            its L1 norm (see :func:`normalize_steps`).
        options: the method's options.

    Returns:
        ``(batch, time, features)`` attributions (batch-first, one row per sequence),
        0 at padded steps.

    Example:
        >>> # attr = time_forward_attributions(gru, x, lengths, "deeplift", normalize="step")
    """
    seq = adapt(model, **pop_hints(options))
    if seq.is_token_model:
        raise ValueError("time_forward_attributions takes continuous input; use explain()")
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        raise TypeError("inputs must be a float tensor (batch, time, features)")
    if inputs.dim() != 3 or 0 in inputs.shape:
        raise ValueError(f"inputs must be (batch, time, features), got {tuple(inputs.shape)}")
    inputs = seq.to_batch_first(inputs)  # the model's own layout in
    if baselines is not None:
        baselines = seq.to_batch_first(baselines)
    batch, time = inputs.shape[:2]
    device = inputs.device
    if lengths is None:
        lengths = torch.full((batch,), time, dtype=torch.long, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    lengths = lengths.long()
    if lengths.shape != (batch,) or bool((lengths < 1).any() or (lengths > time).any()):
        raise ValueError(f"lengths must be (batch,) = ({batch},) values in [1, {time}]")
    inputs = fill_non_finite_padding(inputs, lengths)
    baselines = torch.zeros_like(inputs) if baselines is None else baselines.to(inputs)
    if method in ("temporal_integrated_gradients", "temporal_ig"):
        cls, kwargs = get_method(method), {**options, "normalize": normalize}
    else:
        cls = TimeForwardMethod
        kwargs = {"base": method, "base_options": options, "normalize": normalize}
    check_options(cls, kwargs)
    with preserve_state(seq.module), gradient_context(seq.module):
        if target is None:
            target = _predicted_per_step(seq, inputs, lengths)
        elif isinstance(target, int):
            target = torch.full((batch,), target, dtype=torch.long, device=device)
        target = torch.as_tensor(target, device=device).long()
        result = cls(seq).attribute(inputs, baselines, target, lengths, **kwargs)
    real = torch.arange(time, device=device)[None, :] < lengths[:, None]
    return result.attributions.detach() * real[..., None]


def _predicted_per_step(seq: Any, inputs: Tensor, lengths: Tensor) -> Tensor:
    """``(batch, time)``: the class predicted at each step from the prefix (0 at padding)."""
    batch, time = inputs.shape[:2]
    predicted = torch.zeros(batch, time, dtype=torch.long, device=inputs.device)
    with torch.no_grad():
        for t in range(int(lengths.max())):
            rows = (lengths > t).nonzero()[:, 0]
            out = seq(inputs[rows, : t + 1], torch.full_like(lengths[rows], t + 1))
            if seq.output is None:
                seq.observe(out)
            if seq.output == "regression" and out.shape[-1] > 1:
                raise ValueError(
                    f"the model returns {out.shape[-1]} regression outputs: pass target= "
                    "(the output index explained)"
                )
            if out.shape[-1] == 1:
                # one logit: explained as class 1's evidence (Captum's target 0)
                predicted[rows, t] = 0
            else:
                predicted[rows, t] = out.argmax(-1)
    return predicted


# ---------------------------------------------------------------------- ground truth
def ground_truth_auprc(attributions: Tensor, truth: Tensor, lengths: Tensor) -> float:
    """tint's score: ``|attributions|`` min-max normalised per sequence over its real
    cells, then average precision against ``truth`` pooled over every real cell.

    Args:
        attributions: ``(batch, time, features)``.
        truth: bool ``(batch, time, features)`` true salient cells.
        lengths: ``(batch,)``.

    Returns:
        The pooled average precision.

    Example:
        >>> truth = torch.tensor([[[True, False], [False, True]]])
        >>> ground_truth_auprc(truth.float() + 0.1, truth, torch.tensor([2]))
        1.0
    """
    if attributions.shape != truth.shape or attributions.dim() != 3:
        raise ValueError(
            f"attributions {tuple(attributions.shape)} and truth {tuple(truth.shape)} must "
            "both be (batch, time, features)"
        )
    scores, labels = [], []
    for i, n in enumerate(torch.as_tensor(lengths).tolist()):
        a = attributions[i, :n].detach().abs().double().cpu()
        low, high = a.min(), a.max()
        scores.append(((a - low) / (high - low)) if high > low else torch.zeros_like(a))
        labels.append(truth[i, :n].cpu())
    return average_precision(
        torch.cat([s.flatten() for s in scores]), torch.cat([t.flatten() for t in labels])
    )
