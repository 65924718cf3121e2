"""Streaming explanation: the attribution of the current prediction, one step at a time.

For monitoring (a patient's vital signs arriving one step at a time) a
:class:`StreamingExplainer` carries the decomposed state of the model's LSTM or GRU
(:mod:`captum_rnn.attr._decomposition`): each new step costs one step of the recurrence
plus one product with the stored per-step terms, and the attribution after the last step
is the offline decomposition of the whole sequence.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from captum_rnn.attr._decomposition import (
    RecurrentDecomposition,
    _sub_rnn,
    direction_weights,
)

__all__ = ["StreamingExplainer"]

_STATE_KEYS = ("step", "h", "c", "tanh_c", "o", "terms", "lower", "logits")


class StreamingExplainer:
    """Update the exact per-step attribution of a recurrent model's prediction as steps arrive.

    The model reads one unidirectional ``nn.LSTM``/``nn.GRU`` (stacked layers allowed)
    whose final state feeds a linear head, directly from its input (features, or the
    token embedding): the structure :class:`RecurrentDecomposition` decomposes. Every
    row of the batch advances one step per :meth:`update`.

    Args:
        model: the user's model (seen through :func:`captum_rnn.adapt`).
        target: the output to explain; by default the current prediction (the argmax of
            the head's output after each step).
        layer / head: as for :class:`RecurrentDecomposition`.
        dtype: arithmetic precision (float64 by default, which matches the offline
            decomposition to float error).
        hints: the model contract's keywords (``pad_id=`` ...).

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, input_size=3, cell="gru", hidden_size=4).eval()
        >>> stream = StreamingExplainer(model)
        >>> for x_t in torch.randn(6, 1, 3):
        ...     scores = stream.update(x_t)
        >>> scores.shape
        torch.Size([1, 6])
    """

    def __init__(
        self,
        model: nn.Module,
        target: int | None = None,
        layer: str | nn.Module | None = None,
        head: str | nn.Module | None = None,
        dtype: torch.dtype = torch.float64,
        **hints: Any,
    ) -> None:
        self.decomposition = RecurrentDecomposition(model, layer=layer, head=head, **hints)
        self.model = self.decomposition.model
        rnn = self.decomposition.rnn
        if rnn.bidirectional:
            raise ValueError(
                f"{self.decomposition.layer_name} is bidirectional: its backward direction "
                "needs the future, so it cannot stream; use RecurrentDecomposition offline"
            )
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.rnn = rnn
        self.target = target
        self.dtype = dtype
        self._head: nn.Linear | None = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every step seen (start a new stream; the model's weights are re-read)."""
        self.step = 0
        self.h: Tensor | None = None
        self.c: Tensor | None = None
        self.tanh_c: Tensor | None = None
        self.o: Tensor | None = None
        self.terms: Tensor | None = None
        self.lower: Any = None
        self.logits: Tensor | None = None
        self._weights: tuple[Tensor, ...] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The stream's state (tensors cloned): resume it later with :meth:`load_state_dict`."""
        state: dict[str, Any] = {}
        for key in _STATE_KEYS:
            value = getattr(self, key)
            if key == "terms" and value is not None:
                value = value[:, : self.step]
            if isinstance(value, Tensor):
                value = value.clone()
            elif isinstance(value, tuple):
                value = tuple(v.clone() for v in value)
            state[key] = value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume a stream saved by :meth:`state_dict` (for the same model).

        Raises:
            KeyError: naming the keys ``state`` lacks.
        """
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise KeyError(f"state lacks {missing}: pass what state_dict() returned")
        self.reset()
        for key in _STATE_KEYS:
            setattr(self, key, state[key])
        if self.step:
            self.terms = self.terms.clone()

    # ------------------------------------------------------------------ steps
    def _input(self, x_t: Tensor | int) -> Tensor:
        x_t = torch.as_tensor(x_t)
        if self.model.is_token_model:
            if x_t.dtype.is_floating_point or x_t.dim() > 1:
                raise ValueError(
                    f"a token model streams token ids of shape (batch,); got {tuple(x_t.shape)}"
                )
            ids = x_t.reshape(-1).to(self.model.embedding.weight.device)
            return ids[:, None]
        if x_t.dim() == 1:
            x_t = x_t[None]
        if x_t.dim() != 2 or x_t.shape[1] != self.rnn.input_size:
            raise ValueError(
                f"x_t must have shape (batch, {self.rnn.input_size}) (one step), "
                f"got {tuple(x_t.shape)}"
            )
        return x_t[:, None]

    def _start(self, inputs: Tensor) -> None:
        """Find the head and check the recurrent layer reads the input directly."""
        args, _ = self.decomposition._record(inputs, None, None)
        expected = self._layer_input(inputs)
        given = args[0]
        if isinstance(given, PackedSequence):
            given = pad_packed_sequence(given, batch_first=True)[0]
        elif not self.rnn.batch_first:
            given = given.transpose(0, 1)
        if given.shape != expected.shape or not torch.allclose(
            given.double(), expected.double(), atol=1e-6
        ):
            raise ValueError(
                f"{self.decomposition.layer_name} does not read the model's input (or its "
                "embedding) directly: streaming cannot rebuild its input"
            )
        # two steps tell the final state from the mean or an attention over the states
        found = self.decomposition.attribute(inputs[:, [0, 0]])
        if found.pooling != "last":
            raise ValueError(
                f"the head reads the {found.pooling} of {found.layer}'s states; streaming "
                "needs a head on the final state (use RecurrentDecomposition offline)"
            )
        self._head = dict(self.model.module.named_modules())[found.head]
        w_ih, w_hh, b_ih, b_hh = direction_weights(self.rnn)
        head_w = self._head.weight.detach().double()
        head_b = (
            self._head.bias.detach().double()
            if self._head.bias is not None
            else torch.zeros(head_w.shape[0], dtype=torch.float64, device=head_w.device)
        )
        self._weights = tuple(
            t.to(self.dtype) for t in (w_ih.T, w_hh.T, b_ih, b_hh, head_w, head_w.T, head_b)
        )
        layers = self.rnn.num_layers
        self._lower = _sub_rnn(self.rnn, 0, layers - 1).to(self.dtype) if layers > 1 else None

    def _layer_input(self, inputs: Tensor) -> Tensor:
        if self.model.is_token_model:
            with torch.no_grad():
                return self.model.embedding(inputs)
        return inputs

    def update(self, x_t: Tensor | int) -> Tensor:
        """Take the next step of every sequence; return the current attribution.

        Args:
            x_t: the new step: features ``(batch, features)`` (or ``(features,)``), or
                token ids ``(batch,)`` for a token model.

        Returns:
            ``(batch, steps so far)`` in ``dtype``: each step's contribution to the target
            output (see :attr:`logits`); they sum, with the head's bias, to that output.
        """
        inputs = self._input(x_t)
        if self._weights is None:
            self._start(inputs)
        w_ih, w_hh, b_ih, b_hh, head_w, head_wt, head_b = self._weights
        with torch.no_grad():
            x = self._layer_input(inputs).to(self.dtype)
            if self._lower is not None:
                x, self.lower = self._lower(x, self.lower)
            x = x[:, 0]
        batch, hidden = x.shape[0], self.rnn.hidden_size
        if self.step == 0:
            self.h = x.new_zeros(batch, hidden)
            self.c = x.new_zeros(batch, hidden)
            self.tanh_c = x.new_zeros(batch, hidden)
            self.terms = x.new_zeros(batch, 16, hidden)
        elif self.step == self.terms.shape[1]:
            grown = self.terms.new_zeros(batch, 2 * self.step, hidden)
            grown[:, : self.step] = self.terms
            self.terms = grown
        gi = torch.addmm(b_ih, x, w_ih)
        gh = torch.addmm(b_hh, self.h, w_hh)
        t = self.step
        if self.rnn.mode == "GRU":
            rz = torch.sigmoid(gi[:, : 2 * hidden] + gh[:, : 2 * hidden])
            z = rz[:, hidden:]
            n = torch.tanh(gi[:, 2 * hidden :] + rz[:, :hidden] * gh[:, 2 * hidden :])
            change = (1 - z) * (n - self.h)
            self.h = self.h + change
            self.terms[:, t] = change
        else:
            gates = gi + gh
            i, f, _, o = torch.sigmoid(gates).chunk(4, 1)
            self.c = f * self.c + i * torch.tanh(gates[:, 2 * hidden : 3 * hidden])
            tanh_c = torch.tanh(self.c)
            self.h = o * tanh_c
            self.terms[:, t] = tanh_c - self.tanh_c
            self.tanh_c, self.o = tanh_c, o
        self.step = t + 1
        self.logits = torch.addmm(head_b, self.h, head_wt)
        target = self.logits.argmax(-1) if self.target is None else self.target
        weight = head_w[target].expand(batch, -1) if self.target is not None else head_w[target]
        if self.o is not None:
            weight = weight * self.o
        return torch.bmm(self.terms[:, : self.step], weight[..., None])[..., 0]

    @property
    def prediction(self) -> Tensor:
        """``(batch,)`` the explained output index after the last step."""
        if self.logits is None:
            raise RuntimeError("no step yet: call update(x_t) first")
        if self.target is not None:
            return torch.full((self.logits.shape[0],), self.target, dtype=torch.long)
        return self.logits.argmax(-1)
