"""Faithfulness: does an explanation rank the tokens the way the model actually uses them?

Every metric here perturbs the input guided by the attribution and watches the model's
output for the explained target: a probability for classifiers (softmax of logits, exp of
log-probabilities, the probabilities a model returns; never raw logits), the raw output
for regressors. Every metric takes the user's own model and calls
:func:`captum_rnn.adapt` on it, with the hints ``pad_id``, ``batch_first``, ``output``,
``embedding``, ``num_classes``, ``lengths_arg`` and ``mask_arg`` as keywords.

Tokens are removed either by deletion (the sequence gets shorter: the kept tokens are
re-packed and the new lengths passed to the model) or by
replacement with a baseline token (the padding id by default, whose embedding is zero;
zeros for continuous input). A sequence with every token deleted is represented by one
baseline token, since an RNN cannot read an empty sequence.

On multivariate continuous input, per-cell attributions ``(batch, time, features)``
are ranked per cell: the top-k (step, feature) cells are replaced by the baseline (0, a
per-feature vector, or each sequence's time average with ``baseline="mean"``), as tint's
comprehensiveness and sufficiency mask cells (Enguehard 2023; Crabbé & van der Schaar
2021 use both baselines). Leave-one-out then replaces each real cell alone (its drop is
compared with the cell's attribution by :func:`loo_kendall`) and :func:`infidelity`
gives every cell its own presence. Removing whole steps cannot tell a step's features
apart; ``cells=False`` still does it.

Padding is never ranked, removed or counted; perturbed sequences are evaluated in
batches of ``batch_size`` on the model's device. All functions return one value per
sequence, a float64 tensor ``(batch,)``; average it (``nanmean`` for Kendall tau, which
is undefined for one-token sequences) to summarise a data set.

References: DeYoung et al. 2020 (ERASER: comprehensiveness and sufficiency as AOPC),
Petsiuk et al. 2018 (deletion and insertion curves), Yeh et al. 2019 (infidelity and
sensitivity, as implemented in ``captum.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import sensitivity_max as captum_sensitivity_max
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor, nn

from captum_rnn._utils.state import preserve_state, seeded
from captum_rnn.metrics._base import (
    HINT_NAMES,
    _adapt,
    _as_scores,
    _Batch,
    _check_batch_size,
    _device,
    _explainer_model,
    _forward,
    _matrix,
    _model_outputs,
    _native,
    _prepare,
    _ranks,
    _resolve_explainer,
    _resolve_target,
    _select,
    refuse_per_output,
)
from captum_rnn.models.protocol import OUTPUT_KINDS, SequenceModel

__all__ = [
    "DEFAULT_FRACTIONS",
    "PerturbationCurve",
    "comprehensiveness",
    "comprehensiveness_sufficiency",
    "deletion_auc",
    "deletion_curve",
    "infidelity",
    "insertion_auc",
    "insertion_curve",
    "kendall_tau",
    "leave_one_out",
    "loo_kendall",
    "sensitivity_max",
    "sufficiency",
]

#: The fractions of tokens removed (or kept) for comprehensiveness and sufficiency.
DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)


# ---------------------------------------------------------------------- perturbation
class _Perturber:
    """Builds perturbed copies of rows of a batch from masks of the positions to keep.

    A keep-mask ``(n, time)`` removes whole steps (tokens); ``(n, time, features)``
    replaces single cells of continuous input by the baseline.
    """

    def __init__(
        self,
        model: SequenceModel,
        batch: _Batch,
        removal: str | None,
        baseline: Any,
        cells: bool = False,
    ) -> None:
        if removal is None:
            removal = "replace" if cells else "delete"
        if removal not in ("delete", "replace"):
            raise ValueError(f"removal must be 'delete' or 'replace', got {removal!r}")
        if cells and removal == "delete":
            raise ValueError(
                "removal='delete' removes whole steps, not single cells: pass "
                "removal='replace' (or None) for per-cell attributions, or cells=False to "
                "rank steps by their summed attributions"
            )
        self.batch = batch
        self.removal = removal
        #: one fill vector per sequence ``(batch, features)`` (``baseline="mean"``)
        self.per_row = False
        if batch.is_token:
            if baseline is None:
                baseline = batch.padding_idx
            if isinstance(baseline, bool) or not isinstance(baseline, int):
                raise TypeError(
                    f"baseline must be a token id (int) for token input, got {baseline!r}"
                )
            vocab = model.vocab_size
            if baseline < 0 or (vocab is not None and baseline >= vocab):
                raise ValueError(f"baseline token id {baseline} is outside the vocabulary")
            self.fill: Tensor | int = baseline
        elif isinstance(baseline, str):
            if baseline != "mean":
                raise ValueError(
                    f"baseline must be a number, a per-feature vector or 'mean' for "
                    f"continuous input, got {baseline!r}"
                )
            self.fill, self.per_row = _time_average(batch), True
        else:
            features = batch.x.shape[2]
            fill = torch.as_tensor(0.0 if baseline is None else baseline, dtype=batch.x.dtype)
            if fill.dim() == 0:
                fill = fill.expand(features)
            if fill.shape != (features,):
                raise ValueError(
                    f"baseline must be a number, 'mean' or have shape ({features},) for "
                    f"continuous input, got {tuple(fill.shape)}"
                )
            self.fill = fill.to(batch.x.device)

    def make(self, rows: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
        """Rows ``rows`` of the batch keeping only the real positions (steps, or cells
        when ``keep`` is 3-D) where ``keep``."""
        batch = self.batch
        x, real = batch.x[rows], batch.mask[rows]
        fill = self.fill[rows][:, None, :] if self.per_row else self.fill
        if keep.dim() == 3:  # cells of continuous input, replaced in place
            keep = keep | ~real[..., None]
            return torch.where(keep, x, fill), batch.lengths[rows]
        keep = keep & real
        if self.removal == "replace":
            cond = keep | ~real
            if batch.is_token:
                x = torch.where(cond, x, torch.full_like(x, fill))
            else:
                x = torch.where(cond[..., None], x, fill)
            return x, batch.lengths[rows]
        new_lengths = keep.sum(dim=1)
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
        if batch.is_token:
            x = x.gather(1, order)
        else:
            x = x.gather(1, order[..., None].expand_as(x))
        pad = torch.arange(x.shape[1], device=x.device)[None, :] >= new_lengths[:, None]
        empty = new_lengths == 0
        if batch.is_token:
            x = x.masked_fill(pad, batch.padding_idx)
            x[:, 0] = torch.where(empty, torch.full_like(x[:, 0], fill), x[:, 0])
        else:
            x = x.masked_fill(pad[..., None], 0.0)
            first = fill[:, 0] if self.per_row else fill
            x[:, 0] = torch.where(empty[:, None], first, x[:, 0])
        return x, new_lengths.clamp_min(1)


def _time_average(batch: _Batch) -> Tensor:
    """Each sequence's per-feature average over its real steps ``(batch, features)``:
    the "average" baseline of Crabbé & van der Schaar 2021 and tint's experiments."""
    real = batch.mask[..., None].to(batch.x.dtype)
    return (batch.x * real).sum(dim=1) / real.sum(dim=1).clamp_min(1.0)


