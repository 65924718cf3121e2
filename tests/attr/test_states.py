"""Recurrent states and gates recomputed from the weights equal the modules' own outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from captum_rnn.attr import GATE_NAMES, recurrent_states, unit_token_responses
from captum_rnn.data import SequenceDataset

from conftest import padded_batch, token_model

CASES = [
    (cls, bidirectional, layers, proj)
    for cls in (nn.LSTM, nn.GRU, nn.RNN)
    for bidirectional in (False, True)
    for layers in (1, 2)
    for proj in ((0, 2) if cls is nn.LSTM else (0,))
]


def run_module(rnn, x, lengths):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, hidden = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, hidden


@pytest.mark.parametrize("cls,bidirectional,layers,proj", CASES)
def test_states_equal_the_module_outputs(cls, bidirectional, layers, proj):
    torch.manual_seed(0)
    kwargs = {"proj_size": proj} if proj else {}
    if cls is nn.RNN:
        kwargs["nonlinearity"] = "relu" if layers == 2 else "tanh"
    rnn = cls(3, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True, **kwargs)
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 2, 5, 1])
    out, hidden = run_module(rnn, x, lengths)
    trace = recurrent_states(rnn, x, lengths)
    torch.testing.assert_close(trace.layer_output(-1), out, atol=1e-5, rtol=1e-5)
    h_n = hidden[0] if isinstance(hidden, tuple) else hidden
    torch.testing.assert_close(trace.final_hidden(), h_n, atol=1e-5, rtol=1e-5)
    if cls is nn.LSTM:
        # c_n is the cell state at each sequence's last real step (first, going backwards)
        c_n = hidden[1]
        rows = torch.arange(4)
        for slot in range(c_n.shape[0]):
            step = lengths - 1 if slot % trace.num_directions == 0 else torch.zeros_like(lengths)
            cell_state = trace.gates["cell_state"][slot, rows, step]
            torch.testing.assert_close(cell_state, c_n[slot], atol=1e-5, rtol=1e-5)
    assert set(trace.gates) == set(GATE_NAMES[trace.cell])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    for name, values in trace.gates.items():
        assert values.shape[:3] == (layers * (2 if bidirectional else 1), 4, 7)
        assert float(values[:, ~mask].abs().max()) == 0.0  # padding is never evidence
        if name in ("input", "forget", "output", "reset", "update"):
            real = values[:, mask]
            assert float(real.min()) > 0.0 and float(real.max()) < 1.0
    assert float(trace.hidden[:, ~mask].abs().max()) == 0.0


def test_time_major_module_and_no_lengths():
    torch.manual_seed(1)
    gru = nn.GRU(3, 4)  # batch_first=False
    x = torch.randn(6, 2, 3)
    out, h_n = gru(x)
    trace = recurrent_states(gru, x)
    torch.testing.assert_close(trace.layer_output(), out.transpose(0, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trace.final_hidden(), h_n, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("config", ["lstm-last", "gru-bi-mean", "rnn-2layer-max"])
def test_token_model_states_equal_encode(config):
    model = token_model(config)
    ids, lengths = padded_batch(seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace = recurrent_states(model, ids)
    with torch.no_grad():
        states, mask, _ = model.encode(ids)
    torch.testing.assert_close(trace.layer_output(), states, atol=1e-5, rtol=1e-5)
    assert torch.equal(trace.lengths, lengths)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # the same sequence padded further gives the same trace on its real steps
    wide = torch.zeros(ids.shape[0], 20, dtype=torch.long)
    wide[:, : ids.shape[1]] = ids
    wider = recurrent_states(model, wide)
    torch.testing.assert_close(wider.hidden[..., : ids.shape[1], :], trace.hidden)


def test_gate_accessors_and_errors():
    trace = recurrent_states(
        nn.LSTM(3, 4, batch_first=True, bidirectional=True), torch.randn(2, 5, 3)
    )
    assert trace.gate("forget", layer=0, direction=1).shape == (2, 5, 4)
    with pytest.raises(ValueError, match="gate must be one of"):
        trace.gate("reset")
    with pytest.raises(ValueError, match="direction must be in"):
        trace.gate("input", direction=2)
    with pytest.raises(ValueError, match="layer must be in"):
        trace.gate("input", layer=3)
    with pytest.raises(TypeError, match="model must be"):
        recurrent_states(nn.Linear(2, 2), torch.randn(1, 2, 2))
    with pytest.raises(ValueError, match="features"):
        recurrent_states(nn.GRU(3, 4, batch_first=True), torch.randn(1, 2, 5))
    with pytest.raises(ValueError, match="NaN"):
        recurrent_states(nn.GRU(3, 4, batch_first=True), torch.full((1, 2, 3), float("nan")))
    with pytest.raises(ValueError, match="lengths"):
        recurrent_states(nn.GRU(3, 4, batch_first=True), torch.randn(2, 2, 3), torch.tensor([3, 1]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        recurrent_states(token_model("lstm-last"), torch.tensor([[3, 99]]))


def test_unit_token_responses_equal_brute_force():
    model = token_model("gru-bi-mean")
    g = torch.Generator().manual_seed(0)
    seqs = [
        torch.randint(2, 30, (int(n),), generator=g)
        for n in torch.randint(2, 9, (25,), generator=g)
    ]
    data = SequenceDataset(seqs, [0] * 25)
    responses = unit_token_responses(model, data, batch_size=7)
    sums, counts = torch.zeros(30, 24), torch.zeros(30)
    every = []
    for seq in seqs:
        states = recurrent_states(model, seq[None]).layer_output()[0]
        sums.index_add_(0, seq, states)
        counts.index_add_(0, seq, torch.ones(len(seq)))
        every.append(states)
    every = torch.cat(every)
    seen = counts > 0
    torch.testing.assert_close(
        responses.mean[seen], sums[seen] / counts[seen, None], atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(responses.unit_mean, every.mean(0), atol=1e-5, rtol=1e-4)
    assert torch.equal(responses.counts, counts.long())
    top = responses.top_tokens(unit=3, n=5, min_count=2)
    effects = [e for _, e in top]
    assert effects == sorted(effects, reverse=True) and all(counts[t] >= 2 for t, _ in top)
    assert len(responses.top_units(token=5, n=4)) == 4
    forget = unit_token_responses(model, data, values="update")
    assert float(forget.mean[seen].min()) >= 0.0 and float(forget.mean.max()) <= 1.0
    with pytest.raises(ValueError, match="values must be"):
        unit_token_responses(model, data, values="forget")
    with pytest.raises(ValueError, match="unit must be in"):
        responses.top_tokens(unit=99)


def test_recurrent_states_on_a_users_packed_time_major_model():
    """The user's nn.LSTM inside their own model: its recorded input is traced."""
    from torch import nn

    class Tutorial(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(12, 3, padding_idx=1)
            self.rnn = nn.LSTM(3, 4)
            self.fc = nn.Linear(4, 2)

        def forward(self, text, text_lengths):
            packed = nn.utils.rnn.pack_padded_sequence(
                self.embedding(text), text_lengths.cpu(), enforce_sorted=False
            )
            _, (hidden, _) = self.rnn(packed)
            return self.fc(hidden[-1])

    torch.manual_seed(0)
    model = Tutorial().eval()
    ids = torch.tensor([[4, 5, 6, 7], [8, 9, 1, 1]]).T  # (time, batch), pad 1
    trace = recurrent_states(model, ids)
    # the same as tracing the LSTM on the embedded, batch-first sequences by hand
    by_hand = nn.LSTM(3, 4, batch_first=True)
    by_hand.load_state_dict(model.rnn.state_dict())
    expected = recurrent_states(by_hand, model.embedding(ids.T).detach(), torch.tensor([4, 2]))
    torch.testing.assert_close(trace.hidden, expected.hidden)
    assert float(trace.hidden[0, 1, 2:].abs().sum()) == 0.0  # padding
    # the last real state is the one the model's own head reads
    _, (h, _) = model.rnn(
        nn.utils.rnn.pack_padded_sequence(
            model.embedding(ids), torch.tensor([4, 2]), enforce_sorted=False
        )
    )
    torch.testing.assert_close(trace.hidden[0, 0, 3], h[-1, 0].detach())
    torch.testing.assert_close(trace.hidden[0, 1, 1], h[-1, 1].detach())
