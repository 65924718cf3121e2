"""Pruned Shapley values over events, features or cells (TimeSHAP, Bento et al. 2021).

A long sequence has too many events for KernelSHAP. TimeSHAP's temporal pruning splits
the sequence into the ``k`` most recent events and everything older, and computes the
exact Shapley value of the older block in that two-player game::

    phi_old(k) = ((f(all) - f(recent only)) + (f(older only) - f(none))) / 2

(absent events replaced by the baseline). Going back in time, the first ``k`` where
``|phi_old(k)| < tolerance`` fixes the cut: the events older than that are merged into
one coalition. Captum's ``KernelShap`` then explains what remains: each recent event
(``level="event"``), each feature over the recent window (``"feature"``) or each recent
cell (``"cell"``), plus the merged block. A group's value is spread evenly over its
cells, so summing the attributions of a group gives its Shapley value. KernelSHAP's
budget is ``samples_per_group`` coalitions per group left (its error grows with the
players at a fixed budget); a single group gets its exact value, ``f(x) - f(baseline)``.

The number of model evaluations (rows run through the model, pruning and sampling
together) is returned per sequence in ``MethodResult.forward_passes``.

Reference:
    Bento, Saleiro, Cruz, Figueiredo & Bizarro 2021, "TimeSHAP: Explaining recurrent
    models through sequence perturbations" (KDD), https://arxiv.org/abs/2012.00073.
"""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import KernelShap
from torch import Tensor

from captum_rnn._utils.options import check_float, check_int
from captum_rnn._utils.state import seeded
from captum_rnn.attr._linear import WeightedRidge
from captum_rnn.attr._methods import AttributionMethod, MethodResult

__all__ = ["PrunedShapleyMethod", "prune_events"]