def _evaluate(
    model: nn.Module,
    perturber: _Perturber,
    target: Tensor,
    kind: str,
    count: int,
    spec: Callable[[slice], tuple[Tensor, Tensor]],
    batch_size: int,
) -> Tensor:
    """Run ``count`` perturbed sequences through the model, ``batch_size`` at a time.

    ``spec(slice)`` returns the rows and keep-masks of that slice of perturbations,
    so that the masks are built one chunk at a time.
    """
    values = []
    for start in range(0, count, batch_size):
        rows, keep = spec(slice(start, min(start + batch_size, count)))
        x, lengths = perturber.make(rows, keep)
        values.append(_forward(model, x, lengths, target[rows], kind, batch_size))
    if not values:
        return torch.zeros(0, dtype=torch.float64, device=target.device)
    return torch.cat(values)


def _counts(fractions: Sequence[float], lengths: Tensor) -> Tensor:
    """Tokens per fraction and sequence ``(B, F)``: round-half-up of ``f * n``, in [1, n]."""
    fr = torch.as_tensor(list(fractions), dtype=torch.float64, device=lengths.device)
    if fr.dim() != 1 or fr.numel() == 0 or bool(((fr <= 0) | (fr > 1)).any()):
        raise ValueError(f"fractions must be a non-empty list of values in (0, 1], got {fractions}")
    n = lengths.double()[:, None]
    k = torch.floor(fr[None, :] * n + 0.5 + 1e-9).long()
    return torch.minimum(k.clamp_min(1), lengths[:, None])


def _cell_scores(attributions: Any, batch: _Batch, cells: bool | None) -> Tensor | None:
    """Per-cell scores ``(batch, time, features)`` (float64, 0 at padding) when the
    attributions are ranked per cell, else ``None`` (per step, as before).

    ``cells=None`` ranks cells when the input is continuous with several features and
    the attributions are a tensor ``(batch, time, features)``; ``True`` requires that;
    ``False`` sums the features of each step.
    """
    if cells is not None and not isinstance(cells, bool):
        raise TypeError(f"cells must be None, True or False, got {cells!r}")
    if cells is False or attributions is None:
        return None
    features = None if batch.is_token else int(batch.x.shape[2])
    if features is not None and not isinstance(attributions, Tensor):
        attributions = _explanation_cells(attributions, batch, features)
    per_cell = (
        isinstance(attributions, Tensor)
        and features is not None
        and attributions.dim() == 3
        and attributions.shape[0] == batch.size
        and attributions.shape[2] == features
    )
    if cells is None and not (per_cell and features > 1):
        return None
    if not per_cell:
        raise ValueError(
            "cells=True needs continuous input (batch, time, features) and attributions of "
            f"the same shape; got {'token ids' if batch.is_token else 'continuous input'} and "
            f"attributions of type {type(attributions).__name__}"
            + (f" {tuple(attributions.shape)}" if isinstance(attributions, Tensor) else "")
        )
    # The width checks and padding of the per-step scores apply to the cells too.
    _as_scores(attributions.abs().sum(dim=-1), batch)
    scores = attributions.detach().to(device=batch.x.device, dtype=torch.float64)
    width = min(int(scores.shape[1]), batch.time)
    out = torch.zeros(batch.size, batch.time, features, dtype=torch.float64, device=scores.device)
    out[:, :width] = scores[:, :width]
    if not bool(torch.isfinite(out[batch.mask]).all()):
        raise ValueError("attributions contain NaN or infinite values at real cells")
    return out.masked_fill(~batch.mask[..., None], 0.0)


def _cells_of_input(batch: _Batch, cells: bool | None) -> bool:
    """Whether single cells are perturbed when no attributions decide it (leave one
    out): ``None`` means per cell on continuous input with several features."""
    if batch.is_token:
        if cells:
            raise ValueError(
                "cells=True needs continuous input (batch, time, features); token ids are "
                "removed per token: pass cells=None or cells=False"
            )
        return False
    return int(batch.x.shape[2]) > 1 if cells is None else bool(cells)


