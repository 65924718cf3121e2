"""Recurrent state analysis: per-step hidden states and LSTM/GRU gate activations over time.

``nn.LSTM`` and ``nn.GRU`` return only hidden states: the gates that decide what a
network remembers are never exposed. :func:`recurrent_states` recomputes them by
re-running the cell equations from the module's own weights (every layer and
direction, variable lengths respected), so the states it returns equal the module's
outputs; the tests check that. :func:`unit_token_responses` summarises, across a data
set, which hidden units respond most to which tokens.

The equations are PyTorch's (see the ``nn.LSTM`` / ``nn.GRU`` docs):

* LSTM: ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid(W_ih x + b_ih + W_hh h + b_hh)``,
  ``c' = f * c + i * g``, ``h' = o * tanh(c')`` (times ``W_hr`` with ``proj_size``);
* GRU: ``r, z = sigmoid(...)``, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
  ``h' = (1 - z) * n + z * h``;
* RNN: ``h' = tanh or relu(W_ih x + b_ih + W_hh h + b_hh)``.

Dropout between stacked layers is a training-time effect and is not applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from captum_rnn._utils.options import check_int
from captum_rnn._utils.state import preserve_state

__all__ = [
    "GATE_NAMES",
    "RecurrentTrace",
    "UnitTokenResponses",
    "recurrent_states",
    "unit_token_responses",
]

#: the gate activations recorded per cell type (LSTM's "cell" is the candidate g)
GATE_NAMES: dict[str, tuple[str, ...]] = {
    "lstm": ("input", "forget", "cell", "output", "cell_state"),
    "gru": ("reset", "update", "new"),
    "rnn": (),
}


@dataclass
class RecurrentTrace:
    """Per-step hidden states and gate activations of a recurrent module.

    Tensors are shaped ``(num_layers * num_directions, batch, time, size)``, indexed like
    the module's ``h_n`` (layer-major, forward direction first), zero at padded steps.

    Attributes:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        hidden: the hidden state after each step.
        gates: gate name -> activations (see :data:`GATE_NAMES`).
        lengths: ``(batch,)`` true lengths.
        num_layers: stacked layers.
        num_directions: 1 or 2.
    """

    cell: str
    hidden: Tensor
    gates: dict[str, Tensor] = field(default_factory=dict)
    lengths: Tensor | None = None
    num_layers: int = 1
    num_directions: int = 1

    def _slot(self, layer: int, direction: int) -> int:
        layer = layer % self.num_layers if -self.num_layers <= layer < self.num_layers else None
        if layer is None:
            raise ValueError(f"layer must be in [-{self.num_layers}, {self.num_layers})")
        if direction not in range(self.num_directions):
            raise ValueError(f"direction must be in [0, {self.num_directions}), got {direction}")
        return layer * self.num_directions + direction

    def gate(self, name: str, layer: int = -1, direction: int = 0) -> Tensor:
        """Activations ``(batch, time, size)`` of one gate in one layer and direction.

        Example:
            >>> trace = recurrent_states(nn.LSTM(3, 4, batch_first=True), torch.randn(2, 5, 3))
            >>> trace.gate("forget").shape
            torch.Size([2, 5, 4])
        """
        if name not in self.gates:
            raise ValueError(
                f"gate must be one of {sorted(self.gates)} for a {self.cell}, got {name!r}"
            )
        return self.gates[name][self._slot(layer, direction)]

    def layer_output(self, layer: int = -1) -> Tensor:
        """Hidden states of one layer, directions concatenated: ``(batch, time, dirs * size)``.

        For the last layer this equals the module's (padded) output.
        """
        first = self._slot(layer, 0)
        return torch.cat(list(self.hidden[first : first + self.num_directions]), dim=-1)

    def final_hidden(self) -> Tensor:
        """``h_n`` as the module returns it: ``(num_layers * num_directions, batch, size)``."""
        batch, time = self.hidden.shape[1:3]
        lengths = self.lengths if self.lengths is not None else torch.full((batch,), time)
        rows = torch.arange(batch)
        last = (lengths - 1).to(self.hidden.device)
        out = []
        for slot in range(self.hidden.shape[0]):
            step = last if slot % self.num_directions == 0 else torch.zeros_like(last)
            out.append(self.hidden[slot, rows, step])
        return torch.stack(out)


def _reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of ``x`` (batch, time, ...) within its own length."""
    time = x.shape[1]
    steps = torch.arange(time, device=x.device)[None, :]
    source = (lengths[:, None] - 1 - steps).clamp_min(0)
    source = torch.where(steps < lengths[:, None], source, steps)
    index = source.view(*source.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, index)


