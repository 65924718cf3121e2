"""The recurrent layer runs unpacked wherever that is exact: results equal a packed run's
(outputs, final states and gradients) for RNN/LSTM/GRU, uni- and bidirectional, stacked,
with equal and with varying lengths."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from captum_rnn.models import RNNClassifier
from captum_rnn.models.recurrent import last_states, run_packed, run_recurrent

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _reference(rnn, x, lengths):
    """What packing computes, written out (the path the layer took before)."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, hidden = rnn(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], hidden


def _layer(cell, bidirectional, layers, seed=0):
    torch.manual_seed(seed)
    return CELLS[cell](3, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True)


def _grads(rnn, x, fn):
    x = x.clone().requires_grad_(True)
    rnn.zero_grad()
    fn(x).backward()
    return [x.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]


def _check(cell, bidirectional, layers, lengths, time):
    rnn = _layer(cell, bidirectional, layers).double()
    g = torch.Generator().manual_seed(len(lengths) * 31 + time)
    x = torch.randn(len(lengths), time, 3, generator=g, dtype=torch.float64)
    lengths = torch.tensor(lengths)
    weights = torch.randn(len(lengths), time, 5 * (1 + bidirectional), generator=g).double()
    directions = 2 if bidirectional else 1

    ref_out, ref_hidden = _reference(rnn, x, lengths)
    out, hidden = run_packed(rnn, x, lengths)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    for a, b in zip(
        hidden if isinstance(hidden, tuple) else (hidden,),
        ref_hidden if isinstance(ref_hidden, tuple) else (ref_hidden,),
        strict=True,
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    states = run_recurrent(rnn, x, lengths)
    torch.testing.assert_close(states, ref_out, atol=1e-6, rtol=0)
    assert bool((states[torch.arange(time)[None, :] >= lengths[:, None]] == 0).all())
    h_n = ref_hidden[0] if isinstance(ref_hidden, tuple) else ref_hidden
    top = torch.cat(list(h_n[-directions:]), dim=-1)
    torch.testing.assert_close(last_states(states, lengths, bidirectional), top, atol=1e-6, rtol=0)

    def loss_ref(v):
        out, hidden = _reference(rnn, v, lengths)
        h = hidden[0] if isinstance(hidden, tuple) else hidden
        return (out * weights).sum() + torch.cat(list(h[-directions:]), -1).pow(2).sum()

    def loss_new(v):
        out = run_recurrent(rnn, v, lengths)
        return (out * weights).sum() + last_states(out, lengths, bidirectional).pow(2).sum()

    for a, b in zip(_grads(rnn, x, loss_new), _grads(rnn, x, loss_ref), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(
    "lengths,time", [((6, 6, 6), 6), ((4, 4), 7), ((7, 3, 1, 5), 7), ((2, 5), 8)]
)
def test_unpacked_equals_packed(cell, bidirectional, layers, lengths, time):
    _check(cell, bidirectional, layers, lengths, time)


@settings(max_examples=25, deadline=None)
@given(
    cell=st.sampled_from(sorted(CELLS)),
    bidirectional=st.booleans(),
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    extra=st.integers(0, 3),
)
def test_unpacked_equals_packed_for_any_lengths(cell, bidirectional, lengths, extra):
    _check(cell, bidirectional, 2, tuple(lengths), max(lengths) + extra)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_output_equals_the_packed_run(cell, bidirectional, pooling):
    torch.manual_seed(0)
    model = RNNClassifier(
        3, input_size=4, hidden_size=6, num_layers=2, cell=cell,
        bidirectional=bidirectional, pooling=pooling,
    ).double().eval()  # fmt: skip
    x = torch.randn(4, 7, 4, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5, 1])
    x[torch.arange(7)[None, :] >= lengths[:, None]] = 0.0
    states, hidden = _reference(model.rnn, x, lengths)
    if pooling == "last":
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden
        pooled = torch.cat(list(h_n[-(2 if bidirectional else 1) :]), dim=-1)
    else:
        pooled = states.sum(1) / lengths[:, None]
    expected = model.head(pooled)
    torch.testing.assert_close(model(x, lengths), expected, atol=1e-6, rtol=0)
    # padding after a sequence changes nothing, and gets no gradient
    x = x.clone().requires_grad_(True)
    model(x, lengths).sum().backward()
    assert bool((x.grad[torch.arange(7)[None, :] >= lengths[:, None]] == 0).all())
