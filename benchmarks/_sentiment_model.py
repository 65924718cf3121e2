"""The movie-review task shared by the rule benchmarks: snippets, vocabulary, split and a
small attention LSTM trained for a time budget (as in ``examples/sentiment_rules.py``)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from captum_rnn.data import DataUnavailableError, Vocabulary, load_sentiment_snippets
from captum_rnn.models import RNNClassifier


@dataclass
class SentimentTask:
    texts: list[str]
    vocab: Vocabulary
    ids: torch.Tensor
    y: torch.Tensor
    train_idx: torch.Tensor
    valid_idx: torch.Tensor
    test_idx: torch.Tensor
    model: RNNClassifier
    test_accuracy: float
    epochs: int


def _accuracy(model: RNNClassifier, ids: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(ids).argmax(1) == y).float().mean())


def sentiment_task(seconds: float = 60.0, max_epochs: int = 8, seed: int = 0) -> SentimentTask:
    """Load the movie-review snippets (exits with a message when they cannot be had),
    split 80/10/10 and train the attention LSTM; the best validation epoch is kept."""
    torch.manual_seed(seed)
    try:
        snippets = load_sentiment_snippets("movies")
    except DataUnavailableError as err:
        sys.exit(f"the movie-review snippets are not cached and could not be downloaded: {err}")
    vocab = Vocabulary.build(snippets.texts, min_freq=2)
    ids, _ = vocab.encode_batch(snippets.texts)
    y = torch.tensor(snippets.labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut, cut2 = int(0.8 * len(y)), int(0.9 * len(y))
    train_idx, valid_idx, test_idx = order[:cut], order[cut:cut2], order[cut2:]
    model = RNNClassifier(
        2,
        vocab_size=len(vocab),
        embedding_dim=32,
        hidden_size=32,
        cell="lstm",
        attention="additive",
        dropout=0.3,
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start, best, best_state, epoch = time.perf_counter(), -1.0, None, 0
    while epoch < max_epochs and (epoch == 0 or time.perf_counter() - start < seconds):
        model.train()
        shuffled = train_idx[torch.randperm(len(train_idx))]
        for i in range(0, len(shuffled), 64):
            idx = shuffled[i : i + 64]
            xb = ids[idx][:, : int((ids[idx] != 0).sum(1).max())]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epoch += 1
        model.eval()
        valid = _accuracy(model, ids[valid_idx], y[valid_idx])
        if valid > best:
            best, best_state = valid, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    return SentimentTask(
        list(snippets.texts),
        vocab,
        ids,
        y,
        train_idx,
        valid_idx,
        test_idx,
        model,
        _accuracy(model, ids[test_idx], y[test_idx]),
        epoch,
    )