def _explanation_cells(attributions: Any, batch: _Batch, features: int) -> Any:
    """``Explanations`` of continuous input that carry ``feature_scores`` (one
    ``(length, features)`` block each) as a padded ``(batch, time, features)`` tensor;
    anything else is returned as it is (scored per step)."""
    refuse_per_output(attributions)
    rows = list(attributions)
    blocks = [getattr(e, "feature_scores", None) for e in rows]
    if not rows or any(b is None for b in blocks):
        return attributions
    out = torch.zeros(batch.size, batch.time, features, dtype=torch.float64)
    if len(rows) != batch.size:
        raise ValueError(f"attributions must have {batch.size} entries, got {len(rows)}")
    for i, block in enumerate(blocks):
        cells = torch.as_tensor(block, dtype=torch.float64)
        real = batch.mask[i].cpu()
        if cells.shape != (int(real.sum()), features):
            raise ValueError(
                f"attributions[{i}].feature_scores has shape {tuple(cells.shape)} but sequence "
                f"{i} has {int(real.sum())} real steps of {features} features"
            )
        out[i, real] = cells
    return out


class _Setup:
    """What all perturbation metrics compute first.

    ``options`` are the metric's keyword arguments (its ``locals()`` or checked
    ``**kwargs``): ``lengths``, ``removal``, ``baseline``, ``output``, ``absolute``,
    ``batch_size``, ``cells`` and ``hints`` (for :func:`captum_rnn.adapt`); missing ones
    take the metrics' defaults.

    Per-cell attributions of continuous input are ranked over every real (step,
    feature) cell of a sequence: ``units`` counts the ranked positions per sequence
    (steps, or steps x features) and ``ranks`` is ``(batch, time)`` or
    ``(batch, time, features)``.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        attributions: Any,
        target: Any,
        options: Mapping[str, Any],
    ) -> None:
        self.batch_size = _check_batch_size(options.get("batch_size", 256))
        hints = options.get("hints") or {}
        self.model, self.kind = _adapt(model, options.get("output"), **hints)
        model = self.model
        self.batch = _prepare(model, inputs, options.get("lengths"))
        cells = _cell_scores(attributions, self.batch, options.get("cells"))
        self.cells = cells is not None
        if attributions is None:  # leave-one-out: no ranking, cells by the input alone
            self.cells = _cells_of_input(self.batch, options.get("cells"))
        if cells is not None:
            self.scores = cells
        else:
            self.scores = None if attributions is None else _as_scores(attributions, self.batch)
        removal, baseline = options.get("removal"), options.get("baseline")
        self.perturber = _Perturber(model, self.batch, removal, baseline, self.cells)
        # One forward pass of the unperturbed batch gives both the target and m(x).
        outputs = _model_outputs(model, self.batch, self.batch_size)
        self.target = _resolve_target(model, self.batch, target, self.batch_size, outputs)
        absolute = options.get("absolute", False)
        self.units = self.batch.lengths
        self.ranks = None
        if self.cells:
            self.units = self.batch.lengths * int(self.batch.x.shape[2])
        if cells is not None:
            real = self.batch.mask[..., None].expand(cells.shape)
            self.ranks = _ranks(cells.flatten(1), real.flatten(1), absolute).view(cells.shape)
        elif self.scores is not None:
            self.ranks = _ranks(self.scores, self.batch.mask, absolute)
        self.full = _select(model, outputs, self.target, self.kind)

    @classmethod
    def from_kwargs(
        cls,
        model: nn.Module,
        inputs: Any,
        attributions: Any,
        target: Any,
        kwargs: dict,
        *extra: str,
    ) -> _Setup:
        """For metrics that take ``**kwargs``: unknown keywords are an error; the model
        contract's hints are passed on; ``extra`` names the metric's own keywords."""
        unknown = set(kwargs) - set(_SETUP_KEYS) - set(extra) - set(HINT_NAMES)
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
        hints = {k: v for k, v in kwargs.items() if k in HINT_NAMES and k != "output"}
        return cls(model, inputs, attributions, target, {**kwargs, "hints": hints})

    def evaluate(self, count: int, spec: Callable[[slice], tuple[Tensor, Tensor]]) -> Tensor:
        """The target's value on ``count`` perturbed sequences described by ``spec``."""
        return _evaluate(
            self.model, self.perturber, self.target, self.kind, count, spec, self.batch_size
        )

    def top_k_spec(self, rows: Tensor, ks: Tensor, keep_top: bool):
        ranks = self.ranks

        def spec(part: slice) -> tuple[Tensor, Tensor]:
            r, k = rows[part], ks[part]
            top = ranks[r] < k.view(-1, *([1] * (ranks.dim() - 1)))
            return r, top if keep_top else ~top

        return spec


