"""A GRU text classifier that returns log-probabilities and trains with NLLLoss, as older
PyTorch tutorials do. Batch-first, no lengths argument: the trailing padding (id 0) is fed to
the GRU as content (its embedding row is zero and frozen by padding_idx).

Toy task: three classes, each marked by its own cue token somewhere in the sentence."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo import ZooCase

PAD = 0
CUES = (1, 2, 3)
VOCAB_SIZE = 24
N_CLASSES = 3
MAX_LEN = 12


class GRUClassifier(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.gru = nn.GRU(embedding_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def forward(self, x):
        embedded = self.embedding(x)
        out, h_n = self.gru(embedded)
        return F.log_softmax(self.fc(h_n[-1]), dim=1)


def make_sentences(n, generator, min_len=4, max_len=MAX_LEN):
    """(ids (n, max_len) batch-first, lengths (n,), labels (n,)) with pad 0 at the end."""
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    lengths[0] = max_len
    ids = torch.randint(max(CUES) + 1, VOCAB_SIZE, (n, max_len), generator=generator)
    labels = torch.randint(0, N_CLASSES, (n,), generator=generator)
    where = (torch.rand(n, generator=generator) * lengths).long()
    ids[torch.arange(n), where] = torch.tensor(CUES)[labels]
    ids[torch.arange(max_len)[None, :] >= lengths[:, None]] = PAD
    return ids, lengths, labels


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    X_train, len_train, y_train = make_sentences(384, g)
    X_test, len_test, y_test = make_sentences(32, g)

    model = GRUClassifier(VOCAB_SIZE, 16, 24, N_CLASSES)
    criterion = nn.NLLLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    batch_size = 64
    for _epoch in range(12):
        model.train()
        permutation = torch.randperm(X_train.size(0), generator=g)
        for i in range(0, X_train.size(0), batch_size):
            indices = permutation[i : i + batch_size]
            batch_x, batch_y = X_train[indices], y_train[indices]
            optimizer.zero_grad()
            log_probs = model(batch_x)
            loss = criterion(log_probs, batch_y)
            loss.backward()
            optimizer.step()

    model.eval()
    return ZooCase(
        name="nll_gru",
        model=model,
        inputs=X_test,
        lengths=len_test,
        labels=y_test,
        hints={},
        pad_id=PAD,
        token=True,
        batch_first=True,
        call=lambda x, lengths: model(x),
        embedding=model.embedding,
        train_data=(X_train, len_train, y_train),
    )
