"""Non-finite input: refused at real steps, accepted as padding (NaN-padded series).

tslearn and others pad unequal-length series with NaN. A padded step is never read as
data, so with ``lengths`` given such padding is replaced by 0 (the padding every model
accepts); a NaN or infinite value at a real step is an error that names the first one,
and, when every bad value sits in trailing whole steps, the ``lengths`` to pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fill_non_finite_padding", "non_finite_message"]


def non_finite_message(finite: Tensor) -> str:
    """The error for non-finite input; ``finite`` is ``(batch, time)``, True where a step
    is usable (finite, or padding)."""
    finite = finite.cpu()
    row = int((~finite).any(dim=1).nonzero()[0])
    step = int((~finite[row]).nonzero()[0])
    message = f"inputs contains NaN or infinite values (sequence {row}, step {step})"
    time = finite.shape[1]
    # each sequence's length if its non-finite steps were trailing padding
    trailing = time - torch.flip(finite, [1]).to(torch.int64).cumsum(1).eq(0).sum(1)
    steps = torch.arange(time)[None, :]
    if bool((finite == (steps < trailing[:, None])).all()) and int(trailing.min()) > 0:
        message += (
            "; if those steps are padding (as tslearn pads with NaN), pass "
            f"lengths={trailing.tolist()}"
        )
    return message


def fill_non_finite_padding(inputs: Tensor, lengths: Tensor | None) -> Tensor:
    """``inputs`` ``(batch, time, features)`` with non-finite padded steps set to 0.

    Args:
        inputs: batch-first continuous input.
        lengths: true lengths ``(batch,)``, or ``None`` (every step is real).

    Returns:
        ``inputs`` itself when every value is finite, else a copy with the padded steps'
        non-finite values set to 0.

    Raises:
        ValueError: for a NaN or infinite value at a real step.

    Example:
        >>> x = torch.tensor([[[1.0], [float("nan")]]])
        >>> fill_non_finite_padding(x, torch.tensor([1])).flatten().tolist()
        [1.0, 0.0]
    """
    finite = torch.isfinite(inputs).all(dim=-1)
    if bool(finite.all()):
        return inputs
    time = inputs.shape[1]
    padded = torch.zeros_like(finite)
    if lengths is not None:
        padded = (
            torch.arange(time, device=inputs.device)[None, :] >= lengths.to(inputs.device)[:, None]
        )
    if not bool((finite | padded).all()):
        raise ValueError(non_finite_message(finite | padded))
    return torch.where(torch.isfinite(inputs) | ~padded[..., None], inputs, 0.0)
