"""Average precision: the one implementation the metrics and the temporal ground-truth
score share."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["average_precision"]


def average_precision(scores: Tensor, labels: Tensor) -> float:
    """Average precision (area under the precision-recall curve, step-wise as
    scikit-learn's ``average_precision_score`` computes it) of ``scores`` against 0/1
    ``labels``; tied scores form one step. NaN when no label is positive.

    Args:
        scores: any shape (flattened).
        labels: 0/1 or bool, the same number of elements.

    Returns:
        The average precision.

    Example:
        >>> average_precision(torch.tensor([0.9, 0.8, 0.1]), torch.tensor([1, 0, 1]))
        0.8333333333333333
    """
    scores, labels = scores.double().flatten(), labels.bool().flatten()
    positives = int(labels.sum())
    if positives == 0:
        return float("nan")
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order], labels[order].double()
    # thresholds at distinct scores: the last index of each run of ties
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]
    tp = torch.cumsum(y, 0)[last]
    seen = (torch.nonzero(last)[:, 0] + 1).double()
    precision, recall = tp / seen, tp / positives
    previous = torch.cat([recall.new_zeros(1), recall[:-1]])
    return float(((recall - previous) * precision).sum())
