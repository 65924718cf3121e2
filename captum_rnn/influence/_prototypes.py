"""MMD-critic prototypes and criticisms (Kim, Khanna and Koyejo, NeurIPS 2016).

Prototypes are the points whose empirical distribution is closest, in maximum mean
discrepancy under an RBF kernel, to the data's; they are chosen greedily, one class at
a time. Criticisms are the points the prototypes explain worst: those where the
witness function

    f(x) = mean_i k(x, x_i) - mean_j k(x, p_j)

is largest in magnitude, chosen greedily with a log-determinant diversity term so
that they do not all come from one corner of the data.

Memory stays bounded: kernel values are computed a chunk of rows at a time, and the
data mean in ``f`` is estimated on a fixed random reference sample of at most
``max_samples`` points (exact when the data are smaller).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_rnn.influence._search import exact_search

__all__ = [
    "median_gamma",
    "mmd_criticisms",
    "mmd_prototypes",
    "nearest_prototype_predict",
    "rbf_kernel",
    "witness",
]

_CHUNK = 4096


def rbf_kernel(x: Tensor, y: Tensor, gamma: float) -> Tensor:
    """``exp(-gamma * ||x_i - y_j||^2)``, ``(len(x), len(y))``.

    Example:
        >>> rbf_kernel(torch.zeros(1, 2), torch.zeros(1, 2), 1.0).item()
        1.0
    """
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return torch.exp(-gamma * sq.clamp_min(0.0))


def _kernel_mean(x: Tensor, reference: Tensor, gamma: float) -> Tensor:
    """``mean_r k(x_i, reference_r)`` for every row of ``x``, chunked."""
    return torch.cat(
        [rbf_kernel(x[s : s + _CHUNK], reference, gamma).mean(1) for s in range(0, len(x), _CHUNK)]
    )


def median_gamma(x: Tensor, max_samples: int = 2000, seed: int = 0) -> float:
    """Median heuristic: ``1 / median squared distance`` between rows of ``x``.

    Args:
        x: ``(n, dim)`` vectors.
        max_samples: rows sampled (without replacement) to estimate the median.
        seed: sampling seed.

    Returns:
        A positive ``gamma`` for :func:`rbf_kernel`.
    """
    sample = _sample(x, max_samples, seed)
    sq = torch.cdist(sample, sample).pow(2)
    off = sq[~torch.eye(len(sample), dtype=torch.bool, device=sq.device)]
    median = float(off.median()) if off.numel() else 0.0
    return 1.0 / median if median > 0 else 1.0


def _sample(x: Tensor, max_samples: int, seed: int) -> Tensor:
    if len(x) <= max_samples:
        return x
    g = torch.Generator().manual_seed(seed)
    return x[torch.randperm(len(x), generator=g)[:max_samples].to(x.device)]


def mmd_prototypes(
    x: Tensor, k: int, gamma: float, max_samples: int = 4096, seed: int = 0
) -> Tensor:
    """Greedy MMD prototypes of ``x`` (Kim et al. 2016, Algorithm 1).

    Maximises ``J(S) = 2/|S| sum_{j in S} mean_i k(x_i, x_j) - 1/|S|^2 sum_{i,j in S} k``.

    Args:
        x: ``(n, dim)`` vectors.
        k: number of prototypes, ``1 <= k <= n``.
        gamma: RBF kernel parameter.
        max_samples: size of the reference sample for the data mean.
        seed: seed of that sample.

    Returns:
        LongTensor ``(k,)`` of row indices, in the order chosen.

    Example:
        >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
        >>> sorted(mmd_prototypes(x, 2, gamma=1.0).tolist())
        [0, 2]
    """
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    mean_k = _kernel_mean(x, _sample(x, max_samples, seed), gamma)
    to_selected = torch.zeros(n, dtype=x.dtype, device=x.device)  # sum_{j in S} k(c, x_j)
    chosen = torch.zeros(n, dtype=torch.bool, device=x.device)
    sum_mean, sum_pairs = 0.0, 0.0
    order = []
    for t in range(k):
        m = t + 1
        gain = 2.0 / m * (sum_mean + mean_k) - (sum_pairs + 2.0 * to_selected + 1.0) / m**2
        gain = gain.masked_fill(chosen, -math.inf)
        j = int(torch.argmax(gain))
        order.append(j)
        chosen[j] = True
        sum_mean += float(mean_k[j])
        sum_pairs += 2.0 * float(to_selected[j]) + 1.0
        to_selected += rbf_kernel(x, x[j : j + 1], gamma)[:, 0]
    return torch.tensor(order, dtype=torch.long)


def witness(x: Tensor, reference: Tensor, prototypes: Tensor, gamma: float) -> Tensor:
    """MMD witness ``f(x) = mean k(x, reference) - mean k(x, prototypes)`` for rows of ``x``.

    Positive where the data are denser than the prototypes suggest, negative where the
    prototypes over-represent the data.
    """
    return _kernel_mean(x, reference, gamma) - _kernel_mean(x, prototypes, gamma)


def mmd_criticisms(
    x: Tensor,
    witness_values: Tensor,
    k: int,
    gamma: float,
    exclude: Tensor | None = None,
    regularizer: str = "logdet",
    sign: str = "absolute",
) -> Tensor:
    """Greedy criticisms: large ``|witness|`` plus a log-determinant diversity term.

    Maximises ``sum_{c in C} |f(c)| + log det K_C`` (Kim et al. 2016, section 3.2)
    with an incremental Cholesky update, ``O(n)`` kernel values per step.

    Args:
        x: ``(n, dim)`` candidate vectors.
        witness_values: ``(n,)`` witness function at each candidate.
        k: number of criticisms.
        gamma: RBF kernel parameter.
        exclude: indices never chosen (the prototypes).
        regularizer: ``"logdet"`` (diversity) or ``"none"`` (top ``|f|``).
        sign: ``"absolute"`` (the paper's ``|f|``: regions the prototypes under- *or*
            over-represent) or ``"positive"`` (only under-represented regions, i.e.
            examples unlike any prototype).

    Returns:
        LongTensor ``(k,)`` of row indices, in the order chosen.
    """
    n = len(x)
    if regularizer not in ("logdet", "none"):
        raise ValueError(f"regularizer must be 'logdet' or 'none', got {regularizer!r}")
    blocked = torch.zeros(n, dtype=torch.bool, device=x.device)
    if exclude is not None and len(exclude):
        blocked[exclude.to(x.device)] = True
    available = int((~blocked).sum())
    if not 1 <= k <= available:
        raise ValueError(f"k must be in [1, {available}] (points that are not prototypes), got {k}")
    if sign not in ("absolute", "positive"):
        raise ValueError(f"sign must be 'absolute' or 'positive', got {sign!r}")
    score = (witness_values.abs() if sign == "absolute" else witness_values).to(x.dtype)
    residual = torch.ones(n, dtype=x.dtype, device=x.device)  # k(c, c) = 1 for RBF
    basis = torch.zeros(k, n, dtype=x.dtype, device=x.device)
    order = []
    for t in range(k):
        gain = score.clone()
        if regularizer == "logdet":
            gain = gain + torch.log(residual.clamp_min(1e-12))
        gain = gain.masked_fill(blocked, -math.inf)
        j = int(torch.argmax(gain))
        order.append(j)
        blocked[j] = True
        if regularizer == "logdet":
            column = rbf_kernel(x, x[j : j + 1], gamma)[:, 0]
            e = (column - basis[:t].T @ basis[:t, j]) / residual[j].clamp_min(1e-12).sqrt()
            basis[t] = e
            residual = residual - e * e
    return torch.tensor(order, dtype=torch.long)


def nearest_prototype_predict(
    queries: Tensor, prototypes: Tensor, prototype_labels: Tensor, metric: str = "euclidean"
) -> Tensor:
    """Label of the nearest prototype for each query.

    Args:
        queries: ``(batch, dim)``.
        prototypes: ``(p, dim)``.
        prototype_labels: ``(p,)``.
        metric: ``"euclidean"``, ``"cosine"`` or ``"dot"``.

    Returns:
        ``(batch,)`` labels.

    Example:
        >>> nearest_prototype_predict(torch.tensor([[0.9]]), torch.tensor([[0.0], [1.0]]),
        ...                           torch.tensor([3, 7])).tolist()
        [7]
    """
    idx, _ = exact_search(queries, prototypes, 1, metric=metric)
    return prototype_labels.to(idx.device)[idx[:, 0]]
