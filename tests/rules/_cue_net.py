"""A GRU trained on planted-cue data once per test process (about a second on one thread)."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from captum_rnn.data import planted_cues
from captum_rnn.models import RNNClassifier


@functools.lru_cache(maxsize=1)
def cue_net():
    """``(model, held_out)``: label 1 iff the sequence holds "good" (else it holds "bad")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches train far faster without thread contention
    try:
        data = planted_cues(800, length=(6, 16), vocab_size=30, seed=0)
        x = pad_sequence(data.sequences, batch_first=True)
        y = torch.tensor(data.labels)
        torch.manual_seed(0)
        model = RNNClassifier(
            2, vocab_size=len(data.vocab), embedding_dim=16, hidden_size=16, cell="gru"
        )
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(8):
            order = torch.randperm(len(y))
            for i in range(0, len(y), 32):
                idx = order[i : i + 32]
                xb = x[idx][:, : int((x[idx] != 0).sum(1).max())]
                loss = F.cross_entropy(model(xb), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval(), planted_cues(40, length=(6, 16), vocab_size=30, seed=1)


@pytest.fixture
def one_thread():
    """Tiny batches run fastest on one thread on a busy 2-core machine; restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
