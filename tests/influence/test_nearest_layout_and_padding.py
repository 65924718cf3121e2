"""NearestExamples on users' models: their layout, their pad id, padding wherever it stands,
and models that read their own padding."""

from __future__ import annotations

import torch
from torch import nn

from captum_rnn.data import PadCollate, pad_collate
from captum_rnn.influence import NearestExamples


class TaggedGRU(nn.Module):
    """A GRU whose per-step outputs are tapped (``steps``) and averaged under a mask."""

    def __init__(self, pad: int = 1, batch_first: bool = True, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = nn.Embedding(12, 4, padding_idx=pad)
        self.rnn = nn.GRU(4, 6, batch_first=batch_first)
        self.steps = nn.Identity()
        self.fc = nn.Linear(6, 2)

    def forward(self, text, mask):
        out = self.steps(self.rnn(self.embedding(text))[0])
        if not self.rnn.batch_first:
            out, mask = out.transpose(0, 1), mask
        weights = mask.unsqueeze(-1).float()
        return self.fc((out * weights).sum(1) / weights.sum(1))


class ReadsPadding(nn.Module):
    """A tutorial GRU told no lengths: its last state has read the padding."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(12, 4, padding_idx=0)
        self.rnn = nn.GRU(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, text):
        return self.fc(self.rnn(self.embedding(text))[1][-1])


def data(pad: int, n: int = 12) -> list:
    g = torch.Generator().manual_seed(1)
    tokens = [t for t in range(2, 12) if t != pad]
    out = []
    for i in range(n):
        length = 1 + i % 5
        out.append(
            (torch.tensor(tokens)[torch.randint(len(tokens), (length,), generator=g)], i % 2)
        )
    return out


def test_the_default_batches_pad_with_the_models_pad_id():
    # torchtext's vocabulary: <unk> = 0, <pad> = 1; padding with 0 would add unknown words
    model = TaggedGRU(pad=1).eval()
    train = data(pad=1)
    default = NearestExamples(model, train, layers="fc:input", batch_size=4).fit()
    by_hand = NearestExamples(
        model, train, layers="fc:input", batch_size=4, collate_fn=PadCollate(padding_value=1)
    ).fit()
    zeros = NearestExamples(
        model, train, layers="fc:input", batch_size=4, collate_fn=pad_collate, pad_id=1
    ).fit()
    vectors = default.store.vectors["fc:input"]
    assert torch.allclose(
        torch.as_tensor(vectors), torch.as_tensor(by_hand.store.vectors["fc:input"])
    )
    assert not torch.allclose(
        torch.as_tensor(vectors), torch.as_tensor(zeros.store.vectors["fc:input"])
    )


def test_queries_are_read_in_a_time_major_models_own_layout():
    batch_first = TaggedGRU(batch_first=True).eval()
    time_major = TaggedGRU(batch_first=False).eval()
    train = data(pad=1)
    ids = torch.tensor([[3, 4, 5], [6, 7, 1], [8, 1, 1], [9, 10, 11]])  # (batch, time)
    expected = NearestExamples(batch_first, train, layers="steps").influence(ids, top_k=3)
    got = NearestExamples(time_major, train, layers="steps", batch_first=False).influence(
        ids.T, top_k=3
    )
    assert torch.equal(expected["steps"][0], got["steps"][0])
    assert torch.allclose(expected["steps"][1], got["steps"][1], atol=1e-5)


def test_a_sequence_is_encoded_the_same_wherever_its_padding_stands():
    model = TaggedGRU(pad=1).eval()
    nearest = NearestExamples(model, data(pad=1), layers="steps", sequence_pooling="last")
    alone = torch.tensor([[3, 4]])
    vectors = [
        nearest.encode(x)[0]["steps"]
        for x in (alone, torch.tensor([[3, 4, 1, 1]]), torch.tensor([[1, 1, 3, 4]]))
    ]
    # the GRU reads padding in front, so the sequence is encoded as it is alone, and pooled
    # at its last real step
    with torch.no_grad():
        states = model.rnn(model.embedding(alone))[0]
    assert torch.allclose(vectors[0], states[:, -1], atol=1e-6)
    assert torch.allclose(vectors[0], vectors[1], atol=1e-6)
    assert torch.allclose(vectors[0], vectors[2], atol=1e-6)


def test_a_model_that_reads_its_padding_is_encoded_sequence_by_sequence_as_alone():
    model = ReadsPadding().eval()
    train = data(pad=0)
    stores = [
        torch.as_tensor(
            NearestExamples(model, train, layers="fc:input", batch_size=b)
            .fit()
            .store.vectors["fc:input"]
        )
        for b in (1, 5, 12)
    ]
    assert torch.allclose(stores[0], stores[1], atol=1e-6)
    assert torch.allclose(stores[0], stores[2], atol=1e-6)
    # and a query padded any way finds the training sequence itself
    nearest = NearestExamples(model, train, layers="fc:input", batch_size=5)
    query = torch.nn.utils.rnn.pad_sequence([s for s, _ in train], batch_first=True)
    _, scores = nearest.influence(torch.cat([query, torch.zeros(12, 3, dtype=torch.long)], 1))[
        "fc:input"
    ]
    assert torch.allclose(scores[:, 0], torch.ones(12), atol=1e-5)
