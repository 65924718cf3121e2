"""The classic IMDB sentiment tutorial: a packed, time-major, 2-layer bidirectional LSTM with
one output logit trained with BCEWithLogitsLoss.

Toy task: a review is positive iff the token "good" appears (otherwise "bad" appears)."""

from __future__ import annotations

import torch
from torch import nn

from zoo import ZooCase

UNK_IDX = 0
PAD_IDX = 1
GOOD = 2
BAD = 3
VOCAB_SIZE = 24
MAX_LEN = 12


class RNN(nn.Module):
    def __init__(
        self,
        vocab_size,
        embedding_dim,
        hidden_dim,
        output_dim,
        n_layers,
        bidirectional,
        dropout,
        pad_idx,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_idx)
        self.rnn = nn.LSTM(
            embedding_dim,
            hidden_dim,
            num_layers=n_layers,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        self.fc = nn.Linear(hidden_dim * 2, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, text_lengths):
        # text = [sent len, batch size]
        embedded = self.dropout(self.embedding(text))
        # embedded = [sent len, batch size, emb dim]
        packed_embedded = nn.utils.rnn.pack_padded_sequence(
            embedded, text_lengths.to("cpu"), enforce_sorted=False
        )
        packed_output, (hidden, cell) = self.rnn(packed_embedded)
        output, output_lengths = nn.utils.rnn.pad_packed_sequence(packed_output)
        # hidden = [num layers * num directions, batch size, hid dim]
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        # hidden = [batch size, hid dim * num directions]
        return self.fc(hidden)


def make_reviews(n, generator, min_len=4, max_len=MAX_LEN):
    """(text (max_len, n) time-major, lengths (n,), labels (n,)); the first review has full
    length and the padding (PAD_IDX) sits after each review's end."""
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    lengths[0] = max_len
    text = torch.randint(BAD + 1, VOCAB_SIZE, (max_len, n), generator=generator)
    # a few unknown words
    unk = torch.rand(max_len, n, generator=generator) < 0.1
    text[unk] = UNK_IDX
    labels = torch.randint(0, 2, (n,), generator=generator)
    where = (torch.rand(n, generator=generator) * lengths).long()
    text[where, torch.arange(n)] = torch.where(labels == 1, GOOD, BAD)
    text[torch.arange(max_len)[:, None] >= lengths[None, :]] = PAD_IDX
    return text, lengths, labels


def binary_accuracy(preds, y):
    rounded_preds = torch.round(torch.sigmoid(preds))
    correct = (rounded_preds == y).float()
    return correct.sum() / len(correct)


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_text, train_lengths, train_labels = make_reviews(384, g)
    test_text, test_lengths, test_labels = make_reviews(32, g)

    model = RNN(VOCAB_SIZE, 16, 16, 1, n_layers=2, bidirectional=True, dropout=0.2, pad_idx=PAD_IDX)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.BCEWithLogitsLoss()

    batch_size = 64
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(train_text.size(1), generator=g)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            text, text_lengths = train_text[:, idx], train_lengths[idx]
            optimizer.zero_grad()
            predictions = model(text, text_lengths).squeeze(1)
            loss = criterion(predictions, train_labels[idx].float())
            loss.backward()
            optimizer.step()

    model.eval()
    return ZooCase(
        name="imdb_lstm",
        model=model,
        inputs=test_text,
        lengths=test_lengths,
        labels=test_labels,
        hints={"output": "logits"},
        pad_id=PAD_IDX,
        token=True,
        batch_first=False,
        call=lambda text, text_lengths: model(text, text_lengths),
        embedding=model.embedding,
        train_data=(train_text, train_lengths, train_labels),
    )
