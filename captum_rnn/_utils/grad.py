"""The one gradient context that every gradient-based path in captum-rnn goes through.

Gradient attribution on recurrent models breaks in three places that have nothing
to do with the attribution method itself:

* Lightning runs ``validate``/``test``/``predict`` under ``torch.inference_mode()``:
  no graph is recorded, and tensors made there cannot be saved for backward.
* cuDNN refuses the RNN backward pass in eval mode on CUDA (captum #328, #564, #1159).
* A failed attribution must not leave the model in another mode.

``gradient_context(model)`` fixes all three for the duration of a ``with`` block and
restores every flag it touched in a ``finally``, also when the block raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "BATCHED_GRAD_ELEMENTS",
    "GradientContext",
    "gradient_context",
    "output_gradients",
    "prepare_tensors",
    "rnn_backward_mode",
]

#: Elements of the inputs' gradients computed at once by :func:`output_gradients`.
BATCHED_GRAD_ELEMENTS = 1 << 22


def prepare_tensors(value: Any) -> Any:
    """Return ``value`` with every inference-mode tensor replaced by a normal clone.

    Tuples, lists and dicts are walked; anything that is not a tensor is returned as is.
    Call it with inference mode disabled (``gradient_context`` does).

    Args:
        value: a tensor or a (nested) tuple/list/dict of them.

    Returns:
        The same structure; tensors created under ``torch.inference_mode()`` are cloned,
        other tensors are returned unchanged (no copy).

    Example:
        >>> with torch.inference_mode():
        ...     x = torch.ones(2)
        >>> with torch.inference_mode(False):
        ...     prepare_tensors(x).is_inference()
        False
    """
    if isinstance(value, torch.Tensor):
        return value.clone() if value.is_inference() else value
    if isinstance(value, tuple):
        return tuple(prepare_tensors(v) for v in value)
    if isinstance(value, list):
        return [prepare_tensors(v) for v in value]
    if isinstance(value, dict):
        return {k: prepare_tensors(v) for k, v in value.items()}
    return value


def _on_cuda(module: nn.Module) -> bool:
    return any(p.is_cuda for p in module.parameters(recurse=False))


@contextlib.contextmanager
def rnn_backward_mode(model: nn.Module) -> Iterator[None]:
    """Make every ``nn.RNNBase`` submodule on CUDA able to run backward in eval mode.

    cuDNN only implements the RNN backward pass in training mode. For the duration of
    the block each eval-mode RNN on CUDA is put in training mode with ``dropout = 0``,
    which computes exactly the eval-mode function. Modes and dropout are restored after.
    On CPU nothing changes.

    Args:
        model: any module; its RNN submodules are found by type.

    Example:
        >>> lstm = nn.LSTM(3, 4).eval()
        >>> with rnn_backward_mode(lstm):
        ...     pass
        >>> lstm.training
        False
    """
    saved: list[tuple[nn.RNNBase, bool, float]] = []
    try:
        for module in model.modules():
            if isinstance(module, nn.RNNBase) and not module.training and _on_cuda(module):
                saved.append((module, module.training, module.dropout))
                module.dropout = 0.0
                module.training = True
        yield
    finally:
        for module, training, dropout in saved:
            module.training = training
            module.dropout = dropout


class GradientContext:
    """Context manager under which gradients can be taken through ``model``.

    On enter it leaves inference mode, enables autograd and makes RNNs on CUDA able
    to run backward in eval mode. On exit (also after an exception) it restores grad
    mode, inference mode and every module's training flag and RNN dropout.
    Inside the block, :meth:`prepare` clones tensors that were created under
    inference mode (for example a batch handed over by ``trainer.predict``) so that
    autograd can save them.

    Args:
        model: the module gradients will flow through.

    Example:
        >>> model = nn.Linear(3, 1)
        >>> with torch.inference_mode():
        ...     x = torch.randn(2, 3)
        ...     with gradient_context(model) as ctx:
        ...         x = ctx.prepare(x).requires_grad_()
        ...         model(x).sum().backward()
        >>> x.grad.shape
        torch.Size([2, 3])
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> GradientContext:
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(torch.inference_mode(False))
            stack.enter_context(torch.enable_grad())
            stack.enter_context(rnn_backward_mode(self.model))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.__exit__(*exc_info)

    @staticmethod
    def prepare(value: Any) -> Any:
        """Clone inference-mode tensors in ``value`` (see :func:`prepare_tensors`)."""
        return prepare_tensors(value)


def gradient_context(model: nn.Module) -> GradientContext:
    """Return a :class:`GradientContext` for ``model``; use it as ``with gradient_context(m):``.

    Use it around Captum calls on your own recurrent models, for example inside a
    Lightning ``predict_step`` or on CUDA in eval mode.

    Args:
        model: the module gradients will flow through.

    Returns:
        A context manager whose ``prepare(x)`` clones inference-mode tensors.

    Example:
        >>> from captum.attr import Saliency
        >>> model = nn.Sequential(nn.Linear(3, 2)).eval()
        >>> with gradient_context(model) as ctx:
        ...     attr = Saliency(model).attribute(ctx.prepare(torch.randn(1, 3)), target=0)
        >>> attr.shape
        torch.Size([1, 3])
    """
    return GradientContext(model)


def output_gradients(
    values: Tensor, inputs: tuple[Tensor, ...], count: int | None = None
) -> Iterator[tuple[slice, tuple[Tensor, ...]]]:
    """The gradients of each output column ``values[:, j]`` (summed over rows) with
    respect to ``inputs``, several outputs per backward pass.

    The backward passes of a chunk of outputs run as one batched (vmapped) pass
    (``is_grads_batched``), one by one where an operation has no batching rule; a chunk
    holds at most :data:`BATCHED_GRAD_ELEMENTS` gradient elements (read at each call).

    Args:
        values: ``(rows, outputs)``, computed from ``inputs`` with grad enabled.
        inputs: the tensors to differentiate with respect to.
        count: explain only the first ``count`` outputs (default all).

    Yields:
        ``(columns, grads)``: a slice of output columns and, per input, the stacked
        gradients ``(k, *input.shape)``. The graph is freed after the last chunk.

    Example:
        >>> x = torch.ones(2, 3, requires_grad=True)
        >>> [(cols, (g,))] = list(output_gradients(x * torch.tensor([1.0, 2.0, 3.0]), (x,)))
        >>> cols, g.shape
        (slice(0, 3, None), torch.Size([3, 2, 3]))
    """
    last = values.shape[1] if count is None else count
    chunk = max(1, BATCHED_GRAD_ELEMENTS // max(1, sum(x.numel() for x in inputs)))
    for first in range(0, last, chunk):
        columns = slice(first, min(last, first + chunk))
        yield columns, _batched_grads(values, inputs, columns, retain=columns.stop < last)


def _batched_grads(
    values: Tensor, inputs: tuple[Tensor, ...], columns: slice, retain: bool
) -> tuple[Tensor, ...]:
    eye = torch.eye(values.shape[1], dtype=values.dtype, device=values.device)[columns]
    seeds = eye[:, None, :].expand(eye.shape[0], *values.shape).contiguous()
    try:
        return torch.autograd.grad(
            values, inputs, grad_outputs=seeds, is_grads_batched=True, retain_graph=retain
        )
    except (RuntimeError, NotImplementedError):
        grads = [
            torch.autograd.grad(values, inputs, grad_outputs=seed, retain_graph=True)
            for seed in seeds
        ]
        return tuple(torch.stack(g) for g in zip(*grads, strict=True))
