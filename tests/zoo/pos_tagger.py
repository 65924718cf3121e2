"""An LSTM tagger in the style of PyTorch's "Sequence Models and LSTM Networks" tutorial:
time-major (``nn.LSTM`` without ``batch_first``), one tag score vector per word, returned as
``log_softmax`` over the tags, shape ``(seq_len, batch, n_tags)``. No lengths argument: the
trailing padding (id 0) is read as content and its tags are ignored by the loss.

Toy rule with known support: the tag of word ``t`` is how many cue words (ids 1, 2) stand
among words ``t-2, t-1, t`` (0, 1 or 2+), so output ``t`` depends on inputs ``t-2..t`` only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo import ZooCase

PAD = 0
CUES = (1, 2)
VOCAB_SIZE = 12
N_TAGS = 3
MAX_LEN = 12
WINDOW = 3  # the tag at t reads words t-2..t


class LSTMTagger(nn.Module):
    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds)
        tag_space = self.hidden2tag(lstm_out)
        return F.log_softmax(tag_space, dim=-1)


def tags_of(ids):
    """The rule: number of cue words among the last three (capped at 2), per position."""
    cue = ((ids >= 1) & (ids <= 2)).long()  # (T, B)
    padded = torch.cat([torch.zeros_like(cue[:2]), cue])
    count = padded[2:] + padded[1:-1] + padded[:-2]
    return count.clamp(max=2)


def make_sentences(n, generator, min_len=5, max_len=MAX_LEN):
    """(ids (max_len, n) time-major, lengths (n,), tags (max_len, n)) with pad 0 at the end."""
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    lengths[0] = max_len
    ids = torch.randint(max(CUES) + 1, VOCAB_SIZE, (max_len, n), generator=generator)
    cues = torch.rand((max_len, n), generator=generator) < 0.25
    ids[cues] = torch.randint(1, 3, (int(cues.sum()),), generator=generator)
    pad = torch.arange(max_len)[:, None] >= lengths[None, :]
    ids[pad] = PAD
    return ids, lengths, tags_of(ids)


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    X_train, len_train, y_train = make_sentences(256, g)
    X_test, len_test, y_test = make_sentences(8, g)
    model = LSTMTagger(8, 16, VOCAB_SIZE, N_TAGS)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    real = X_train != PAD
    model.train()
    for _ in range(80):
        optimizer.zero_grad()
        scores = model(X_train)
        loss = F.nll_loss(scores[real], y_train[real])
        loss.backward()
        optimizer.step()
    model.eval()
    return ZooCase(
        name="pos_tagger",
        model=model,
        inputs=X_test,
        lengths=len_test,
        labels=y_test,
        hints={},
        pad_id=PAD,
        token=True,
        batch_first=False,
        call=lambda x, lengths: model(x),
        embedding=model.word_embeddings,
        train_data=(X_train, len_train, y_train),
    )
