"""A closed-form weighted ridge regression for Captum's Lime and KernelShap.

Captum's default interpretable models wrap scikit-learn, which captum-rnn does not
depend on. Fitting a weighted linear model over a few hundred perturbations is one
small linear solve, so we do it in torch (float64, on the input's device).
"""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.models.linear_model import LinearModel
from torch import Tensor
from torch.utils.data import DataLoader

__all__ = ["WeightedRidge", "weighted_ridge"]


def weighted_ridge(x: Tensor, y: Tensor, w: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Weighted ridge regression in closed form, float64, the intercept not penalised.

    Args:
        x: ``(samples, features)`` design.
        y: ``(samples, outputs)`` targets (one fit per column, sharing the design).
        w: ``(samples,)`` sample weights (negative ones count as 0).
        alpha: L2 penalty on the weights.

    Returns:
        ``(weight (outputs, features), bias (outputs,))``.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [2.0]])
        >>> weight, bias = weighted_ridge(x, 3 * x + 1, torch.ones(3), 0.0)
        >>> round(float(weight), 4), round(float(bias), 4)
        (3.0, 1.0)
    """
    x, y = x.double(), y.double().to(x.device)
    w = w.double().to(x.device).clamp_min(0)
    design = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
    sqrt_w = w.sqrt()[:, None]
    a, b = design * sqrt_w, y * sqrt_w
    penalty = torch.full((design.shape[1],), alpha, dtype=x.dtype, device=x.device)
    penalty[-1] = 0.0
    gram = a.T @ a + torch.diag(penalty)
    solution = torch.linalg.lstsq(gram, a.T @ b).solution
    return solution[:-1].T, solution[-1]


def _ridge_train(
    model: LinearModel,
    dataloader: DataLoader,
    construct_kwargs: dict[str, Any],
    alpha: float = 1e-3,
    **_: Any,
) -> dict[str, float]:
    xs, ys, ws = [], [], []
    for batch in dataloader:
        x, y = batch[0], batch[1]
        xs.append(x.reshape(x.shape[0], -1))
        ys.append(y.reshape(y.shape[0], -1))
        ws.append(batch[2].reshape(-1) if len(batch) == 3 else torch.ones(x.shape[0]))
    weight, bias = weighted_ridge(torch.cat(xs), torch.cat(ys), torch.cat(ws), alpha)
    model._construct_model_params(
        norm_type=None,
        weight_values=weight.float(),
        bias_value=bias.float(),
        **construct_kwargs,
    )
    return {}


class WeightedRidge(LinearModel):
    """Weighted ridge regression solved in closed form, usable as Lime's interpretable model.

    Args:
        alpha: L2 penalty on the weights (the intercept is not penalised).

    Example:
        >>> from captum.attr import Lime
        >>> lime = Lime(torch.nn.Linear(4, 2), interpretable_model=WeightedRidge())
    """

    def __init__(self, alpha: float = 1e-3) -> None:
        super().__init__(train_fn=_ridge_train)
        self.alpha = alpha

    def fit(self, train_data: DataLoader, **kwargs: Any) -> dict[str, float]:
        return self.train_fn(self, train_data, self.construct_kwargs, alpha=self.alpha, **kwargs)
