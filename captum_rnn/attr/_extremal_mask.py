"""A learned perturbation mask over time steps and features (DynaMask / ExtremalMask).

The mask ``m`` in ``[0, 1]`` per cell is optimised so that keeping the masked cells
(``m x + (1 - m) b``, ``b`` the baseline) preserves the explained class's probability
and removing them (``(1 - m) x + m b``) destroys it, under two priors: an area
constraint (the sorted mask of each sequence is pulled towards ``area`` of its real cells
at 1 and the rest at 0, as in Fong et al. 2019 and Crabbé & van der Schaar 2021) and a
temporal smoothness prior (total variation of the mask along time). Both games together
are Enguehard 2023's ExtremalMask with a fixed baseline instead of a learned one.

The optimisation starts from 0.5 everywhere and uses Adam with a fixed number of
iterations: the result is deterministic for a given model and input. Padded cells are
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
from captum_rnn._utils.state import seeded
from captum_rnn.attr._methods import AttributionMethod, MethodResult

__all__ = ["ExtremalMaskMethod"]


class ExtremalMaskMethod(AttributionMethod):
    """Learned perturbation mask with an area constraint and a temporal smoothness prior.

    Options:
        area: share of each sequence's real cells the mask should keep (default 0.1).
        n_iter: optimisation steps (default 150).
        lr: Adam's learning rate on the mask's logits (default 0.1).
        area_weight: weight of the area constraint (default 1.0).
        smoothness: weight of the temporal total variation (default 0.1).
        game: ``"both"`` (default: preserve and delete), ``"preserve"`` or ``"delete"``.
        seed: seeds the optimisation's context (it draws nothing; kept for callers).

    The attribution of a cell is its final mask value (in ``[0, 1]``).
    """

    name = "extremal_mask"
    aliases = ("dynamask",)
    options = ("area", "n_iter", "lr", "area_weight", "smoothness", "game", "seed")

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
        seed: int = 0,
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
        x, b = inputs.detach(), baselines.detach().to(inputs)
        real = self.real_steps(lengths, x.shape[1])[..., None].expand_as(x).to(x.dtype)
        cells = real.flatten(1).sum(1).clamp_min(1)
        # the area reference: per sequence, the top `area` share of real cells at 1
        n_keep = (area * cells).round().long()
        ranks = torch.arange(x[0].numel(), device=x.device)[None, :]
        # sorted ascending: padding (mask 0) first, then real cells; the top n_keep at 1
        reference = (ranks >= (x[0].numel() - n_keep)[:, None]).to(x.dtype)
        args = self.forward_args(lengths)
        logits = torch.zeros_like(x, requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=lr)
        with seeded(seed, x.device), torch.enable_grad():
            for _ in range(n_iter):
                optimizer.zero_grad()
                mask = torch.sigmoid(logits) * real
                loss = self._evidence_loss(x, b, mask, target, args, game)
                ordered = torch.sort(mask.flatten(1), dim=1).values
                area_loss = ((ordered - reference) ** 2).sum(1) / cells
                tv = (mask[:, 1:] - mask[:, :-1]).abs() * real[:, 1:] * real[:, :-1]
                tv_loss = tv.flatten(1).sum(1) / cells
                total = loss + area_weight * area_loss + smoothness * tv_loss
                total.sum().backward()
                optimizer.step()
        mask = (torch.sigmoid(logits) * real).detach()
        return MethodResult(mask)

    def _evidence_loss(
        self, x: Tensor, b: Tensor, mask: Tensor, target: Tensor, args: tuple, game: str
    ) -> Tensor:
        """Per sequence: -log p(kept) and/or -log(1 - p(deleted)) of the target class
        (classifiers); for regression, minus the kept output and plus the deleted one."""
        loss = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        eps = 1e-6
        if game in ("both", "preserve"):
            kept = self._score(mask * x + (1 - mask) * b, target, args)
            loss = loss + (-torch.log(kept + eps) if self._probabilistic else -kept)
        if game in ("both", "delete"):
            deleted = self._score((1 - mask) * x + mask * b, target, args)
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
