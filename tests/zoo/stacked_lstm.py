"""A stacked LSTM over continuous multivariate time series, the way time-series forecasting /
classification tutorials write it: batch-first, two layers, the output at the last time step
goes to a linear layer. It takes no lengths: every series has the same length.

Toy task: class 1 iff a bump appears in feature 0 somewhere in the second half of the series
(steps 6-11); the other features are noise."""

from __future__ import annotations

import torch
from torch import nn

from zoo import ZooCase

N_FEATURES = 3
SEQ_LEN = 12
BUMP_START = SEQ_LEN // 2


class LSTMClassifier(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, num_classes):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
        )
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size, device=x.device)
        c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size, device=x.device)
        out, _ = self.lstm(x, (h0, c0))
        return self.fc(out[:, -1, :])


def make_series(n, generator):
    """(x (n, SEQ_LEN, N_FEATURES), labels (n,)); a bump of height 2 and width 2 in feature 0
    at a random step in [BUMP_START, SEQ_LEN - 2] for class 1."""
    x = torch.randn(n, SEQ_LEN, N_FEATURES, generator=generator) * 0.3
    y = torch.randint(0, 2, (n,), generator=generator)
    start = torch.randint(BUMP_START, SEQ_LEN - 1, (n,), generator=generator)
    for i in range(n):
        if y[i] == 1:
            x[i, start[i] : start[i] + 2, 0] += 2.0
    return x, y


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    X_train, y_train = make_series(320, g)
    X_test, y_test = make_series(32, g)

    model = LSTMClassifier(N_FEATURES, 16, num_layers=2, num_classes=2)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    batch_size = 64
    for _epoch in range(8):
        model.train()
        permutation = torch.randperm(X_train.size(0), generator=g)
        for i in range(0, X_train.size(0), batch_size):
            indices = permutation[i : i + batch_size]
            optimizer.zero_grad()
            outputs = model(X_train[indices])
            loss = criterion(outputs, y_train[indices])
            loss.backward()
            optimizer.step()

    model.eval()
    return ZooCase(
        name="stacked_lstm",
        model=model,
        inputs=X_test,
        lengths=None,
        labels=y_test,
        hints={},
        pad_id=None,
        token=False,
        batch_first=True,
        call=lambda x, lengths: model(x),
        embedding=None,
        train_data=(X_train, None, y_train),
    )
