"""A multi-step forecaster as time-series tutorials write it: a batch-first GRU reads a window
of a univariate series ``(batch, window, 1)`` and a linear head on the last hidden state
predicts the next ``HORIZON`` values at once, ``(batch, HORIZON)``. Plain regression: the user
must say ``output="regression"``.

Toy data: noisy sine waves of random frequency and phase."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo import ZooCase

WINDOW = 16
HORIZON = 4


class GRUForecaster(nn.Module):
    def __init__(self, n_features=1, hidden_size=16, horizon=HORIZON):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, horizon)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1])


def make_windows(n, generator):
    """(windows (n, WINDOW, 1), targets (n, HORIZON))."""
    t = torch.arange(WINDOW + HORIZON, dtype=torch.float32)
    freq = 0.2 + 0.4 * torch.rand(n, 1, generator=generator)
    phase = 6.28 * torch.rand(n, 1, generator=generator)
    series = torch.sin(freq * t + phase) + 0.05 * torch.randn(n, len(t), generator=generator)
    return series[:, :WINDOW, None], series[:, WINDOW:]


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    X_train, y_train = make_windows(256, g)
    X_test, y_test = make_windows(6, g)
    model = GRUForecaster()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        loss = F.mse_loss(model(X_train), y_train)
        loss.backward()
        optimizer.step()
    model.eval()
    return ZooCase(
        name="multistep_forecaster",
        model=model,
        inputs=X_test,
        lengths=None,
        labels=y_test,
        hints={"output": "regression"},
        pad_id=None,
        token=False,
        batch_first=True,
        call=lambda x, lengths: model(x),
        embedding=None,
        train_data=(X_train, None, y_train),
    )