# ---------------------------------------------------------------------- ERASER AOPC
def comprehensiveness_sufficiency(
    model: nn.Module,
    inputs: Any,
    attributions: Any,
    target: Any = None,
    *,
    lengths: Any = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    removal: str | None = None,
    baseline: Any = None,
    output: str | None = None,
    absolute: bool = False,
    batch_size: int = 256,
    cells: bool | None = None,
    **hints: Any,
) -> tuple[Tensor, Tensor]:
    """Comprehensiveness and sufficiency (ERASER) in one batched pass.

    For each fraction ``f`` the top ``k = round(f * n)`` real tokens (at least 1) by
    attribution are removed (comprehensiveness: ``m(x) - m(x without them)``, higher is
    better) or kept alone (sufficiency: ``m(x) - m(them only)``, lower is better), where
    ``m`` is the target's probability. Each is averaged over the fractions (the area
    over the perturbation curve, AOPC). Identical perturbations (short sequences round
    several fractions to the same ``k``) run once, so the pair costs at most
    ``1 + 2 * len(fractions)`` forward passes per sequence.

    Args:
        model: a module with ``forward(x, lengths)`` (e.g. ``RNNClassifier``).
        inputs: token ids ``(batch, time)`` or continuous input ``(batch, time, features)``.
        attributions: scores ``(batch, time)`` or ``(batch, time, dim)`` (summed over
            ``dim``), or ``Explanations``; for continuous input with several features,
            ``(batch, time, features)`` attributions are ranked per cell (see ``cells``).
        target: output explained: an int, one per sequence, or ``None`` (predicted class).
        lengths: true lengths; from the padding (the model's ``pad_id``) for token ids.
        fractions: fractions of each sequence's tokens (or real cells), each in ``(0, 1]``.
        removal: ``"delete"`` (shorten the sequence) or ``"replace"`` (with ``baseline``);
            ``None``: delete tokens and steps, replace cells (a cell cannot be deleted).
        baseline: token id (default the model's ``pad_id``) or, for continuous input, a
            value or per-feature vector (default 0) used by ``"replace"``, or ``"mean"``:
            each sequence's per-feature average over its real steps (the "average"
            baseline of Crabbé & van der Schaar 2021).
        output: what the model returns: ``"logits"``, ``"probs"``, ``"log_probs"``
            or ``"regression"`` (``None``: inferred by :func:`captum_rnn.adapt`). The
            former ``"auto"``/``"probability"``/``"raw"`` are deprecated.
        absolute: rank by ``|attribution|`` instead of signed attribution.
        batch_size: perturbed sequences per forward pass.
        cells: rank single (step, feature) cells instead of steps: ``k = round(f * n *
            features)`` real cells are replaced by the baseline (removed) or are the
            only ones not replaced (kept), ERASER's AOPC on masked cells as tint
            (Enguehard 2023) computes it. ``None`` (default): per cell when the input is
            continuous with several features and the attributions are a
            ``(batch, time, features)`` tensor; ``False``: sum each step's features and
            remove steps, as for token input.
        hints: ``pad_id``, ``batch_first``, ``embedding``, ``num_classes``,
            ``lengths_arg``, ``mask_arg`` for :func:`captum_rnn.adapt`.

    Returns:
        ``(comprehensiveness, sufficiency)``, each float64 ``(batch,)``.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> ids = torch.tensor([[4, 5, 6, 7, 0]])
        >>> comp, suff = comprehensiveness_sufficiency(model, ids, torch.rand(1, 5))
        >>> comp.shape, suff.shape
        (torch.Size([1]), torch.Size([1]))
    """
    setup = _Setup(model, inputs, attributions, target, locals())
    return _aopc(model, setup, fractions, comprehensive=True), _aopc(
        model, setup, fractions, comprehensive=False
    )


def _aopc(
    model: nn.Module, setup: _Setup, fractions: Sequence[float], comprehensive: bool
) -> Tensor:
    batch, units = setup.batch, setup.units
    ks = _counts(fractions, units)  # (B, F)
    rows = torch.arange(batch.size, device=ks.device)[:, None].expand_as(ks)
    width = int(units.max()) + 1 if units.numel() else 1
    key = rows * width + ks
    unique, inverse = torch.unique(key.reshape(-1), return_inverse=True)
    u_rows, u_ks = unique // width, unique % width
    values = setup.full[u_rows].clone()
    # Keeping every token (sufficiency at k = n) is the original input: no forward needed.
    todo = torch.ones_like(u_ks, dtype=torch.bool) if comprehensive else u_ks < units[u_rows]
    t_rows, t_ks = u_rows[todo], u_ks[todo]
    spec = setup.top_k_spec(t_rows, t_ks, keep_top=not comprehensive)
    values[todo] = setup.evaluate(int(t_rows.numel()), spec)
    perturbed = values[inverse].view_as(ks)
    return (setup.full[:, None] - perturbed).mean(dim=1)


def comprehensiveness(
    model: nn.Module, inputs: Any, attributions: Any, target: Any = None, **kwargs: Any
) -> Tensor:
    """ERASER comprehensiveness as AOPC (higher is better); see
    :func:`comprehensiveness_sufficiency` for the arguments.

    Returns:
        float64 ``(batch,)``: mean over fractions of ``m(x) - m(x without top-k)``.
    """
    setup = _Setup.from_kwargs(model, inputs, attributions, target, kwargs, "fractions")
    return _aopc(model, setup, kwargs.get("fractions", DEFAULT_FRACTIONS), comprehensive=True)


def sufficiency(
    model: nn.Module, inputs: Any, attributions: Any, target: Any = None, **kwargs: Any
) -> Tensor:
    """ERASER sufficiency as AOPC (lower is better); see
    :func:`comprehensiveness_sufficiency` for the arguments.

    Returns:
        float64 ``(batch,)``: mean over fractions of ``m(x) - m(top-k only)``.
    """
    setup = _Setup.from_kwargs(model, inputs, attributions, target, kwargs, "fractions")
    return _aopc(model, setup, kwargs.get("fractions", DEFAULT_FRACTIONS), comprehensive=False)


_SETUP_KEYS = ("lengths", "removal", "baseline", "output", "absolute", "batch_size", "cells")


