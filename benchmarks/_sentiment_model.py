"""The movie-review task shared by the rule benchmarks: snippets, vocabulary, split and the
small attention LSTM of ``examples/sentiment_rules.py`` (its ``train``), trained for a time
budget."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from sentiment_rules import accuracy, train  # noqa: E402  (the example's own training)

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
    model, epoch, _ = train(ids, y, train_idx, valid_idx, len(vocab), seconds, max_epochs)
    return SentimentTask(
        list(snippets.texts),
        vocab,
        ids,
        y,
        train_idx,
        valid_idx,
        test_idx,
        model,
        accuracy(model, ids[test_idx], y[test_idx]),
        epoch,
    )
