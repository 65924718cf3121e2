"""An LSTM classifier in the style of PyTorch's word-language-model example: time-major,
``forward(input, hidden)`` with the state passed in from ``init_hidden(batch_size)`` and
returned with the output. No lengths: padding (id 0) is at the end and fed as content.

Toy task: two classes, marked by one of two cue tokens somewhere in the sentence."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo import ZooCase

PAD = 0
CUES = (1, 2)
VOCAB_SIZE = 20
N_CLASSES = 2
MAX_LEN = 10


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, nclass):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp, padding_idx=PAD)
        self.rnn = nn.LSTM(ninp, nhid, nlayers)
        self.decoder = nn.Linear(nhid, nclass)
        self.nhid, self.nlayers = nhid, nlayers

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (
            weight.new_zeros(self.nlayers, bsz, self.nhid),
            weight.new_zeros(self.nlayers, bsz, self.nhid),
        )

    def forward(self, input, hidden):  # noqa: A002 (the example's name)
        emb = self.encoder(input)
        output, hidden = self.rnn(emb, hidden)
        return self.decoder(output[-1]), hidden


def make_sentences(n, generator, min_len=4, max_len=MAX_LEN):
    """(ids (max_len, n) time-major, lengths (n,), labels (n,)) with pad 0 at the end."""
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    lengths[0] = max_len
    ids = torch.randint(max(CUES) + 1, VOCAB_SIZE, (n, max_len), generator=generator)
    labels = torch.randint(0, N_CLASSES, (n,), generator=generator)
    where = (torch.rand(n, generator=generator) * lengths).long()
    ids[torch.arange(n), where] = torch.tensor(CUES)[labels]
    ids[torch.arange(max_len)[None, :] >= lengths[:, None]] = PAD
    return ids.T.contiguous(), lengths, labels


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    X_train, len_train, y_train = make_sentences(320, g)
    X_test, len_test, y_test = make_sentences(24, g)

    model = RNNModel(VOCAB_SIZE, 12, 16, 1, N_CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch_size = 32
    for _epoch in range(10):
        model.train()
        permutation = torch.randperm(X_train.size(1), generator=g)
        for i in range(0, X_train.size(1), batch_size):
            idx = permutation[i : i + batch_size]
            hidden = model.init_hidden(len(idx))
            optimizer.zero_grad()
            logits, hidden = model(X_train[:, idx], hidden)
            F.cross_entropy(logits, y_train[idx]).backward()
            optimizer.step()

    model.eval()
    return ZooCase(
        name="hidden_lstm",
        model=model,
        inputs=X_test,
        lengths=len_test,
        labels=y_test,
        hints={"forward_kwargs": {"hidden": model.init_hidden}},
        pad_id=PAD,
        token=True,
        batch_first=False,
        call=lambda x, lengths: model(x, model.init_hidden(x.shape[1]))[0],
        embedding=model.encoder,
        train_data=(X_train, len_train, y_train),
    )