# ---------------------------------------------------------------------- curves
@dataclass
class PerturbationCurve:
    """Deletion or insertion curves, one per sequence, with their areas.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        fractions: per sequence, the fractions of its tokens removed (deletion) or
            inserted (insertion), from 0 to 1.
        values: per sequence, the model's target output at those fractions.
        area: float64 ``(batch,)``, the trapezoidal area under each curve over ``[0, 1]``.
        unit: what was removed or inserted: ``"tokens"`` (steps) or ``"cells"``.
    """

    kind: str
    fractions: list[Tensor]
    values: list[Tensor]
    area: Tensor
    unit: str = "tokens"

    def mean_curve(self, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
        """The curves interpolated on a common grid of ``points`` fractions and averaged."""
        grid = np.linspace(0.0, 1.0, points)
        curves = [
            np.interp(grid, f.cpu().numpy(), v.cpu().numpy())
            for f, v in zip(self.fractions, self.values, strict=True)
        ]
        return grid, np.mean(curves, axis=0)

    def plot(self, ax: Axes | None = None, label: str | None = None) -> Figure:
        """Draw the mean curve (its mean area in the legend); returns the Figure."""
        if ax is None:
            fig = Figure(figsize=(5, 3.5), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        grid, mean = self.mean_curve()
        name = label or self.kind
        ax.plot(grid, mean, label=f"{name} (AUC {float(self.area.mean()):.3f})")
        verb = "removed" if self.kind == "deletion" else "inserted"
        ax.set_xlabel(f"fraction of {self.unit} {verb}, most important first")
        ax.set_ylabel("target output")
        ax.set_title(f"{self.kind} curve")
        ax.legend(loc="best", fontsize="small")
        return fig


def _curve(kind: str, steps: int | None, setup: _Setup) -> PerturbationCurve:
    batch, units = setup.batch, setup.units
    per_row: list[Tensor] = []
    for n in units.tolist():
        if steps is None:
            ks = torch.arange(n + 1)
        else:
            ks = torch.unique(
                torch.floor(
                    torch.linspace(0, 1, steps + 1, dtype=torch.float64) * n + 0.5 + 1e-9
                ).long()
            )
        per_row.append(ks)
    rows = torch.cat([torch.full((len(k),), i) for i, k in enumerate(per_row)]).to(batch.x.device)
    ks = torch.cat(per_row).to(batch.x.device)
    n_of = units[rows]
    # Deletion at k = 0 and insertion at k = n are the original input.
    unchanged = ks == 0 if kind == "deletion" else ks == n_of
    values = setup.full[rows].clone()
    todo = ~unchanged
    spec = setup.top_k_spec(rows[todo], ks[todo], keep_top=kind == "insertion")
    values[todo] = setup.evaluate(int(todo.sum()), spec)
    fractions, curves, areas = [], [], []
    start = 0
    for i, k in enumerate(per_row):
        f = k.double() / int(units[i])
        v = values[start : start + len(k)].cpu()
        start += len(k)
        fractions.append(f)
        curves.append(v)
        areas.append(torch.trapezoid(v, f))
    area = torch.stack(areas).to(torch.float64)
    return PerturbationCurve(kind, fractions, curves, area, "cells" if setup.cells else "tokens")


def deletion_curve(
    model: nn.Module,
    inputs: Any,
    attributions: Any,
    target: Any = None,
    *,
    lengths: Any = None,
    steps: int | None = 10,
    removal: str | None = None,
    baseline: Any = None,
    output: str | None = None,
    absolute: bool = False,
    batch_size: int = 256,
    cells: bool | None = None,
    **hints: Any,
) -> PerturbationCurve:
    """Deletion curves: remove the most important tokens first and follow the output.

    A faithful ranking makes the target output fall fast: a small area is better.
    Per-cell attributions of multivariate continuous input replace cells by the
    baseline instead, over every real cell (see ``cells`` in
    :func:`comprehensiveness_sufficiency`).

    Args:
        steps: points per curve beyond the first: the tokens removed at fraction
            ``j / steps`` (rounded, duplicates dropped); ``None`` removes one token at a
            time (``n + 1`` points, ``n`` forward passes per sequence).
        Other arguments: as :func:`comprehensiveness_sufficiency`.

    Returns:
        A :class:`PerturbationCurve`; ``.area`` is float64 ``(batch,)``.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> curve = deletion_curve(model, torch.tensor([[4, 5, 6]]), torch.rand(1, 3))
        >>> curve.fractions[0].tolist()
        [0.0, 0.3333333333333333, 0.6666666666666666, 1.0]
    """
    steps = _check_steps(steps)
    return _curve("deletion", steps, _Setup(model, inputs, attributions, target, locals()))


def insertion_curve(
    model: nn.Module, inputs: Any, attributions: Any, target: Any = None, **kwargs: Any
) -> PerturbationCurve:
    """Insertion curves: start from the empty (or all-baseline) sequence and insert the
    most important tokens first. A faithful ranking makes the output rise fast: a large
    area is better. Keyword arguments as :func:`deletion_curve` (``steps``, ``lengths``,
    ``removal``, ``baseline``, ``output``, ``absolute``, ``batch_size``, ``cells`` and the
    model contract's hints).

    Returns:
        A :class:`PerturbationCurve`; ``.area`` is float64 ``(batch,)``.
    """
    steps = _check_steps(kwargs.pop("steps", 10))
    setup = _Setup.from_kwargs(model, inputs, attributions, target, kwargs)
    return _curve("insertion", steps, setup)


def _check_steps(steps: Any) -> int | None:
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be None (every token) or an int >= 1, got {steps!r}")
    return steps


def deletion_auc(
    model: nn.Module, inputs: Any, attributions: Any, target: Any = None, **kwargs: Any
) -> Tensor:
    """Area under :func:`deletion_curve` per sequence (lower is better)."""
    return deletion_curve(model, inputs, attributions, target, **kwargs).area


def insertion_auc(
    model: nn.Module, inputs: Any, attributions: Any, target: Any = None, **kwargs: Any
) -> Tensor:
    """Area under :func:`insertion_curve` per sequence (higher is better)."""
    return insertion_curve(model, inputs, attributions, target, **kwargs).area


# ---------------------------------------------------------------------- leave one out
def leave_one_out(
    model: nn.Module,
    inputs: Any,
    target: Any = None,
    *,
    lengths: Any = None,
    removal: str | None = None,
    baseline: Any = None,
    output: str | None = None,
    batch_size: int = 256,
    cells: bool | None = None,
    **hints: Any,
) -> Tensor:
    """The output drop ``m(x) - m(x without token t)`` for every real position ``t``,
    or for every real (step, feature) cell of multivariate continuous input.

    Costs one forward pass per token (per real cell), batched. It does not depend on
    any explanation, so compute it once and pass it as ``drops=`` to
    :func:`loo_kendall` for every method.

    Args:
        removal: ``"delete"`` (shorten the sequence) or ``"replace"`` (with
            ``baseline``); ``None``: delete tokens and steps, replace cells.
        cells: replace each real cell alone by the baseline (``(batch, time,
            features)`` drops). ``None`` (default): per cell for continuous input with
            several features, per token otherwise; ``False``: remove whole steps;
            ``True`` on token ids is a ``ValueError``.
        Other arguments: as :func:`comprehensiveness_sufficiency`.

    Returns:
        float64 ``(batch, time)``, or ``(batch, time, features)`` per cell, exactly 0
        at padded positions.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> leave_one_out(model, torch.tensor([[4, 5, 0]])).shape
        torch.Size([1, 3])
    """
    setup = _Setup(model, inputs, None, target, locals())
    batch = setup.batch
    real = batch.mask[..., None].expand(batch.x.shape) if setup.cells else batch.mask
    flat = real.flatten(1)
    units = torch.arange(flat.shape[1], device=batch.x.device)
    rows = torch.repeat_interleave(torch.arange(batch.size, device=units.device), flat.sum(1))
    positions = units[None, :].expand(batch.size, -1)[flat]

    def spec(part: slice) -> tuple[Tensor, Tensor]:
        keep = units[None, :] != positions[part][:, None]
        return rows[part], keep.view(-1, *real.shape[1:])

    values = setup.evaluate(int(rows.numel()), spec)
    drops = torch.zeros(real.shape, dtype=torch.float64, device=batch.x.device)
    drops[real] = setup.full[rows] - values
    return drops


def _signs(values: Tensor, mask: Tensor, atol: float = 0.0) -> Tensor:
    """``(batch, n, n)`` sign of ``values[i] - values[j]``, 0 within rounding noise: 1e-6
    of the row's largest magnitude, or ``atol``."""
    diff = values[:, :, None] - values[:, None, :]
    scale = values.abs().masked_fill(~mask, 0.0).amax(dim=1).clamp_min(1e-30)
    tolerance = torch.clamp(1e-6 * scale, min=atol)[:, None, None]
    return torch.sign(diff) * (diff.abs() > tolerance)


#: Leave-one-out drops are differences of float32 probabilities (or outputs): drops
#: closer than this are ties (the same sequence left by two deletions, rounded apart).
DROP_TIE = 1e-6


def kendall_tau(a: Tensor, b: Tensor, mask: Tensor | None = None, *, b_atol: float = 0.0) -> Tensor:
    """Kendall's tau-b between rows of ``a`` and ``b`` over the positions in ``mask``.

    Ties count as in tau-b, and values within float32 rounding of each other (1e-6 of the
    row's largest magnitude) are ties: equal in exact arithmetic (two deletions that leave
    the same sequence), they must not be ranked by rounding noise, which differs between a
    batch and a sequence alone. A row with fewer than two positions, or constant in ``a``
    or ``b``, gives NaN.

    Args:
        a, b: ``(batch, n)`` tensors (or 1-D for one row).
        mask: boolean ``(batch, n)``; all positions when ``None``.
        b_atol: values of ``b`` closer than this are ties too (for leave-one-out drops,
            whose rounding noise is absolute).

    Returns:
        float64 ``(batch,)`` (a 0-d tensor for 1-D input).

    Example:
        >>> kendall_tau(torch.tensor([1.0, 2, 3]), torch.tensor([1.0, 3, 2]))
        tensor(0.3333, dtype=torch.float64)
    """
    squeeze = a.dim() == 1
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if squeeze:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(
            f"a and b must have the same (batch, n) shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    mask = torch.ones_like(a, dtype=torch.bool) if mask is None else mask.to(a.device).bool()
    b = b.to(a.device)
    n = a.shape[1]
    upper = torch.ones(n, n, dtype=torch.bool, device=a.device).triu(1)
    out = []
    # Chunk the batch so the (batch, n, n) pair tensors stay small.
    step = max(1, 2**22 // max(n * n, 1))
    for s in range(0, a.shape[0], step):
        ca, cb, cm = a[s : s + step], b[s : s + step], mask[s : s + step]
        pairs = cm[:, :, None] & cm[:, None, :] & upper
        da = _signs(ca, cm) * pairs
        db = _signs(cb, cm, b_atol) * pairs
        concord = (da * db).sum(dim=(1, 2))
        untied_a = (da != 0).sum(dim=(1, 2)).double()
        untied_b = (db != 0).sum(dim=(1, 2)).double()
        denom = torch.sqrt(untied_a * untied_b)
        out.append(torch.where(denom > 0, concord / denom.clamp_min(1e-300), torch.nan))
    tau = torch.cat(out)
    return tau[0] if squeeze else tau


def loo_kendall(
    model: nn.Module,
    inputs: Any,
    attributions: Any,
    target: Any = None,
    *,
    lengths: Any = None,
    drops: Tensor | None = None,
    removal: str | None = None,
    baseline: Any = None,
    output: str | None = None,
    batch_size: int = 256,
    cells: bool | None = None,
    **hints: Any,
) -> Tensor:
    """Kendall tau-b between the attributions and the leave-one-out output drops.

    1 means the explanation orders the tokens exactly as removing each alone does;
    a random attribution scores about 0. Per-cell attributions of multivariate
    continuous input are compared with the drops of single cells, over every real cell
    of a sequence, so a method that finds the feature the model reads scores higher
    than one that spreads a step's score over its features.

    Args:
        drops: precomputed :func:`leave_one_out` drops, ``(batch, time)`` or per cell
            ``(batch, time, features)``; computed when ``None``.
        cells: compare single cells (see :func:`comprehensiveness_sufficiency`):
            ``None`` (default) per cell when the input is continuous with several
            features and the attributions are per cell (a tensor ``(batch, time,
            features)`` or ``Explanations`` with ``feature_scores``); ``False`` sums each
            step's attributions and compares steps.
        Other arguments: as :func:`comprehensiveness_sufficiency`.

    Returns:
        float64 ``(batch,)``; NaN for one-token sequences or constant attributions.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> loo_kendall(model, torch.tensor([[4, 5, 6]]), torch.rand(1, 3)).shape
        torch.Size([1])
    """
    seq, _ = _adapt(model, output if output in OUTPUT_KINDS else None, **hints)
    batch = _prepare(seq, inputs, lengths)
    found = _cell_scores(attributions, batch, cells)
    if found is None:
        scores, real = _as_scores(attributions, batch), batch.mask
    else:
        scores, real = found, batch.mask[..., None].expand(found.shape)
    if drops is None:
        drops = leave_one_out(
            seq,
            _native(seq, batch.x),
            target,
            lengths=batch.lengths,
            removal=removal,
            baseline=baseline,
            output=output,
            batch_size=batch_size,
            cells=found is not None,
        )
    drops = torch.as_tensor(drops, device=scores.device, dtype=torch.float64)
    if drops.shape != scores.shape:
        unit = "cell" if found is not None else "step"
        raise ValueError(
            f"drops must have shape {tuple(scores.shape)} (one per {unit}), got "
            f"{tuple(drops.shape)}: compute them with leave_one_out(..., "
            f"cells={found is not None}) or pass the matching cells="
        )
    return kendall_tau(scores.flatten(1), drops.flatten(1), real.flatten(1), b_atol=DROP_TIE)


# ---------------------------------------------------------------------- Captum metrics
def _input_space(model: SequenceModel, batch: _Batch, baseline: Any) -> tuple[Tensor, Tensor]:
    """The input in the space the RNN reads and its reference (padding embedding / 0)."""
    if batch.is_token:
        with torch.no_grad():
            embedded = model.embed(batch.x)
            ids = batch.padding_idx if baseline is None else int(baseline)
            reference = model.embed(torch.full_like(batch.x, ids))
        return embedded, reference
    reference = torch.as_tensor(
        0.0 if baseline is None else baseline, dtype=batch.x.dtype, device=batch.x.device
    )
    return batch.x, reference.expand_as(batch.x).clone()


def infidelity(
    model: nn.Module,
    inputs: Any,
    attributions: Any,
    target: Any = None,
    *,
    lengths: Any = None,
    baseline: Any = None,
    noise: str = "subset",
    scale: float | None = None,
    n_perturb_samples: int = 10,
    normalize: bool = True,
    output: str | None = None,
    seed: int = 0,
    max_examples_per_batch: int | None = None,
    cells: bool | None = None,
    **hints: Any,
) -> Tensor:
    """Captum's ``infidelity`` for per-token attributions, perturbing in embedding space.

    Each token ``t`` gets a presence ``z_t`` (1 = as is, 0 = its baseline embedding);
    the model reads ``baseline + z * (embedding - baseline)``. A perturbation ``I``
    lowers presences at real positions and infidelity is
    ``E[(sum_t I_t * a_t - (f(x) - f(x with z = 1 - I)))^2]``: how well the attributions
    predict the output change when tokens (partly) disappear. Per-cell attributions of
    multivariate continuous input give every real (step, feature) cell its own presence,
    so single cells are perturbed and each cell's attribution must predict its share.
    Padded positions are never perturbed.

    Args:
        baseline: token id whose embedding is the reference (default the padding id,
            as integrated gradients uses), or a value/vector for continuous input.
        noise: ``"subset"``: each real token is removed with probability ``scale``
            (default 0.25), the perturbation attributions are meant to predict;
            ``"gaussian"``: ``I_t ~ N(0, scale^2)`` (default ``scale`` 0.2).
        n_perturb_samples: perturbations per sequence.
        normalize: rescale the attributions by the least-squares optimal factor first
            (Captum's ``normalize``), so methods in different units compare fairly.
        output: what the model returns (see :func:`comprehensiveness_sufficiency`);
            classifiers are scored by their probabilities.
        seed: seeds the perturbations (the caller's random state is untouched).
        cells: one presence per cell instead of per step: ``None`` (default) per cell
            when the input is continuous with several features and the attributions are
            per cell (see :func:`comprehensiveness_sufficiency`); ``False`` sums each
            step's attributions and perturbs whole steps.
        Other arguments: as :func:`comprehensiveness_sufficiency`.

    Returns:
        float64 ``(batch,)``, lower is better.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> infidelity(model, torch.tensor([[4, 5, 6]]), torch.rand(1, 3)).shape
        torch.Size([1])
    """
    if noise not in ("subset", "gaussian"):
        raise ValueError(f"noise must be 'subset' or 'gaussian', got {noise!r}")
    if scale is None:
        scale = 0.25 if noise == "subset" else 0.2
    if not scale > 0 or (noise == "subset" and scale > 1):
        raise ValueError(
            f"scale must be in (0, 1] for subset noise and > 0 for gaussian, got {scale}"
        )
    if n_perturb_samples < 1:
        raise ValueError(f"n_perturb_samples must be >= 1, got {n_perturb_samples}")
    model, kind = _adapt(model, output, **hints)
    batch = _prepare(model, inputs, lengths)
    found = _cell_scores(attributions, batch, cells)
    scores = _as_scores(attributions, batch) if found is None else found
    target = _resolve_target(model, batch, target, 256)
    embedded, reference = _input_space(model, batch, baseline)
    presence = batch.mask.to(embedded.dtype)
    if found is not None:  # one presence per (step, feature) cell
        presence = presence[..., None].expand(found.shape).contiguous()

    def forward(z: Tensor, emb: Tensor, ref: Tensor, lens: Tensor, *ids: Tensor) -> Tensor:
        x = ref + (z if z.dim() == emb.dim() else z[..., None]) * (emb - ref)
        out = model(x, lens, ids[0] if ids else None)
        return _matrix(model, out, kind)

    longest = int(batch.lengths.max())

    def perturb(z: Tensor) -> tuple[Tensor, Tensor]:
        # Draw over the longest real length only, so extra padding changes no draw.
        shape = (z.shape[0], longest, *z.shape[2:])
        if noise == "subset":
            drawn = (torch.rand(shape, device=z.device) < scale).to(z.dtype)
        else:
            drawn = torch.randn(shape, device=z.device, dtype=z.dtype) * scale
        drop = torch.zeros_like(z)
        drop[:, :longest] = drawn
        drop = drop * (z > 0).to(z.dtype)
        return drop, z - drop

    extra = (embedded, reference, batch.lengths) + ((batch.x,) if batch.is_token else ())
    with preserve_state(model.module), seeded(seed, _device(model)):
        values = captum_infidelity(
            forward,
            perturb,
            presence,
            scores.to(presence.dtype),
            additional_forward_args=extra,
            target=target,
            n_perturb_samples=n_perturb_samples,
            max_examples_per_batch=max_examples_per_batch,
            normalize=normalize,
        )
    # The normalised form can round to tiny negatives; infidelity is a mean of squares.
    return values.detach().double().clamp_min(0.0)


def sensitivity_max(
    model: nn.Module,
    inputs: Any,
    method: Any = "integrated_gradients",
    target: Any = None,
    *,
    lengths: Any = None,
    radius: float = 0.05,
    n_perturb_samples: int = 10,
    norm_ord: str = "fro",
    seed: int = 0,
    method_kwargs: dict[str, Any] | None = None,
    max_examples_per_batch: int | None = None,
    **hints: Any,
) -> Tensor:
    """Captum's ``sensitivity_max`` for token models: noise in embedding space.

    Adds uniform noise in an L-infinity ball to the embeddings (or continuous features)
    of real positions only and reports the largest relative change of the per-token
    explanation, ``max ||a(x + d) - a(x)|| / ||a(x)||``, over ``n_perturb_samples``
    draws. The target stays the one explained at ``x``.

    Args:
        method: a name from ``captum_rnn.attr.available_methods()`` or a callable
            ``(model, inputs, lengths, target) -> scores (batch, time)`` that accepts
            embedded input.
        radius: the ball's radius as a fraction of the standard deviation of the real
            positions' embedding entries (Captum's absolute 0.02 means nothing for an
            embedding of arbitrary scale).
        n_perturb_samples: noise draws per sequence (each costs one explanation).
        norm_ord: the norm, as in Captum.
        seed: seeds the noise (and sampling methods).
        method_kwargs: options for the method (``n_steps`` ...).
        Other arguments: as :func:`comprehensiveness_sufficiency`.

    Returns:
        float64 ``(batch,)``, lower is better.
    """
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    explainer = _resolve_explainer(method, method_kwargs)
    model, _ = _adapt(model, **hints)
    batch = _prepare(model, inputs, lengths)
    target = _resolve_target(model, batch, target, 256)
    embedded, _ = _input_space(model, batch, None)
    size = batch.size
    absolute = float(radius * embedded[batch.mask].std().clamp_min(1e-12))

    longest = int(batch.lengths.max())

    def perturb(x: Tensor) -> Tensor:
        mask = batch.mask.repeat_interleave(x.shape[0] // size, dim=0)[..., None]
        # Draw over the longest real length only, so extra padding changes no draw.
        noise = torch.zeros_like(x)
        noise[:, :longest].uniform_(-absolute, absolute)
        return x + noise * mask

    def explanation(x: Tensor, additional_forward_args: tuple[Tensor, Tensor]) -> Tensor:
        if isinstance(x, tuple):  # Captum passes the unperturbed input as a 1-tuple
            (x,) = x
        lens, tgt = additional_forward_args
        scores = explainer(_explainer_model(explainer, model), x, lens, tgt)
        scores = torch.as_tensor(scores, dtype=torch.float64)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lens[:, None]
        return (scores.to(x.device) * mask,)  # Captum iterates over a tuple of tensors

    with seeded(seed, _device(model)):
        values = captum_sensitivity_max(
            explanation,
            embedded,
            perturb_func=perturb,
            n_perturb_samples=n_perturb_samples,
            norm_ord=norm_ord,
            max_examples_per_batch=max_examples_per_batch,
            additional_forward_args=(batch.lengths, target),
        )
    return values.detach().double()
