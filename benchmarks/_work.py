"""Counting recurrent work: sequence-steps through every recurrent layer and cell."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import PackedSequence


class WorkCounter:
    """Sequence-steps through the recurrent modules of ``model``, forward and backward.

    An ``nn.RNNBase`` call counts ``batch * time`` steps, an ``nn.RNNCellBase`` call (a
    decoder run one step at a time) ``batch`` steps; each is counted again when a
    backward pass goes through its output.
    """

    def __init__(self, model: nn.Module) -> None:
        self.forward = self.backward = 0
        self.handles = [
            m.register_forward_hook(self._hook)
            for m in model.modules()
            if isinstance(m, (nn.RNNBase, nn.RNNCellBase))
        ]

    def _hook(self, module, args, output):
        x = args[0]
        if isinstance(x, PackedSequence):  # only the real steps run
            steps = x.data.shape[0]
        elif isinstance(module, nn.RNNCellBase):
            steps = x.shape[0] if x.dim() > 1 else 1
        else:
            steps = x.shape[0] * x.shape[1]
        self.forward += steps
        out = output[0] if isinstance(output, tuple) else output
        out = out.data if isinstance(out, PackedSequence) else out
        if out.requires_grad:
            out.register_hook(lambda grad: self._count_backward(steps))

    def _count_backward(self, steps):
        self.backward += steps

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def __enter__(self) -> WorkCounter:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
