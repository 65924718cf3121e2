"""Leave the model and the random state exactly as they were: one place for both."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

__all__ = ["preserve_state", "seeded"]


@contextlib.contextmanager
def preserve_state(model: nn.Module, eval: bool = True) -> Iterator[nn.Module]:
    """Run a block with ``model`` in eval mode; restore every submodule's mode after.

    ``model.train(was_training)`` restores only a uniform mode: a model with frozen
    (eval) submodules inside a training model would come back with them re-enabled.
    This saves and restores each submodule's own flag, also when the block raises.

    Args:
        model: the module to protect.
        eval: put it in eval mode for the block (default).

    Example:
        >>> net = nn.Sequential(nn.Dropout(), nn.Linear(2, 2)).train()
        >>> _ = net[0].eval()
        >>> with preserve_state(net):
        ...     assert not net.training
        >>> net.training, net[0].training
        (True, False)
    """
    flags = [(m, m.training) for m in model.modules()]
    try:
        if eval:
            model.eval()
        yield model
    finally:
        for module, training in flags:
            module.training = training


@contextlib.contextmanager
def seeded(seed: int = 0, device: torch.device | str | None = None) -> Iterator[None]:
    """Seed torch, NumPy and ``random`` for a block; the caller's random state is untouched.

    Args:
        seed: the seed.
        device: a CUDA device whose generator is seeded and restored too.

    Example:
        >>> before = torch.random.get_rng_state()
        >>> with seeded(3):
        ...     a = torch.rand(1)
        >>> with seeded(3):
        ...     b = torch.rand(1)
        >>> bool(a == b), bool((torch.random.get_rng_state() == before).all())
        (True, True)
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    devices = [device.index or 0] if device.type == "cuda" else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed)  # Captum's GradientShap draws from numpy
            random.seed(seed)
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
