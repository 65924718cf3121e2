"""A GRU over all 9 speakers of Japanese Vowels (standardised coefficients): about a second
of training on one thread. Shared by the series tests and ``benchmarks/counterfactuals.py``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from captum_rnn.data.datasets import load_japanese_vowels
from captum_rnn.models import RNNClassifier


def train_vowels_gru(seed: int = 0, epochs: int = 15):
    """``(model, train series, train labels, test series, test accuracy)``; the caller's
    random state is left as it was. Raises ``DataUnavailableError`` without the data."""
    train, test = load_japanese_vowels("train"), load_japanese_vowels("test")
    frames = torch.cat(train.series)
    mean, std = frames.mean(0), frames.std(0)
    series = [(s - mean) / std for s in train.series]
    held = [(s - mean) / std for s in test.series]
    x, lengths = pad_sequence(series, batch_first=True), torch.tensor([len(s) for s in series])
    y = torch.tensor(train.labels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = RNNClassifier(9, input_size=12, cell="gru", hidden_size=32)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(epochs):
            order = torch.randperm(len(y))
            for i in range(0, len(y), 32):
                idx = order[i : i + 32]
                loss = F.cross_entropy(model(x[idx], lengths[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    model.eval()
    with torch.no_grad():
        xt, lt = pad_sequence(held, batch_first=True), torch.tensor([len(s) for s in held])
        accuracy = float((model(xt, lt).argmax(-1) == torch.tensor(test.labels)).float().mean())
    return model, series, list(train.labels), held, accuracy
