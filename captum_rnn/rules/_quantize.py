"""Automata by quantising a recurrent network's state space.

Collect the network's state after every prefix of a set of sample words, cluster the
states (k-means or an equal-width interval grid per dimension, as in Omlin and Giles
1996), read the transition between clusters off the observed prefix pairs by majority
vote, label each cluster by the network's majority output over its states, and
minimise. The number of clusters is chosen by fidelity on held-out sample words.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from captum_rnn.rules._dfa import DFA
from captum_rnn.rules._lstar import Budget
from captum_rnn.rules._oracle import RecurrentOracle

__all__ = ["QuantizeResult", "kmeans", "quantize"]

Indices = tuple[int, ...]
DEFAULT_CLUSTERS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)


def kmeans(X: Tensor, k: int, seed: int = 0, iterations: int = 50) -> Tensor:
    """Lloyd's k-means with k-means++ seeding; returns the ``(k, dim)`` centres.

    Example:
        >>> kmeans(torch.tensor([[0.0], [0.1], [5.0], [5.1]]), 2).sort(dim=0).values.squeeze()
        tensor([0.0500, 5.0500])
    """
    g = torch.Generator().manual_seed(seed)
    X = X.detach().float().cpu()
    n = X.shape[0]
    k = min(k, n)
    centres = [X[int(torch.randint(n, (1,), generator=g))]]
    d2 = ((X - centres[0]) ** 2).sum(dim=1)
    for _ in range(1, k):
        if float(d2.sum()) <= 0:
            break
        i = int(torch.multinomial(d2 / d2.sum(), 1, generator=g))
        centres.append(X[i])
        d2 = torch.minimum(d2, ((X - X[i]) ** 2).sum(dim=1))
    C = torch.stack(centres)
    for _ in range(iterations):
        assign = torch.cdist(X, C).argmin(dim=1)
        new = torch.zeros_like(C).index_add_(0, assign, X)
        counts = torch.bincount(assign, minlength=C.shape[0]).float()[:, None]
        new = torch.where(counts > 0, new / counts.clamp_min(1), C)
        if torch.allclose(new, C):
            break
        C = new
    return C


class _Quantiser:
    """Maps states to clusters: nearest k-means centre, or an interval grid cell."""

    def __init__(self, X: Tensor, kind: str, size: int, seed: int) -> None:
        self.kind = kind
        if kind == "kmeans":
            self.centres = kmeans(X, size, seed)
            return
        self.low = X.min(dim=0).values
        width = (X.max(dim=0).values - self.low).clamp_min(1e-6)
        self.bins = size
        self.width = width / size
        cells = self._cells(X)
        keys, inverse = np.unique(cells, axis=0, return_inverse=True)
        self.index = {tuple(key): i for i, key in enumerate(keys.tolist())}
        inv = torch.as_tensor(inverse.reshape(-1))
        self.centres = torch.zeros(len(keys), X.shape[1]).index_add_(0, inv, X.float())
        self.centres /= torch.bincount(inv, minlength=len(keys)).float()[:, None]

    def _cells(self, X: Tensor) -> np.ndarray:
        cells = ((X.float() - self.low) / self.width).floor().clamp(0, self.bins - 1)
        return cells.to(torch.int64).numpy()

    @property
    def size(self) -> int:
        return self.centres.shape[0]

    def __call__(self, X: Tensor) -> np.ndarray:
        X = X.detach().float().cpu()
        nearest = torch.cdist(X, self.centres).argmin(dim=1).numpy()
        if self.kind == "kmeans":
            return nearest
        cells = self._cells(X)
        return np.array(
            [
                self.index.get(tuple(c), int(j))
                for c, j in zip(cells.tolist(), nearest, strict=True)
            ],
            dtype=np.int64,
        )


@dataclass
class QuantizeResult:
    dfa: DFA
    clusters: int
    fidelity: float
    candidates: list[tuple[int, int, float]]  # (clusters, states, held-out fidelity)
    stopped_by: str


def _balanced_agreement(predicted: np.ndarray, truth: np.ndarray) -> float:
    scores = [
        float((predicted[truth == c] == c).mean()) for c in (False, True) if (truth == c).any()
    ]
    return float(np.mean(scores)) if scores else 1.0


def quantize(
    oracle: RecurrentOracle,
    samples: Sequence[Indices],
    budget: Budget,
    clustering: str = "kmeans",
    n_clusters: int | Sequence[int] | None = None,
    held_out: float = 0.2,
    seed: int = 0,
) -> QuantizeResult:
    """Extract a DFA by clustering the network's states over ``samples``."""
    rng = random.Random(seed)
    words = list(dict.fromkeys(samples))
    rng.shuffle(words)
    n_test = max(1, int(round(held_out * len(words)))) if len(words) > 1 else 0
    test, fit = words[:n_test], words[n_test:] or words
    oracle.nodes(fit)
    # walk the trie along the fit words: every observed (parent, symbol, child)
    edges: dict[tuple[int, int], int] = {}
    for w in fit:
        node = 0
        for a in w:
            child = oracle.child(node, a)
            edges[(node, a)] = child  # type: ignore[assignment]
            node = child  # type: ignore[assignment]
    nodes = sorted({0, *edges.values()})
    position = {v: i for i, v in enumerate(nodes)}
    X = oracle.H[nodes].detach().float().cpu()
    labels = oracle.node_labels(np.array(nodes, dtype=np.int64))
    parent = np.array([position[p] for p, _ in edges], dtype=np.int64)
    symbol = np.array([a for _, a in edges], dtype=np.int64)
    child = np.array([position[c] for c in edges.values()], dtype=np.int64)
    test_truth = oracle.labels(test) if test else None
    distinct = int(torch.unique(X, dim=0).shape[0])
    if n_clusters is None:
        grid = list(DEFAULT_CLUSTERS) if clustering == "kmeans" else [2, 3, 4, 6, 8]
        sizes = [s for s in grid if s <= max(2, distinct)] or [2]
    elif isinstance(n_clusters, int):
        sizes = [n_clusters]
    else:
        sizes = sorted(set(n_clusters))
    candidates: list[tuple[int, int, float]] = []
    best: tuple[float, int, DFA, int] | None = None
    stopped_by = "candidates"

    def build(kind: str, size: int) -> tuple[DFA, int, float]:
        quantiser = _Quantiser(X, kind, size, seed)
        cluster = quantiser(X)
        m, k = quantiser.size, oracle.k
        votes = np.zeros((m, k, m), dtype=np.int64)
        np.add.at(votes, (cluster[parent], symbol, cluster[child]), 1)
        table = votes.argmax(axis=2)
        unseen = np.argwhere(votes.sum(axis=2) == 0)
        if len(unseen):
            # no observed move: step the cluster's centre through the network
            src = torch.as_tensor(unseen[:, 0])
            sym = torch.as_tensor(unseen[:, 1])
            moved = oracle.step(quantiser.centres[src].to(oracle.H.dtype), sym)
            table[unseen[:, 0], unseen[:, 1]] = quantiser(moved)
        positive = np.bincount(cluster, weights=labels.astype(np.float64), minlength=m)
        total = np.bincount(cluster, minlength=m)
        accepting = {c for c in range(m) if total[c] and positive[c] * 2 > total[c]}
        # the start cluster takes the empty word's label, which may be set by hand
        start = int(cluster[position[0]])
        if oracle.empty_label:
            accepting.add(start)
        else:
            accepting.discard(start)
        dfa = DFA(oracle.alphabet, table.tolist(), accepting, start).minimize()
        predicted = dfa._accepts_indices(test) if test else dfa._accepts_indices(fit)
        truth = test_truth if test else oracle.labels(fit)
        return dfa, m, _balanced_agreement(predicted, truth)

    for size in sizes:
        if best is not None and budget.expired():
            stopped_by = "time"
            break
        dfa, m, fidelity = build(clustering, size)
        candidates.append((m, dfa.num_states, fidelity))
        if dfa.num_states > budget.max_states:
            continue
        if best is None or (fidelity, -dfa.num_states) > (best[0], -best[1]):
            best = (fidelity, dfa.num_states, dfa, m)
    if best is None:  # every candidate was over max_states: k-means with that many
        stopped_by = "max_states"
        dfa, m, fidelity = build("kmeans", min(budget.max_states, max(2, distinct)))
        candidates.append((m, dfa.num_states, fidelity))
        best = (fidelity, dfa.num_states, dfa, m)
    return QuantizeResult(best[2], best[3], best[0], candidates, stopped_by)
