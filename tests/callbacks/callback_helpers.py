"""Tiny data and trainers shared by the callback tests."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from captum_rnn.attr import AttributionMethod, MethodResult
from captum_rnn.data import SequenceDataset, pad_collate, planted_cues
from captum_rnn.models import RNNClassifier


def cue_data(n: int = 48, seed: int = 0):
    return planted_cues(n, length=(4, 9), vocab_size=20, seed=seed)


def tiny_model(vocab_size: int, seed: int = 0, **kwargs) -> RNNClassifier:
    torch.manual_seed(seed)
    options = dict(embedding_dim=6, hidden_size=6, lr=1e-2)
    options.update(kwargs)
    return RNNClassifier(2, vocab_size=vocab_size, **options)


def loaders(dataset: SequenceDataset, batch_size: int = 16, shuffle: bool = True):
    """Training loader (shuffled with the global RNG, as most users have it) and
    validation loader."""
    n = len(dataset)
    train = torch.utils.data.Subset(dataset, range(0, n - 16))
    val = torch.utils.data.Subset(dataset, range(n - 16, n))
    return (
        DataLoader(train, batch_size=batch_size, shuffle=shuffle, collate_fn=pad_collate),
        DataLoader(val, batch_size=batch_size, collate_fn=pad_collate),
    )


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    options = dict(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


class NoisyMethod(AttributionMethod):
    """Draws from every random stream and flips the model to training mode: a method
    that a careless callback would let change training. Not registered by name here:
    tests add it to the registry with monkeypatch."""

    calls = 0

    def attribute(self, inputs, baselines, target, lengths, **kwargs):
        type(self).calls += 1
        noise = torch.rand(inputs.shape) + np.random.rand() + random.random()
        self.model.train()
        return MethodResult((inputs * noise.to(inputs.dtype)).detach())


class FeatureDataModule(pl.LightningDataModule):
    """Continuous ``(time, features)`` sequences and no vocabulary: for configs whose
    model reads features (nothing to link to ``vocab_size``)."""

    def __init__(self, n: int = 16, features: int = 3, batch_size: int = 8) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        sequences = [torch.randn(4 + i % 3, features, generator=generator) for i in range(n)]
        self.dataset = SequenceDataset(sequences, [float(s.sum()) for s in sequences])
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, collate_fn=pad_collate)
