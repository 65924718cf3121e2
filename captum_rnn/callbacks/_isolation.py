"""Run work inside a training loop without changing what the training does next.

A callback that explains the model between two training steps must leave behind
exactly the state it found: the random streams the training draws from (torch on CPU
and CUDA, numpy, Python's ``random``), every module's training flag, the parameters'
``requires_grad`` flags and gradients, and the attention maps the model records.
Autocast is switched off so explanations are computed in the model's own precision.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

__all__ = ["isolated"]

_MISSING = object()


@contextlib.contextmanager
def isolated(model: nn.Module) -> Iterator[None]:
    """Fork every random stream and save the model's mutable state; restore it after.

    Args:
        model: the module the block will run (and possibly differentiate).

    Example:
        >>> model = nn.Dropout(0.5).train()
        >>> before = torch.random.get_rng_state()
        >>> with isolated(model):
        ...     _ = torch.rand(3)
        ...     model.eval()
        >>> torch.equal(before, torch.random.get_rng_state()), model.training
        (True, True)
    """
    cuda = sorted(
        {
            p.device.index if p.device.index is not None else torch.cuda.current_device()
            for p in model.parameters()
            if p.is_cuda
        }
    )
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    modes = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    grad_values = [None if g is None else g.detach().clone() for g in grads]
    maps = model.__dict__.get("attention_maps", _MISSING)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=cuda))
            stack.enter_context(torch.autocast("cpu", enabled=False))
            if cuda:
                stack.enter_context(torch.autocast("cuda", enabled=False))
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        for module, training in modes:
            module.training = training
        for p, flag, grad, value in zip(params, flags, grads, grad_values, strict=True):
            p.requires_grad_(flag)
            if grad is not None and value is not None:
                with torch.no_grad():
                    grad.copy_(value)
            if p.grad is not grad:
                p.grad = grad
        if maps is not _MISSING:
            model.__dict__["attention_maps"] = maps