def _weights(rnn: nn.RNNBase, layer: int, direction: int) -> dict[str, Tensor | None]:
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    get = lambda name: getattr(rnn, name + suffix, None)  # noqa: E731
    return {
        "w_ih": get("weight_ih"),
        "w_hh": get("weight_hh"),
        "b_ih": get("bias_ih"),
        "b_hh": get("bias_hh"),
        "w_hr": get("weight_hr"),
    }


def _run_direction(
    rnn: nn.RNNBase, cell: str, x: Tensor, mask: Tensor, w: dict[str, Tensor | None]
) -> tuple[Tensor, dict[str, Tensor]]:
    batch, time, _ = x.shape
    hidden_size = rnn.hidden_size
    out_size = rnn.proj_size if getattr(rnn, "proj_size", 0) else hidden_size
    projected = x @ w["w_ih"].T  # type: ignore[union-attr]
    if w["b_ih"] is not None:
        projected = projected + w["b_ih"]
    b_hh = w["b_hh"]
    h = x.new_zeros(batch, out_size)
    c = x.new_zeros(batch, hidden_size)
    names = GATE_NAMES[cell]
    records: dict[str, list[Tensor]] = {name: [] for name in names}
    states = []
    for t in range(time):
        recurrent = h @ w["w_hh"].T  # type: ignore[union-attr]
        if b_hh is not None:
            recurrent = recurrent + b_hh
        keep = mask[:, t, None]
        if cell == "lstm":
            i, f, g, o = (projected[:, t] + recurrent).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c_new = f * c + i * g
            h_new = o * torch.tanh(c_new)
            if w["w_hr"] is not None:
                h_new = h_new @ w["w_hr"].T
            c = torch.where(keep, c_new, c)
            values = (i, f, g, o, c_new)
        elif cell == "gru":
            xr, xz, xn = projected[:, t].chunk(3, dim=1)
            hr, hz, hn = recurrent.chunk(3, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h_new = (1 - z) * n + z * h
            values = (r, z, n)
        else:
            act = torch.relu if rnn.nonlinearity == "relu" else torch.tanh
            h_new = act(projected[:, t] + recurrent)
            values = ()
        h = torch.where(keep, h_new, h)
        states.append(h_new * keep)
        for name, value in zip(names, values, strict=True):
            records[name].append(value * keep)
    gates = {name: torch.stack(values, dim=1) for name, values in records.items()}
    return torch.stack(states, dim=1), gates


def _cell_of(rnn: nn.RNNBase) -> str:
    if isinstance(rnn, nn.LSTM):
        return "lstm"
    if isinstance(rnn, nn.GRU):
        return "gru"
    if isinstance(rnn, nn.RNN):
        return "rnn"
    raise TypeError(f"unsupported recurrent module {type(rnn).__name__}")


def _recorded_rnn_input(
    model: nn.Module, inputs: Any, lengths: Any, name: str | None, hints: dict[str, Any]
) -> tuple[nn.RNNBase, Tensor, Tensor]:
    """Run a user's model once through the contract and record what its recurrent layer
    reads: returns the layer, its input batch-first ``(batch, time, features)`` and lengths."""
    from captum_rnn.models.protocol import adapt

    seq = adapt(model, **hints)
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a tensor, got {type(inputs).__name__}")
    layers = {n: m for n, m in seq.module.named_modules() if isinstance(m, nn.RNNBase)}
    if name is not None:
        if name not in layers:
            raise ValueError(f"rnn={name!r} names no recurrent layer; the model's: {list(layers)}")
        layer = layers[name]
    elif len(layers) == 1:
        layer = next(iter(layers.values()))
    else:
        raise ValueError(
            f"the model holds {len(layers)} recurrent layers {list(layers)}: pass rnn= naming "
            "the one to trace"
        )
    seen: list[Any] = []
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        with torch.no_grad(), preserve_state(seq.module):
            batch_first = seq.to_batch_first(inputs)
            if lengths is not None:
                lengths = torch.as_tensor(lengths).long()
            seq(batch_first, lengths)
    finally:
        handle.remove()
    if not seen:
        raise ValueError("the recurrent layer did not run in the model's forward")
    x = seen[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        x, lengths = nn.utils.rnn.pad_packed_sequence(x, batch_first=True)
    elif not layer.batch_first:
        x = x.transpose(0, 1)
    if lengths is None:
        lengths = seq.lengths_of(batch_first) if seq.is_token_model else None
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
    return layer, x.detach(), torch.as_tensor(lengths).to(x.device)


def recurrent_states(
    model: nn.Module,
    inputs: Tensor,
    lengths: Tensor | None = None,
    *,
    rnn: str | None = None,
    **hints: Any,
) -> RecurrentTrace:
    """Recompute per-step hidden states and gate activations of an RNN/LSTM/GRU.

    Args:
        model: a captum_rnn recurrent model (its ``rnn`` is traced, token ids are embedded
            with its ``embed``), an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` itself, or any
            model holding one: it is run once through the model contract and the
            recurrent layer's own input is recorded and traced.
        inputs: token ids ``(batch, time)`` for a token model, else a float tensor
            ``(batch, time, features)`` (``(time, batch, features)`` for a module with
            ``batch_first=False``); for a user's model, in the model's own layout.
        lengths: optional ``(batch,)`` true lengths (inferred from padding for token ids).
        rnn: the name of the recurrent layer to trace in a user's model that holds several.
        hints: the model contract's hints for a user's model (see :func:`captum_rnn.adapt`).

    Returns:
        A :class:`RecurrentTrace` (computed without autograd; nothing about the model
        changes).

    Example:
        >>> gru = nn.GRU(3, 4, batch_first=True)
        >>> trace = recurrent_states(gru, torch.randn(2, 6, 3), lengths=torch.tensor([6, 2]))
        >>> trace.gate("update").shape, float(trace.gate("update")[1, 2:].abs().sum())
        (torch.Size([2, 6, 4]), 0.0)
    """
    from captum_rnn.models.recurrent import RecurrentModel

    if isinstance(model, nn.RNNBase):
        rnn, embed = model, None
    elif isinstance(model, RecurrentModel) and isinstance(model.rnn, nn.RNNBase) and not hints:
        rnn, embed = model.rnn, model.embed
    elif isinstance(model, nn.Module) and any(isinstance(m, nn.RNNBase) for m in model.modules()):
        rnn, inputs, lengths = _recorded_rnn_input(model, inputs, lengths, rnn, hints)
        embed = None
        if not rnn.batch_first:
            inputs = inputs.transpose(0, 1)  # the checks below read the layer's layout
    else:
        raise TypeError(
            "model must be an nn.Module holding an nn.LSTM/nn.GRU/nn.RNN, got "
            f"{type(model).__name__}"
        )
    cell = _cell_of(rnn)
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a tensor, got {type(inputs).__name__}")
    with torch.no_grad():
        if embed is not None:
            x, lengths = embed(inputs, lengths)
        else:
            if not inputs.is_floating_point() or inputs.dim() != 3:
                raise ValueError(
                    f"inputs must be a float tensor (batch, time, {rnn.input_size}), got "
                    f"{inputs.dtype} {tuple(inputs.shape)}"
                )
            x = inputs if rnn.batch_first else inputs.transpose(0, 1)
            if x.shape[2] != rnn.input_size:
                raise ValueError(f"inputs must have {rnn.input_size} features, got {x.shape[2]}")
            if x.shape[1] == 0:
                raise ValueError("inputs have no time steps")
            if not bool(torch.isfinite(x).all()):
                raise ValueError("inputs hold NaN or infinite values")
            if lengths is None:
                lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
            lengths = torch.as_tensor(lengths).to(x.device).long()
            if (
                lengths.shape != (x.shape[0],)
                or int(lengths.min()) < 1
                or int(lengths.max()) > x.shape[1]
            ):
                raise ValueError(f"lengths must be (batch,) in [1, {x.shape[1]}]")
        lengths = lengths.to(x.device)
        time = x.shape[1]
        mask = torch.arange(time, device=x.device)[None, :] < lengths[:, None]
        directions = 2 if rnn.bidirectional else 1
        layer_input = x * mask[..., None]
        hidden_all, gates_all = [], {name: [] for name in GATE_NAMES[cell]}
        for layer in range(rnn.num_layers):
            outputs = []
            for direction in range(directions):
                source = layer_input if direction == 0 else _reverse_within(layer_input, lengths)
                states, gates = _run_direction(
                    rnn, cell, source, mask, _weights(rnn, layer, direction)
                )
                if direction == 1:
                    states = _reverse_within(states, lengths)
                    gates = {k: _reverse_within(v, lengths) for k, v in gates.items()}
                outputs.append(states)
                hidden_all.append(states)
                for name, value in gates.items():
                    gates_all[name].append(value)
            layer_input = torch.cat(outputs, dim=-1)
    return RecurrentTrace(
        cell=cell,
        hidden=torch.stack(hidden_all),
        gates={name: torch.stack(values) for name, values in gates_all.items()},
        lengths=lengths.cpu(),
        num_layers=rnn.num_layers,
        num_directions=directions,
    )


@dataclass
class UnitTokenResponses:
    """Mean response of each hidden unit to each token, across a data set.

    Attributes:
        mean: ``(vocab_size, units)`` mean activation at the steps that read each token.
        counts: ``(vocab_size,)`` how often each token was read.
        unit_mean: ``(units,)`` mean activation over all real steps.
        unit_std: ``(units,)`` standard deviation over all real steps.
        values: what was measured (``"hidden"`` or a gate name).
    """

    mean: Tensor
    counts: Tensor
    unit_mean: Tensor
    unit_std: Tensor
    values: str = "hidden"

    @property
    def effect(self) -> Tensor:
        """``(vocab_size, units)`` standardised response: (token mean - unit mean) / unit std."""
        return (self.mean - self.unit_mean) / self.unit_std.clamp_min(1e-8)

    def top_tokens(self, unit: int, n: int = 10, min_count: int = 5) -> list[tuple[int, float]]:
        """Tokens that raise ``unit`` the most: ``[(token_id, effect), ...]``.

        Args:
            unit: the hidden unit.
            n: how many tokens.
            min_count: ignore tokens read fewer times than this.
        """
        if not 0 <= unit < self.mean.shape[1]:
            raise ValueError(f"unit must be in [0, {self.mean.shape[1]}), got {unit}")
        effect = self.effect[:, unit].masked_fill(self.counts < min_count, float("-inf"))
        order = torch.argsort(effect, descending=True)[:n]
        return [(int(i), float(effect[i])) for i in order if torch.isfinite(effect[i])]

    def top_units(self, token: int, n: int = 10) -> list[tuple[int, float]]:
        """Units whose activation ``token`` changes the most (by ``|effect|``)."""
        if not 0 <= token < self.mean.shape[0]:
            raise ValueError(f"token must be in [0, {self.mean.shape[0]}), got {token}")
        effect = self.effect[token]
        order = torch.argsort(effect.abs(), descending=True)[:n]
        return [(int(i), float(effect[i])) for i in order]


def unit_token_responses(
    model: nn.Module,
    dataset: Dataset,
    values: str = "hidden",
    layer: int = -1,
    batch_size: int = 256,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> UnitTokenResponses:
    """Which hidden units respond most to which tokens, across a data set.

    Args:
        model: a captum_rnn token model (``vocab_size`` set).
        dataset: ``(token ids, target)`` items.
        values: ``"hidden"`` (states) or a gate name of the cell (e.g. ``"forget"``).
        layer: which stacked layer (directions are concatenated into units).
        batch_size: sequences per batch.
        collate_fn: default :func:`captum_rnn.data.pad_collate`.

    Returns:
        A :class:`UnitTokenResponses`.

    Example:
        >>> responses = unit_token_responses(model, dataset)  # doctest: +SKIP
        >>> responses.top_tokens(unit=3)  # [(token id, standardised effect), ...]  # doctest: +SKIP
    """
    from captum_rnn.data import pad_collate
    from captum_rnn.models.recurrent import RecurrentModel

    vocab_size = model.vocab_size if isinstance(model, RecurrentModel) else None
    if not isinstance(vocab_size, int):
        raise ValueError(
            "unit_token_responses needs a captum_rnn recurrent token model (vocab_size set)"
        )
    batch_size = check_int("batch_size", batch_size, 1)
    device = next(model.parameters()).device
    loader = DataLoader(  # a private generator: the global random state is left alone
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_fn or pad_collate,
        generator=torch.Generator(),
    )
    sums = counts = total = total_sq = None
    steps = 0
    for batch in loader:
        ids, lengths, _ = RecurrentModel.unpack_batch(batch)
        ids = ids.to(device)
        trace = recurrent_states(model, ids, None if lengths is None else lengths.to(device))
        if values == "hidden":
            first = trace._slot(layer, 0)
            acts = torch.cat(list(trace.hidden[first : first + trace.num_directions]), dim=-1)
        else:
            if values not in trace.gates:
                raise ValueError(
                    f"values must be 'hidden' or one of {sorted(trace.gates)}, got {values!r}"
                )
            first = trace._slot(layer, 0)
            acts = torch.cat(
                list(trace.gates[values][first : first + trace.num_directions]), dim=-1
            )
        mask = (
            torch.arange(ids.shape[1], device=device)[None, :] < trace.lengths.to(device)[:, None]
        )
        flat_ids = ids[mask]
        flat = acts[mask].double()
        if sums is None:
            sums = torch.zeros(vocab_size, flat.shape[1], dtype=torch.float64, device=device)
            counts = torch.zeros(vocab_size, dtype=torch.float64, device=device)
            total = torch.zeros(flat.shape[1], dtype=torch.float64, device=device)
            total_sq = torch.zeros_like(total)
        sums.index_add_(0, flat_ids, flat)
        counts.index_add_(0, flat_ids, torch.ones_like(flat_ids, dtype=torch.float64))
        total += flat.sum(0)
        total_sq += (flat * flat).sum(0)
        steps += flat.shape[0]
    if sums is None or steps == 0:
        raise ValueError("dataset is empty")
    unit_mean = total / steps
    unit_std = (total_sq / steps - unit_mean**2).clamp_min(0).sqrt()
    mean = sums / counts.clamp_min(1)[:, None]
    mean[counts == 0] = unit_mean
    return UnitTokenResponses(
        mean=mean.float().cpu(),
        counts=counts.long().cpu(),
        unit_mean=unit_mean.float().cpu(),
        unit_std=unit_std.float().cpu(),
        values=values,
    )
