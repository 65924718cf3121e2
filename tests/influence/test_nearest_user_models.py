"""NearestExamples on users' own models, through the model contract (issues 12 and 16)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from captum_rnn.data import PadCollate, SequenceDataset
from captum_rnn.influence import NearestExamples

PAD = 1


class TutorialGRU(nn.Module):
    """bentrevett-style classifier: padding_idx=1, forward(text, text_lengths)."""

    def __init__(self, vocab: int = 40, emb: int = 16, hidden: int = 24, classes: int = 3):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.rnn = nn.GRU(emb, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, text, text_lengths):
        embedded = self.embedding(text)
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded, text_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, hidden = self.rnn(packed)
        return self.fc(hidden[-1])


class HandCell(nn.Module):
    """A hand-written Elman RNN: ``i2h`` runs once per step, time-major input."""

    def __init__(self, vocab: int = 30, emb: int = 8, hidden: int = 12, classes: int = 2):
        super().__init__()
        self.hidden = hidden
        self.emb = nn.Embedding(vocab, emb)
        self.i2h = nn.Linear(emb + hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, text):  # (time, batch)
        x = self.emb(text)
        h = x.new_zeros(x.shape[1], self.hidden)
        for t in range(x.shape[0]):
            h = torch.tanh(self.i2h(torch.cat([x[t], h], dim=1)))
        return self.out(h)


def token_data(n: int, vocab: int, seed: int = 0, low: int = 2) -> SequenceDataset:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 10, (n,), generator=g)
    seqs = [torch.randint(low, vocab, (int(k),), generator=g) for k in lengths]
    return SequenceDataset(seqs, torch.randint(0, 3, (n,), generator=g))


def test_user_gru_fc_input_finds_every_training_sequence_first():
    torch.manual_seed(0)
    model = TutorialGRU().eval()
    data = token_data(60, 40)
    nearest = NearestExamples(
        model, data, layers="fc:input", batch_size=16, collate_fn=PadCollate(padding_value=PAD)
    )
    assert nearest.seq.pad_id == PAD and nearest.seq.lengths_arg == "text_lengths"
    ids = nn.utils.rnn.pad_sequence([data[i][0] for i in range(len(data))], True, PAD)
    idx, _ = nearest.influence(ids, top_k=1)["fc:input"]
    assert torch.equal(idx[:, 0], torch.arange(len(data)))
    # the lengths are passed as the forward wants them: padding changes nothing
    wide = torch.cat([ids, torch.full((len(data), 5), PAD)], dim=1)
    idx_wide, _ = nearest.influence(wide, top_k=1)["fc:input"]
    assert torch.equal(idx_wide, idx)
    assert all(not m._forward_hooks for m in model.modules())


def _manual_last_call(model, ids_time_major):
    seen = []
    handle = model.i2h.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    try:
        with torch.no_grad():
            model(ids_time_major)
    finally:
        handle.remove()
    return seen


def test_hand_written_cell_records_every_call():
    torch.manual_seed(0)
    model = HandCell().eval()
    data = token_data(20, 30, seed=1, low=1)  # 0 is padding
    nearest = NearestExamples(
        model, data, layers="i2h", call="last", batch_first=False, pad_id=0, batch_size=8
    )
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10]]).T  # the model's layout (time, batch)
    vectors, _ = nearest.encode(ids)
    seen = _manual_last_call(model, ids)
    assert len(seen) == 4
    torch.testing.assert_close(vectors["i2h"], seen[-1])
    first = NearestExamples(model, data, layers="i2h", call=0, batch_first=False, pad_id=0)
    torch.testing.assert_close(first.encode(ids)[0]["i2h"], seen[0])
    mean = NearestExamples(model, data, layers="i2h", call="mean", batch_first=False, pad_id=0)
    torch.testing.assert_close(mean.encode(ids)[0]["i2h"], torch.stack(seen).mean(0))
    with pytest.raises(ValueError, match=r"call=9 is out of range.*ran 4 time"):
        NearestExamples(model, data, layers="i2h", call=9, batch_first=False, pad_id=0).encode(ids)
    assert all(not m._forward_hooks for m in model.modules())


def test_label_agreement_of_the_last_call():
    """Labels defined by the last step: the last call's vectors agree with them, always."""
    torch.manual_seed(0)
    model = HandCell(vocab=6).eval()
    g = torch.Generator().manual_seed(3)
    seqs = [torch.randint(1, 6, (5,), generator=g) for _ in range(60)]
    labels = [int(s[-1]) for s in seqs]
    nearest = NearestExamples(
        model, SequenceDataset(seqs, labels), layers="i2h", batch_first=False, pad_id=0
    )
    queries = torch.stack([torch.randint(1, 6, (5,), generator=g) for _ in range(20)])
    idx, _ = nearest.influence(queries.T, top_k=1)["i2h"]  # time-major, as the model reads
    neighbour_last = torch.stack([seqs[i][-1] for i in idx[:, 0]])
    # the last hidden state is dominated by the last token; agreement on it must be high
    assert float((neighbour_last == queries[:, -1]).float().mean()) > 0.9


def test_options_padding_rows_and_random_state():
    model = TutorialGRU().eval()
    data = token_data(12, 40)
    collate = PadCollate(padding_value=PAD)
    before = torch.random.get_rng_state()
    nearest = NearestExamples(model, data, layers=["fc:input", "fc"], collate_fn=collate)
    nearest.fit()
    nearest.influence(torch.tensor([[3, 4, 5]]), top_k=2)
    assert torch.equal(torch.random.get_rng_state(), before)
    with pytest.raises(ValueError, match=r"top_k must be >= 1 .*\[1, 12\]"):
        nearest.influence(torch.tensor([[3, 4]]), top_k=0)
    with pytest.raises(ValueError, match=r"top_k must be an int in \[1, 12\], got 2.5"):
        nearest.influence(torch.tensor([[3, 4]]), top_k=2.5)
    with pytest.raises(ValueError, match="inputs row 1 is all padding"):
        nearest.influence(torch.tensor([[3, 4], [PAD, PAD]]), top_k=1)
    with pytest.raises(ValueError, match="call must be 'last', 'mean' or an int"):
        NearestExamples(model, data, layers="fc", call="first")
    with pytest.raises(ValueError, match="'name:input'"):
        NearestExamples(model, data, layers="fc:inputs")
    empty = SequenceDataset([torch.tensor([3, 4]), torch.tensor([PAD, PAD])], [0, 1])
    with pytest.raises(ValueError, match="item 1 is all padding"):
        NearestExamples(model, empty, layers="fc:input", collate_fn=collate).fit()


def test_option_ranges_are_value_errors_naming_the_option():
    model = TutorialGRU().eval()
    data = token_data(12, 40)
    nearest = NearestExamples(
        model, data, layers="fc:input", collate_fn=PadCollate(padding_value=PAD)
    )
    with pytest.raises(ValueError, match="k must be a positive int"):
        nearest.criticisms(k=2.5)
    with pytest.raises(ValueError, match="max_samples must be an integer >= 1"):
        nearest.prototypes(max_samples=0)
    with pytest.raises(ValueError, match="k_per_class must be an integer >= 1"):
        nearest.prototypes(k_per_class=0)
