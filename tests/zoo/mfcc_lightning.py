"""A PyTorch Lightning speech-command style classifier over MFCC-like features (B, T, 13):
a batch-first GRU whose last hidden state goes to a linear layer. The training step reads a
dict batch, as audio tutorials built on a Dataset of dicts do.

Toy task: the class is the sign of MFCC coefficient 3 over a few frames in the middle of the
clip (frames 4-7); everything else is noise."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from zoo import ZooCase

N_MFCC = 13
N_FRAMES = 12
CUE_COEF = 3
CUE_FRAMES = slice(4, 8)


class MFCCDataset(Dataset):
    def __init__(self, n, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        self.features = torch.randn(n, N_FRAMES, N_MFCC, generator=g) * 0.5
        sign = self.labels.float() * 2 - 1
        self.features[:, CUE_FRAMES, CUE_COEF] += 1.5 * sign[:, None]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return {"features": self.features[idx], "label": int(self.labels[idx])}


def make_dataloader(n, batch_size, seed=0, shuffle=False):
    """A DataLoader of {"features": (T, 13) float, "label": int} items, equal length T."""
    return DataLoader(MFCCDataset(n, seed), batch_size=batch_size, shuffle=shuffle)


class SpeechClassifier(pl.LightningModule):
    def __init__(self, n_mfcc=N_MFCC, hidden_size=16, n_classes=2, lr=1e-2):
        super().__init__()
        self.save_hyperparameters()
        self.gru = nn.GRU(n_mfcc, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, n_classes)

    def forward(self, x):
        # x: (batch, time, n_mfcc)
        _, h_n = self.gru(x)
        return self.fc(h_n[-1])

    def training_step(self, batch, batch_idx):
        x, y = batch["features"], batch["label"]
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch["features"], batch["label"]
        logits = self(x)
        acc = (logits.argmax(dim=1) == y).float().mean()
        self.log("val_acc", acc)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    train_set = MFCCDataset(320, seed=seed)
    test_set = MFCCDataset(32, seed=seed + 10_000)

    model = SpeechClassifier()
    optimizer = model.configure_optimizers()
    g = torch.Generator().manual_seed(seed)
    batch_size = 64
    # a plain loop is much faster than a Trainer for a model this small
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(len(train_set), generator=g)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            batch = {"features": train_set.features[idx], "label": train_set.labels[idx]}
            optimizer.zero_grad()
            loss = F.cross_entropy(model(batch["features"]), batch["label"])
            loss.backward()
            optimizer.step()

    model.eval()
    return ZooCase(
        name="mfcc_lightning",
        model=model,
        inputs=test_set.features,
        lengths=None,
        labels=test_set.labels,
        hints={},
        pad_id=None,
        token=False,
        batch_first=True,
        call=lambda x, lengths: model(x),
        embedding=None,
        train_data=(train_set.features, None, train_set.labels),
    )
