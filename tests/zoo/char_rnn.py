"""A character-level RNN with a hand-written cell, like the PyTorch "classifying names with a
character-level RNN" tutorial but batched and time-major. The model knows nothing about
padding: the trailing pad characters (id 0) are fed as ordinary content.

Toy task: the class is which of three cue characters ("a", "b" or "c") occurs in the word."""

from __future__ import annotations

import torch
from torch import nn

from zoo import ZooCase

PAD = 0
CUES = (1, 2, 3)
N_CHARS = 20
N_CLASSES = 3
MAX_LEN = 10


class CharRNN(nn.Module):
    def __init__(self, n_chars, embed_size, hidden_size, n_classes):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(n_chars, embed_size)
        self.i2h = nn.Linear(embed_size + hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, n_classes)

    def init_hidden(self, batch_size):
        return torch.zeros(batch_size, self.hidden_size)

    def forward(self, x):
        # x: (seq_len, batch) of character ids
        emb = self.embed(x)
        hidden = self.init_hidden(x.size(1)).to(emb.device)
        for t in range(x.size(0)):
            combined = torch.cat((emb[t], hidden), 1)
            hidden = torch.tanh(self.i2h(combined))
        return self.h2o(hidden)


def make_words(n, generator, min_len=4, max_len=MAX_LEN):
    """(chars (max_len, n) time-major, lengths (n,), labels (n,)) with pad 0 after each word."""
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    lengths[0] = max_len
    chars = torch.randint(max(CUES) + 1, N_CHARS, (max_len, n), generator=generator)
    labels = torch.randint(0, N_CLASSES, (n,), generator=generator)
    where = (torch.rand(n, generator=generator) * lengths).long()
    chars[where, torch.arange(n)] = torch.tensor(CUES)[labels]
    chars[torch.arange(max_len)[:, None] >= lengths[None, :]] = PAD
    return chars, lengths, labels


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_x, train_lengths, train_y = make_words(384, g)
    test_x, test_lengths, test_y = make_words(32, g)

    rnn = CharRNN(N_CHARS, 8, 24, N_CLASSES)
    optimizer = torch.optim.Adam(rnn.parameters(), lr=1e-2)
    criterion = nn.CrossEntropyLoss()

    batch_size = 64
    for _epoch in range(30):
        perm = torch.randperm(train_x.size(1), generator=g)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            optimizer.zero_grad()
            output = rnn(train_x[:, idx])
            loss = criterion(output, train_y[idx])
            loss.backward()
            optimizer.step()

    rnn.eval()
    return ZooCase(
        name="char_rnn",
        model=rnn,
        inputs=test_x,
        lengths=test_lengths,
        labels=test_y,
        hints={"batch_first": False, "pad_id": PAD},
        pad_id=PAD,
        token=True,
        batch_first=False,
        call=lambda x, lengths: rnn(x),
        embedding=rnn.embed,
        train_data=(train_x, train_lengths, train_y),
    )
