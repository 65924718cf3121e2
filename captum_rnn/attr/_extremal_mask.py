"""A learned perturbation mask over time steps and features (DynaMask / ExtremalMask).

The mask ``m`` in ``[0, 1]`` per cell is optimised so that keeping the masked cells
(``m x + (1 - m) b``, ``b`` the baseline) preserves the explained class's probability
and removing them (``(1 - m) x + m b``) destroys it, under two priors: an area
constraint (the sorted mask of each sequence is pulled towards ``area`` of its real cells
at 1 and the rest at 0, as in Fong et al. 2019 and Crabbé & van der Schaar 2021) and a
temporal smoothness prior (total variation of the mask along time). Both games together
are Enguehard 2023's ExtremalMask with a fixed baseline instead of a learned one.

The optimisation starts from 0.5 everywhere and uses Adam with a fixed number of
iterations; it draws nothing at random, so the result is deterministic for a given
model and input, and each sequence of a batch is optimised independently. Padded cells are
never perturbed and get exactly 0.

References:
    Crabbé & van der Schaar 2021, "Explaining time series predictions with dynamic
    masks", https://arxiv.org/abs/2106.05303; Enguehard 2023, "Learning perturbations to
    explain time series predictions", https://arxiv.org/abs/2305.18840.
"""

from __future__ import annotations

import torch
from torch import Tensor

from captum_rnn._utils.options import check_float, check_int
from captum_rnn.attr._methods import AttributionMethod, MethodResult

__all__ = ["ExtremalMaskMethod"]


class ExtremalMaskMethod(AttributionMethod):
    """Learned perturbation mask with an area constraint and a temporal smoothness prior.

    Options:
        area: share of each sequence's real cells (or steps) the mask should keep
            (default 0.1).
        n_iter: optimisation steps (default 150).
        lr: Adam's learning rate on the mask's logits (default 0.1).
        area_weight: weight of the area constraint (default 1.0).
        smoothness: weight of the temporal total variation (default 0.1).
        game: ``"both"`` (default: preserve and delete), ``"preserve"`` or ``"delete"``.
        features: ``"cell"`` (one mask value per time step and input feature, the
            default for continuous input) or ``"step"`` (one per time step, the default
            for token models, whose embedding dimensions mean nothing one by one).
        window: mask only the last ``window`` real steps of each sequence; the earlier
            ones stay at the input and get 0 (default ``None``: every step). In the
            time-forward view (``method="time_forward", base="extremal_mask",
            base_options={"window": 1}``) this is the temporal mask: step ``t``'s cells
            masked for the prediction at ``t``, the past fixed.

    The attribution of a cell is its final mask value (in ``[0, 1]``); with
    ``features="step"`` a step's value is spread evenly over its dimensions, so the
    step's score is the mask value.

    Example:
        >>> # explain(model, x, lengths=n, method="extremal_mask", smoothness=0.5)
    """

    name = "extremal_mask"
    aliases = ("dynamask",)

    def attribute(
        self,
        inputs: Tensor,
        baselines: Tensor,
        target: Tensor,
        lengths: Tensor,
        area: float = 0.1,
        n_iter: int = 150,
        lr: float = 0.1,
        area_weight: float = 1.0,
        smoothness: float = 0.1,
        game: str = "both",
        features: str | None = None,
        window: int | None = None,
    ) -> MethodResult:
        area = check_float("area", area, 0.0)
        if area > 1:
            raise ValueError(f"area must be in [0, 1], got {area}")
        n_iter = check_int("n_iter", n_iter, 1)
        lr = check_float("lr", lr, 0.0)
        area_weight = check_float("area_weight", area_weight, 0.0)
        smoothness = check_float("smoothness", smoothness, 0.0)
        if game not in ("both", "preserve", "delete"):
            raise ValueError(f"game must be 'both', 'preserve' or 'delete', got {game!r}")
        if features is None:
            features = "step" if self.model.is_token_model else "cell"
        if features not in ("cell", "step"):
            raise ValueError(f"features must be 'cell' or 'step', got {features!r}")
        x, b = inputs.detach(), baselines.detach().to(inputs)
        steps = self.real_steps(lengths, x.shape[1])
        if window is not None:
            window = check_int("window", window, 1)
            from_end = steps.flip(1).long().cumsum(1).flip(1)  # 1 at the last real step
            steps = steps & (from_end <= window)
        inside = steps[..., None].expand_as(x)
        width = x.shape[2] if features == "cell" else 1
        real = steps[..., None].expand(*x.shape[:2], width).to(x.dtype)
        units = real.flatten(1).sum(1).clamp_min(1)
        # the area reference: per sequence, the top `area` share of real units at 1;
        # sorted ascending, padding (mask 0) comes first; the sort is stable, so ties
        # (every unit starts at 0.5) break the same way however the batch is padded
        size = real[0].numel()
        n_keep = (area * units).round().long()
        ranks = torch.arange(size, device=x.device)[None, :]
        reference = (ranks >= (size - n_keep)[:, None]).to(x.dtype)
        args = self.forward_args(lengths)
        logits = torch.zeros_like(real, requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=lr)
        with torch.enable_grad():
            for _ in range(n_iter):
                optimizer.zero_grad()
                unit = torch.sigmoid(logits) * real
                loss = self._evidence_loss(x, b, unit.expand_as(x), inside, target, args, game)
                ordered = torch.sort(unit.flatten(1), dim=1, stable=True).values
                area_loss = ((ordered - reference) ** 2).sum(1) / units
                tv = (unit[:, 1:] - unit[:, :-1]).abs() * real[:, 1:] * real[:, :-1]
                tv_loss = tv.flatten(1).sum(1) / units
                total = loss + area_weight * area_loss + smoothness * tv_loss
                total.sum().backward()
                optimizer.step()
        unit = (torch.sigmoid(logits) * real).detach()
        if features == "cell":
            return MethodResult(unit)
        spread = (unit / x.shape[2]).expand_as(x).clone()
        return MethodResult(spread, step_scores=unit[..., 0].double())

    def _evidence_loss(
        self,
        x: Tensor,
        b: Tensor,
        mask: Tensor,
        inside: Tensor,
        target: Tensor,
        args: tuple,
        game: str,
    ) -> Tensor:
        """Per sequence: -log p(kept) and/or -log(1 - p(deleted)) of the target class
        (classifiers); for regression, minus the kept output and plus the deleted one.
        Cells outside the mask (``inside`` False) stay at the input in both games."""
        loss = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        eps = 1e-6
        if game in ("both", "preserve"):
            kept = self._score(torch.where(inside, mask * x + (1 - mask) * b, x), target, args)
            loss = loss + (-torch.log(kept + eps) if self._probabilistic else -kept)
        if game in ("both", "delete"):
            deleted = self._score(torch.where(inside, (1 - mask) * x + mask * b, x), target, args)
            loss = loss + (-torch.log(1 - deleted + eps) if self._probabilistic else deleted)
        return loss

    @property
    def _probabilistic(self) -> bool:
        return self.model.output != "regression"

    def _score(self, inputs: Tensor, target: Tensor, args: tuple) -> Tensor:
        outputs = self.model(inputs, *args)
        if outputs.shape[-1] == 1 and self._probabilistic:
            # one logit: the evidence for class 1 (Captum's target 0)
            p = self.model.probabilities(outputs)[:, 1]
            return p
        return self.model.scores(outputs, target)