class _Counting(torch.nn.Module):
    """Forwards to the model and counts the input rows it runs."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.rows = 0

    def forward(self, x: Tensor, *args: Any) -> Tensor:
        self.rows += int(x.shape[0])
        return self.model(x, *args)


class _InPlace(torch.nn.Module):
    """One sequence's real steps put back into the sequence as given, its padding held
    fixed: for a model whose output reads its padding, the events are perturbed where
    they stand."""

    def __init__(self, model: Any, row: Tensor, steps: Tensor, args: tuple) -> None:
        super().__init__()
        self.model, self.row, self.steps, self.args = model, row, steps, args

    def forward(self, x: Tensor, *_cut_args: Any) -> Tensor:
        full = self.row.expand(x.shape[0], -1, -1).clone()
        full[:, self.steps] = x
        return self.model(full, *(_repeat(a, x.shape[0]) for a in self.args))


def prune_events(
    forward: Any,
    x: Tensor,
    baseline: Tensor,
    target: Tensor,
    args: tuple,
    tolerance: float,
    chunk: int = 32,
) -> int:
    """The number of recent events kept: the smallest ``k`` whose older block has
    ``|phi_old(k)| < tolerance`` (all events when none does).

    Args:
        forward: ``(x, *args) -> outputs`` on a batch; rows of ``args`` are repeated.
        x, baseline: ``(1, time, dim)``, one sequence.
        target: ``(1,)``.
        args: its additional forward arguments (batch of 1).
        tolerance: the pruning tolerance on the older block's Shapley value.
        chunk: cut points evaluated per model call.

    Returns:
        ``k`` in ``[1, time]``.
    """
    time = x.shape[1]
    if time == 1:
        return 1

    def scores(batch: Tensor) -> Tensor:
        reps = tuple(_repeat(a, batch.shape[0]) for a in args)
        out = forward(batch, *reps)
        return out.gather(-1, target.expand(batch.shape[0])[:, None].to(out.device))[:, 0]

    full, empty = scores(torch.cat([x, baseline]))
    steps = torch.arange(time, device=x.device)
    for start in range(1, time, chunk):
        ks = torch.arange(start, min(start + chunk, time), device=x.device)
        recent = steps[None, :] >= (time - ks)[:, None]  # (len(ks), time)
        only_recent = torch.where(recent[..., None], x, baseline)
        only_older = torch.where(recent[..., None], baseline, x)
        s = scores(torch.cat([only_recent, only_older]))
        phi = ((full - s[: len(ks)]) + (s[len(ks) :] - empty)) / 2
        small = (phi.abs() < tolerance).nonzero()
        if len(small):
            return int(ks[small[0, 0]])
    return time


def _repeat(arg: Any, n: int) -> Any:
    if isinstance(arg, Tensor) and arg.dim() >= 1 and arg.shape[0] == 1:
        return arg.expand(n, *arg.shape[1:])
    return arg


class PrunedShapleyMethod(AttributionMethod):
    """TimeSHAP's pruned KernelSHAP over events, features or cells.

    Options:
        level: ``"event"`` (default), ``"feature"`` or ``"cell"``.
        tolerance: pruning tolerance on the older block's Shapley value, in the units
            of the explained output (default 0.025; 0 disables pruning).
        n_samples: coalitions KernelSHAP samples; by default ``samples_per_group``
            times the number of groups left after pruning (KernelSHAP's error grows with
            the players at a fixed budget, so this keeps it about equal as they change).
        samples_per_group: coalitions per group when ``n_samples`` is not given
            (default 50).
        perturbations_per_eval: coalitions per model call (default 64).

    ``MethodResult.forward_passes`` holds the rows run through the model per sequence,
    pruning and sampling together.

    Example:
        >>> # explain(model, x, method="timeshap", level="cell", tolerance=0.01)
    """

    name = "timeshap"
    aliases = ("pruned_shapley",)
    uses_gradients = False

    def attribute(
        self,
        inputs: Tensor,
        baselines: Tensor,
        target: Tensor,
        lengths: Tensor,
        level: str = "event",
        tolerance: float = 0.025,
        n_samples: int | None = None,
        samples_per_group: int = 50,
        perturbations_per_eval: int = 64,
    ) -> MethodResult:
        if level not in ("event", "feature", "cell"):
            raise ValueError(f"level must be 'event', 'feature' or 'cell', got {level!r}")
        tolerance = check_float("tolerance", tolerance, 0.0)
        if n_samples is not None:
            n_samples = check_int("n_samples", n_samples, 1)
        samples_per_group = check_int("samples_per_group", samples_per_group, 1)
        perturbations_per_eval = check_int("perturbations_per_eval", perturbations_per_eval, 1)
        counting = _Counting(self.model)
        shap = KernelShap(counting)
        shap.interpretable_model = WeightedRidge(alpha=0.0)
        out = torch.zeros_like(inputs)
        passes = torch.zeros(inputs.shape[0], dtype=torch.long, device=inputs.device)
        real = self.real_steps(lengths, inputs.shape[1])
        reads = self.reads_padding(inputs, lengths, target)
        for i in range(inputs.shape[0]):
            steps = real[i].nonzero()[:, 0]
            row = slice(i, i + 1)
            x, b = inputs[row][:, steps].detach(), baselines[row][:, steps].detach()
            args = self.forward_args(lengths, row, steps)
            counting.model = self.model
            if reads[i]:
                full = self.forward_args(lengths, row)
                counting.model = _InPlace(self.model, inputs[row].detach(), steps, full)
            counting.rows = 0
            k = x.shape[1]
            if tolerance > 0:
                with torch.no_grad():
                    k = prune_events(counting, x, b, target[row], args, tolerance)
            groups, sizes = self._groups(x, k, level)
            n_groups = int(groups.max()) + 1
            samples = n_samples if n_samples is not None else samples_per_group * n_groups
            if n_groups == 1:  # one player: its Shapley value is f(x) - f(baseline)
                with torch.no_grad():
                    ends = counting(torch.cat([x, b]), *(_repeat(a, 2) for a in args))
                ends = ends[:, int(target[i])] if ends.shape[-1] > 1 else ends[:, 0]
                attr = (ends[0] - ends[1]).expand_as(x)
            else:
                with seeded(0, x.device):
                    attr = shap.attribute(
                        x,
                        baselines=b,
                        target=target[row],
                        additional_forward_args=args,
                        feature_mask=groups,
                        n_samples=samples,
                        perturbations_per_eval=perturbations_per_eval,
                    )
            out[i, steps] = (attr / sizes)[0].detach().to(out.dtype)
            passes[i] = counting.rows
        return MethodResult(out, forward_passes=passes)

    @staticmethod
    def _groups(x: Tensor, k: int, level: str) -> tuple[Tensor, Tensor]:
        """Captum's feature mask ``(1, time, dim)`` (group 0: the merged older events when
        there are any) and each cell's group size."""
        time, dim = x.shape[1], x.shape[2]
        older = time - k
        t = torch.arange(time, device=x.device)[:, None].expand(time, dim)
        f = torch.arange(dim, device=x.device)[None, :].expand(time, dim)
        offset = 1 if older else 0
        if level == "event":
            groups = t - older + offset
        elif level == "feature":
            groups = f + offset
        else:
            groups = (t - older) * dim + f + offset
        groups = torch.where(t < older, torch.zeros_like(groups), groups)
        counts = torch.bincount(groups.flatten())
        sizes = counts[groups].to(x.dtype)
        return groups[None], sizes[None]
