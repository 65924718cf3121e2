"""Which output an explanation explains: one rule for ``explain``, metrics and callbacks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def output_name(names: Any, index: Any) -> str:
    """The display name of output ``index``: ``names[index]`` when ``names`` has it,
    else ``str(index)``.

    Example:
        >>> output_name(["negative", "positive"], 1), output_name(None, 1), output_name(["a"], 3)
        ('positive', '1', '3')
    """
    if names is not None and isinstance(index, int) and 0 <= index < len(names):
        return names[index]
    return str(index)


def resolve_target(target: Any, outputs: Tensor, classifier: bool) -> Tensor:
    """The explained output index per sequence: ``target`` checked, or the default.

    Args:
        target: ``None``, an int, or one int per sequence.
        outputs: the model's outputs ``(batch, width)`` for the sequences.
        classifier: whether ``None`` means the predicted class (else output 0, which
            needs a one-output model).

    Returns:
        A LongTensor ``(batch,)`` on the outputs' device.

    Raises:
        TypeError / ValueError: naming ``target`` and what was expected.
    """
    batch, width = outputs.shape
    if target is None:
        if classifier:
            return outputs.argmax(dim=-1)
        if width == 1:
            return torch.zeros(batch, dtype=torch.long, device=outputs.device)
        raise ValueError(
            f"target is required: the model has {width} outputs and no num_classes "
            "(pass the output index to explain)"
        )
    resolved = torch.as_tensor(target, device=outputs.device)
    if resolved.dtype.is_floating_point or resolved.dtype == torch.bool:
        raise TypeError(f"target must be an int or integer tensor, got dtype {resolved.dtype}")
    if resolved.dim() == 0:
        resolved = resolved.expand(batch)
    if resolved.shape != (batch,):
        raise ValueError(
            f"target must be an int or have shape ({batch},), got {tuple(resolved.shape)}"
        )
    if int(resolved.min()) < 0 or int(resolved.max()) >= width:
        raise ValueError(f"target must be in [0, {width}), got {resolved.tolist()}")
    return resolved.long()
