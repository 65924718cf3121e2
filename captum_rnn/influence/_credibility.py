"""Deep k-NN credibility (Papernot and McDaniel 2018) and a calibrated novelty score.

Deep k-NN asks, for every layer, which training points are nearest to an input and
whether their labels agree with a candidate class. Summed over layers, the number of
disagreeing neighbours is a nonconformity score; comparing it with the scores of a
held-out calibration set (with their true labels) gives conformal p-values:

    p_j(x) = |{a in A : a >= alpha_j(x)}| / |A|

The predicted class is the one with the largest p-value; its p-value is the
*credibility* (how much support the training data give the prediction) and one minus
the second largest is the *confidence*. A prediction with low credibility has no
support in the training data, whatever the softmax says.

Novelty is the distance to the k-th nearest training point, reported as the share of
calibration points that lie closer to their own k-th neighbour: 0.99 means the input
is further from the training data than 99% of held-out data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Credibility",
    "conformal_p_values",
    "deep_knn_credibility",
    "knn_nonconformity",
    "novelty_scores",
]


@dataclass
class Credibility:
    """Deep k-NN result for a batch.

    Attributes:
        p_values: ``(batch, num_classes)`` conformal p-values.
        predictions: ``(batch,)`` class with the largest p-value.
        credibility: ``(batch,)`` that largest p-value (support in the training data).
        confidence: ``(batch,)`` one minus the second largest p-value.
        nonconformity: ``(batch, num_classes)`` disagreeing neighbours per class.
    """

    p_values: Tensor
    predictions: Tensor
    credibility: Tensor
    confidence: Tensor
    nonconformity: Tensor


def knn_nonconformity(neighbor_labels: Sequence[Tensor], num_classes: int) -> Tensor:
    """Number of neighbours, over all layers, whose label differs from each class.

    Args:
        neighbor_labels: one ``(batch, k)`` integer tensor per layer.
        num_classes: number of classes.

    Returns:
        ``(batch, num_classes)`` float tensor: ``alpha[b, j]``.

    Example:
        >>> knn_nonconformity([torch.tensor([[0, 0, 1]])], 2).tolist()
        [[1.0, 2.0]]
    """
    if not neighbor_labels:
        raise ValueError("neighbor_labels must hold at least one layer")
    total = None
    for labels in neighbor_labels:
        if labels.dim() != 2 or labels.dtype.is_floating_point:
            raise ValueError(
                f"neighbor_labels must be integer (batch, k) tensors, got {labels.dtype} "
                f"{tuple(labels.shape)}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(f"neighbor_labels must lie in [0, {num_classes})")
        counts = torch.nn.functional.one_hot(labels.long(), num_classes).sum(dim=1)
        disagree = labels.shape[1] - counts
        total = disagree if total is None else total + disagree
    return total.float()  # type: ignore[union-attr]


def conformal_p_values(nonconformity: Tensor, calibration: Tensor) -> Tensor:
    """Share of calibration scores at least as large as each test score.

    Args:
        nonconformity: ``(batch, num_classes)`` test scores.
        calibration: ``(m,)`` scores of the calibration set with its true labels.

    Returns:
        ``(batch, num_classes)`` p-values in ``[0, 1]``.

    Example:
        >>> conformal_p_values(torch.tensor([[0.0, 3.0]]), torch.tensor([0.0, 1.0, 2.0, 3.0])).tolist()
        [[1.0, 0.25]]
    """
    if calibration.dim() != 1 or calibration.numel() == 0:
        raise ValueError("calibration must be a non-empty 1-D tensor of nonconformity scores")
    ordered = torch.sort(calibration.float().to(nonconformity.device)).values
    # number of calibration scores < a is searchsorted(left); those >= a are the rest
    below = torch.searchsorted(ordered, nonconformity.float().contiguous(), right=False)
    return (ordered.numel() - below).float() / ordered.numel()


def deep_knn_credibility(
    neighbor_labels: Sequence[Tensor], calibration: Tensor, num_classes: int
) -> Credibility:
    """Deep k-NN prediction, credibility and confidence from neighbour labels per layer.

    Args:
        neighbor_labels: one ``(batch, k)`` tensor of training labels per layer.
        calibration: ``(m,)`` nonconformity of the calibration set (true labels), computed
            with the same layers and ``k``.
        num_classes: number of classes.

    Returns:
        A :class:`Credibility`.

    Example:
        >>> calib = torch.tensor([0.0, 0.0, 1.0, 3.0])
        >>> deep_knn_credibility([torch.tensor([[1, 1, 1]])], calib, 2).credibility.tolist()
        [1.0]
    """
    alpha = knn_nonconformity(neighbor_labels, num_classes)
    p = conformal_p_values(alpha, calibration)
    top = torch.topk(p, min(2, num_classes), dim=1)
    second = top.values[:, 1] if num_classes > 1 else torch.zeros_like(top.values[:, 0])
    return Credibility(
        p_values=p,
        predictions=top.indices[:, 0],
        credibility=top.values[:, 0],
        confidence=1.0 - second,
        nonconformity=alpha,
    )


def novelty_scores(distances: Tensor, calibration: Tensor) -> Tensor:
    """Share of calibration distances strictly below each distance (0: typical, 1: novel).

    Args:
        distances: ``(batch,)`` distance of each input to its k-th training neighbour.
        calibration: ``(m,)`` the same distance for held-out calibration data.

    Returns:
        ``(batch,)`` scores in ``[0, 1]``.

    Example:
        >>> novelty_scores(torch.tensor([0.5, 10.0]), torch.tensor([0.1, 1.0, 2.0, 3.0])).tolist()
        [0.25, 1.0]
    """
    if calibration.dim() != 1 or calibration.numel() == 0:
        raise ValueError("calibration must be a non-empty 1-D tensor of distances")
    ordered = torch.sort(calibration.float().to(distances.device)).values
    below = torch.searchsorted(ordered, distances.float().contiguous(), right=False)
    return below.float() / ordered.numel()
