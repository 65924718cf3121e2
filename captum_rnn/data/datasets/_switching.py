"""Multivariate time series whose label depends on known features at known times.

Ground truth for continuous-input explanations, where it is otherwise unknowable (as in
medical monitoring data). Two generators return a :class:`SaliencySeries`: padded
series, lengths, labels and the true saliency mask ``(batch, time, features)``.

- :func:`state_switching`: a hidden Markov chain over ``states``; in state ``k`` the
  driver feature ``k`` is loud and is the only feature that counts toward the label at
  that step, so the mask has one entry per real step and follows the hidden state.
- :func:`spike_series`: quiet noise with one spike per sequence at a random feature and
  time; the spike's sign is the label, so the mask has a single entry.

In both, the label is exactly ``1 if (series * mask).sum() > 0 else 0``
(:meth:`SaliencySeries.label_of`): entries outside the mask, padding included, never
change it. A trained model may still read unmasked entries to *locate* the masked ones
(which feature is loud), as in other state-switching benchmarks (Tonekaboni et al. 2020;
Ismail et al. 2020); the mask says what the label is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._collate import SequenceDataset

__all__ = ["SaliencySeries", "spike_series", "state_switching"]


@dataclass
class SaliencySeries:
    """Padded continuous sequences with labels and their true saliency masks.

    Attributes:
        series: float32 ``(n, time, features)``, zeros after each sequence's length.
        lengths: int64 ``(n,)``, the real steps of each sequence.
        labels: int64 ``(n,)``, 0 or 1; exactly ``n // 2`` are 1.
        masks: bool ``(n, time, features)``, True at the entries the label is computed
            from (never at padded steps).
        states: int64 ``(n, time)``, the hidden state at each step (-1 at padding);
            ``None`` for :func:`spike_series`.
        drivers: state -> the feature that drives the label in that state (empty for
            :func:`spike_series`).
        feature_names: one name per feature.

    Example:
        >>> data = state_switching(8, length=(5, 9), features=3, seed=0)
        >>> bool((data.label_of(data.series) == data.labels).all())
        True
    """

    series: Tensor
    lengths: Tensor
    labels: Tensor
    masks: Tensor
    states: Tensor | None
    drivers: dict[int, int]
    feature_names: list[str]

    def __len__(self) -> int:
        return int(self.series.shape[0])

    @property
    def num_features(self) -> int:
        """The number of input features."""
        return int(self.series.shape[2])

    @property
    def time_masks(self) -> Tensor:
        """bool ``(n, time)``: steps holding at least one salient entry."""
        return self.masks.any(dim=-1)

    def label_of(self, series: Tensor) -> Tensor:
        """The labels the generator's rule gives to ``series`` (same shape as
        :attr:`series`), read through the stored masks: ``1`` where the masked entries
        sum to more than 0.

        Returns:
            int64 ``(n,)``.
        """
        series = torch.as_tensor(series)
        if series.shape != self.series.shape:
            raise ValueError(
                f"series must have shape {tuple(self.series.shape)}, got {tuple(series.shape)}"
            )
        total = (series.double() * self.masks).sum(dim=(1, 2))
        return (total > 0).long()

    def sequences(self) -> list[Tensor]:
        """One ``(length, features)`` tensor per sequence, padding removed."""
        return [self.series[i, : int(n)] for i, n in enumerate(self.lengths)]

    def to_dataset(self) -> SequenceDataset:
        """A :class:`~captum_rnn.data.SequenceDataset` of ``(series, label)`` items."""
        return SequenceDataset(self.sequences(), self.labels)


# ---------------------------------------------------------------------- argument checks
def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_float(name: str, value: object, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (value >= low and (high is None or value <= high)):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_length(length: object, minimum: int) -> tuple[int, int]:
    if isinstance(length, int) and not isinstance(length, bool):
        low, high = length, length
    elif (
        isinstance(length, tuple | list)
        and len(length) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in length)
    ):
        low, high = length
    else:
        raise TypeError(f"length must be an int or a (min, max) pair of ints, got {length!r}")
    if not minimum <= low <= high:
        raise ValueError(f"length must satisfy {minimum} <= min <= max, got {length!r}")
    return low, high


def _balanced_labels(n: int, g: torch.Generator) -> Tensor:
    labels = torch.tensor([1] * (n // 2) + [0] * (n - n // 2), dtype=torch.long)
    return labels[torch.randperm(n, generator=g)]


def _lengths(n: int, low: int, high: int, g: torch.Generator) -> Tensor:
    return torch.randint(low, high + 1, (n,), generator=g)


# ---------------------------------------------------------------------- generators
def state_switching(
    n: int,
    length: int | tuple[int, int] = (16, 32),
    features: int = 4,
    *,
    states: int | None = None,
    switch_prob: float = 0.1,
    noise: float = 0.3,
    margin: float = 0.5,
    seed: int = 0,
) -> SaliencySeries:
    """Series from a hidden state-switching process; the label follows the driver of
    the current state at every step.

    Each sequence runs a Markov chain over ``states`` hidden states (uniform start; at
    each step it moves to another state, chosen uniformly, with ``switch_prob``). All
    features are Gaussian noise with standard deviation ``noise``, except the driver
    of the current state (feature ``k`` in state ``k``), which is standard normal. The
    label is 1 when the driver values summed over the real steps are positive: the
    mask is the driver entry at every real step. Features ``states .. features - 1``
    are never drivers (pure distractors).

    Classes are balanced exactly (the sign of all driver values of a sequence is flipped
    when needed, which keeps their distribution) and sequences whose driver sum is
    within ``margin * sqrt(length)`` of 0 are redrawn, so labels are not coin flips.

    Args:
        n: number of sequences.
        length: a fixed length, or ``(min, max)`` inclusive, drawn uniformly.
        features: input features (at least ``states``).
        states: hidden states, 1 to ``features`` (default ``min(features, 3)``).
        switch_prob: probability of leaving the current state at each step.
        noise: standard deviation of the non-driving features (the driver has 1).
        margin: minimum ``|driver sum| / sqrt(length)``, in ``[0, 2]``.
        seed: seeds a private ``torch.Generator``; the result is the same on every call.

    Returns:
        A :class:`SaliencySeries` with ``states`` and ``drivers`` filled in.

    Raises:
        TypeError/ValueError: naming the argument that does not fit.

    Example:
        >>> data = state_switching(4, length=(6, 10), features=4, seed=1)
        >>> data.series.shape[2], int(data.masks[0].sum()) == int(data.lengths[0])
        (4, True)
    """
    _check_int("n", n, 0)
    features = _check_int("features", features, 1)
    states = min(features, 3) if states is None else _check_int("states", states, 1)
    if states > features:
        raise ValueError(f"states must be <= features ({features}), got {states}")
    low, high = _check_length(length, 1)
    switch_prob = _check_float("switch_prob", switch_prob, 0.0, 1.0)
    noise = _check_float("noise", noise, 0.0)
    margin = _check_float("margin", margin, 0.0, 2.0)
    _check_int("seed", seed, -(2**63))
    g = torch.Generator().manual_seed(seed)

    labels = _balanced_labels(n, g)
    lengths = _lengths(n, low, high, g)
    series = torch.zeros(n, high, features)
    masks = torch.zeros(n, high, features, dtype=torch.bool)
    hidden = torch.full((n, high), -1, dtype=torch.long)
    for i in range(n):
        size = int(lengths[i])
        while True:
            path = torch.empty(size, dtype=torch.long)
            path[0] = int(torch.randint(states, (1,), generator=g))
            moves = torch.rand(size, generator=g) < switch_prob
            jumps = torch.randint(max(states - 1, 1), (size,), generator=g)
            for t in range(1, size):
                current = int(path[t - 1])
                if states > 1 and bool(moves[t]):
                    # Another state, uniformly: skip over the current one.
                    nxt = int(jumps[t])
                    current = nxt + 1 if nxt >= current else nxt
                path[t] = current
            x = noise * torch.randn(size, features, generator=g)
            driver = torch.randn(size, generator=g)
            total = float(driver.sum())
            if abs(total) >= margin * size**0.5:
                break
        if (total > 0) != bool(labels[i]):
            driver = -driver
        steps = torch.arange(size)
        x[steps, path] = driver
        series[i, :size] = x
        masks[i, steps, path] = True
        hidden[i, :size] = path
    return SaliencySeries(
        series=series,
        lengths=lengths,
        labels=labels,
        masks=masks,
        states=hidden,
        drivers={k: k for k in range(states)},
        feature_names=[f"f{j}" for j in range(features)],
    )


def spike_series(
    n: int,
    length: int | tuple[int, int] = (10, 30),
    features: int = 3,
    *,
    height: float = 3.0,
    noise: float = 0.3,
    seed: int = 0,
) -> SaliencySeries:
    """Quiet noise with one spike per sequence; the spike's sign is the label.

    Every entry is Gaussian noise with standard deviation ``noise``; one entry, at a
    uniformly drawn real step and feature, is set to ``+height`` (label 1) or
    ``-height`` (label 0). The mask is that one entry.

    Args:
        n: number of sequences.
        length: a fixed length, or ``(min, max)`` inclusive, drawn uniformly.
        features: input features.
        height: the spike's magnitude (> 0).
        noise: standard deviation of the background.
        seed: seeds a private ``torch.Generator``.

    Returns:
        A :class:`SaliencySeries` (``states`` is ``None``).

    Example:
        >>> data = spike_series(4, length=8, features=2, seed=0)
        >>> [int(m.sum()) for m in data.masks]
        [1, 1, 1, 1]
    """
    _check_int("n", n, 0)
    features = _check_int("features", features, 1)
    low, high = _check_length(length, 1)
    height = _check_float("height", height, 0.0)
    if height == 0:
        raise ValueError("height must be > 0, got 0.0")
    noise = _check_float("noise", noise, 0.0)
    _check_int("seed", seed, -(2**63))
    g = torch.Generator().manual_seed(seed)

    labels = _balanced_labels(n, g)
    lengths = _lengths(n, low, high, g)
    real = torch.arange(high)[None, :] < lengths[:, None]
    series = noise * torch.randn(n, high, features, generator=g) * real[..., None]
    masks = torch.zeros(n, high, features, dtype=torch.bool)
    steps = (torch.rand(n, generator=g) * lengths).long().clamp(max=lengths - 1)
    which = torch.randint(features, (n,), generator=g)
    rows = torch.arange(n)
    series[rows, steps, which] = torch.where(labels.bool(), height, -height)
    masks[rows, steps, which] = True
    return SaliencySeries(
        series=series,
        lengths=lengths,
        labels=labels,
        masks=masks,
        states=None,
        drivers={},
        feature_names=[f"f{j}" for j in range(features)],
    )
