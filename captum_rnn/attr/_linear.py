"""A closed-form weighted ridge regression for Captum's Lime and KernelShap.

Captum's default interpretable models wrap scikit-learn, which captum-rnn does not
depend on. Fitting a weighted linear model over a few hundred perturbations is one
small linear solve, so we do it in torch (float64, on the input's device).
"""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.models.linear_model import LinearModel
from torch.utils.data import DataLoader

__all__ = ["WeightedRidge"]


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
    x = torch.cat(xs).double()
    y = torch.cat(ys).double().to(x.device)
    w = torch.cat(ws).double().to(x.device).clamp_min(0)
    design = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
    sqrt_w = w.sqrt()[:, None]
    a, b = design * sqrt_w, y * sqrt_w
    # The intercept is not penalised.
    penalty = torch.full((design.shape[1],), alpha, dtype=x.dtype, device=x.device)
    penalty[-1] = 0.0
    gram = a.T @ a + torch.diag(penalty)
    solution = torch.linalg.lstsq(gram, a.T @ b).solution
    weight, bias = solution[:-1].T, solution[-1]
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
