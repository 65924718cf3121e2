"""The simulated HMM data of Tonekaboni et al. 2020, with the true salient cells.

Two generators return an :class:`HMMSeries`: padded series ``(n, time, 3)``, one label
per step, and the true saliency mask ``(n, time, 3)`` (one cell per real step: the
feature the step's label is drawn from).

- :func:`hmm_state`: the "state" data as tint (time-interpret 0.3, ``tint.datasets.HMM``,
  after Crabbé & van der Schaar 2021 and Tonekaboni et al. 2020) generates it. A hidden
  two-state chain: from state 1 the chain stays with probability ``0.95 - d / 500`` (``d``
  the steps already spent in the state, while that is above 0.8), from state 0 it moves
  to 1 with probability 0.05. Observations are Gaussian with state means
  ``[0.1, 1.6, 0.5]`` and ``[-0.1, -0.4, -1.5]``, covariance ``0.8 I`` (plus ``1e-3 I``)
  with a 0.01 correlation between the state's important feature and feature 0. The
  important feature is 1 in state 0 and 2 in state 1; the label at step ``t`` is
  Bernoulli ``sigmoid(2 x[t, important])``. tint's true saliency marks that feature at
  every step, and so does :attr:`HMMSeries.masks`.
- :func:`hmm_switch_feature`: the "switch feature" data of Tonekaboni et al. 2020
  (FIT, section 4.1): a three-state sticky chain (stay with probability ``stay``, else
  move to one of the other states), state ``k`` makes feature ``k`` the important one
  and shifts its mean; the label at step ``t`` is Bernoulli ``sigmoid(2 x[t, k])``.
  FIT draws the features from Gaussian processes; here they are Gaussian per step like
  the state data (tint has no generator for this set), so the figures of the two papers
  are indicative only.

References:
    Tonekaboni et al. 2020, "What went wrong and when? Instance-wise feature importance
    for time-series black-box models" (NeurIPS), https://arxiv.org/abs/2003.02821;
    Crabbé & van der Schaar 2021, "Explaining time series predictions with dynamic
    masks" (ICML), https://arxiv.org/abs/2106.05303; Enguehard 2023, "Time Interpret"
    (tint), https://arxiv.org/abs/2306.02968.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._switching import _check_float, _check_int, _check_length

__all__ = ["HMMSeries", "hmm_state", "hmm_switch_feature"]

#: tint's defaults for the "state" data: state means, important and correlated features.
STATE_MEANS = ((0.1, 1.6, 0.5), (-0.1, -0.4, -1.5))
STATE_IMPORTANT = (1, 2)
STATE_CORRELATED = (0, 0)


@dataclass
class HMMSeries:
    """Padded series with a label per step and the true salient cells.

    Attributes:
        series: float32 ``(n, time, features)``, zeros after each length.
        lengths: int64 ``(n,)``.
        labels: int64 ``(n, time)``, the label of each step (-1 at padding).
        masks: bool ``(n, time, features)``, True at the cell each step's label is drawn
            from (never at padding).
        states: int64 ``(n, time)``, the hidden state (-1 at padding).
        label_probs: float32 ``(n, time)``, the probability each label was drawn with.
        feature_names: one name per feature.

    Example:
        >>> data = hmm_state(4, length=12, seed=0)
        >>> tuple(data.series.shape), int(data.masks.sum())
        ((4, 12, 3), 48)
    """

    series: Tensor
    lengths: Tensor
    labels: Tensor
    masks: Tensor
    states: Tensor
    label_probs: Tensor
    feature_names: list[str]

    def __len__(self) -> int:
        return int(self.series.shape[0])

    @property
    def real(self) -> Tensor:
        """bool ``(n, time)``: True at real (not padded) steps."""
        return torch.arange(self.series.shape[1])[None, :] < self.lengths[:, None]

    def prefixes(self, min_length: int = 1) -> tuple[Tensor, Tensor, Tensor]:
        """Every prefix ``x[:t+1]`` as a padded batch with the label of its last step.

        Args:
            min_length: shortest prefix kept.

        Returns:
            ``(series, lengths, labels)`` with ``n * (number of prefixes)`` rows: what a
            classifier of "the label at step t from x[:t+1]" trains on.

        Example:
            >>> x, lengths, y = hmm_state(2, length=5, seed=0).prefixes(min_length=3)
            >>> x.shape[0], lengths.tolist()[:3]
            (6, [3, 4, 5])
        """
        min_length = _check_int("min_length", min_length, 1)
        rows, lengths = [], []
        for i, n in enumerate(self.lengths.tolist()):
            for t in range(min_length, n + 1):
                rows.append(i)
                lengths.append(t)
        index = torch.tensor(rows, dtype=torch.long)
        lengths_t = torch.tensor(lengths, dtype=torch.long)
        series = self.series[index].clone()
        series[torch.arange(series.shape[1])[None, :] >= lengths_t[:, None]] = 0.0
        return series, lengths_t, self.labels[index, lengths_t - 1]


def _pack(
    signals: list[np.ndarray],
    states: list[np.ndarray],
    important: np.ndarray,
    rng: np.random.Generator,
) -> HMMSeries:
    n, time, features = len(signals), max(len(s) for s in signals), signals[0].shape[1]
    series = torch.zeros(n, time, features)
    labels = torch.full((n, time), -1, dtype=torch.long)
    state_t = torch.full((n, time), -1, dtype=torch.long)
    probs = torch.zeros(n, time)
    masks = torch.zeros(n, time, features, dtype=torch.bool)
    lengths = torch.tensor([len(s) for s in signals], dtype=torch.long)
    for i, (signal, state) in enumerate(zip(signals, states, strict=True)):
        length = len(signal)
        feature = important[state]
        p = 1.0 / (1.0 + np.exp(-2.0 * signal[np.arange(length), feature]))
        y = rng.binomial(1, p)
        series[i, :length] = torch.from_numpy(signal).float()
        labels[i, :length] = torch.from_numpy(y)
        state_t[i, :length] = torch.from_numpy(state)
        probs[i, :length] = torch.from_numpy(p).float()
        masks[i, torch.arange(length), torch.from_numpy(feature)] = True
    names = [f"x{j}" for j in range(features)]
    return HMMSeries(series, lengths, labels, masks, state_t, probs, names)


def _gaussian(states: np.ndarray, means: np.ndarray, chol: np.ndarray, rng) -> np.ndarray:
    noise = rng.standard_normal((len(states), means.shape[1]))
    return means[states] + np.einsum("tij,tj->ti", chol[states], noise)


def hmm_state(
    n: int = 1000,
    length: int | tuple[int, int] = 200,
    *,
    p0: float = 0.5,
    seed: int = 0,
) -> HMMSeries:
    """The HMM "state" data of Tonekaboni et al. 2020 as tint generates it.

    Parameters (tint's defaults, see the module docstring): 3 features, 2 hidden
    states, means ``[0.1, 1.6, 0.5]`` / ``[-0.1, -0.4, -1.5]``, covariance ``0.8 I``,
    important feature 1 / 2, label ``Bernoulli(sigmoid(2 x[t, important]))``. tint
    uses 800 train + 200 test sequences of 200 steps.

    Args:
        n: number of sequences.
        length: steps per sequence, or ``(min, max)`` for variable lengths (padded with
            zeros after each sequence).
        p0: probability that the chain starts in state 1.
        seed: seeds the generator (numpy's ``default_rng``; the draws differ from
            tint's global-RNG ones, the distribution is the same).

    Returns:
        An :class:`HMMSeries`.

    Example:
        >>> data = hmm_state(8, length=(20, 30), seed=1)
        >>> bool((data.masks.sum(-1) == data.real).all())
        True
    """
    n = _check_int("n", n, 1)
    low, high = _check_length(length, 1)
    p0 = _check_float("p0", p0, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    means = np.array(STATE_MEANS)
    chol = []
    for k in range(2):
        cov = np.eye(3) * 0.8
        cov[STATE_IMPORTANT[k], STATE_CORRELATED[k]] = 0.01
        cov[STATE_CORRELATED[k], STATE_IMPORTANT[k]] = 0.01
        chol.append(np.linalg.cholesky(cov + np.eye(3) * 1e-3))
    chol_a = np.stack(chol)
    signals, all_states = [], []
    for _ in range(n):
        steps = int(rng.integers(low, high + 1))
        previous, spent = int(rng.binomial(1, p0)), 0
        state = np.empty(steps, dtype=np.int64)
        for t in range(steps):
            p = 0.95 if previous == 1 else 0.05
            if p > 0.8:
                p -= spent / 500
            current = int(rng.binomial(1, p))
            spent = spent + 1 if current == previous else 0
            state[t] = previous = current
        all_states.append(state)
        signals.append(_gaussian(state, means, chol_a, rng))
    return _pack(signals, all_states, np.array(STATE_IMPORTANT), rng)


def hmm_switch_feature(
    n: int = 1000,
    length: int | tuple[int, int] = 100,
    *,
    stay: float = 0.95,
    shift: float = 1.0,
    seed: int = 0,
) -> HMMSeries:
    """The "switch feature" data of Tonekaboni et al. 2020: the important feature
    follows a three-state hidden chain.

    Parameters: 3 features, 3 states; state ``k`` adds ``shift`` to feature ``k``'s mean
    (the others stay at 0), covariance ``0.8 I``; the chain stays with probability
    ``stay`` and otherwise moves uniformly to another state; the label at step ``t`` is
    ``Bernoulli(sigmoid(2 x[t, k]))``. See the module docstring for the difference from
    FIT's Gaussian-process features.

    Args:
        n: number of sequences.
        length: steps per sequence, or ``(min, max)``.
        stay: probability of staying in the current state.
        shift: mean shift of the important feature.
        seed: seeds the generator.

    Returns:
        An :class:`HMMSeries`.

    Example:
        >>> data = hmm_switch_feature(4, length=10, seed=0)
        >>> set(data.states.flatten().tolist()) <= {0, 1, 2}
        True
    """
    n = _check_int("n", n, 1)
    low, high = _check_length(length, 1)
    stay = _check_float("stay", stay, 0.0, 1.0)
    shift = _check_float("shift", shift, -1e6)
    rng = np.random.default_rng(seed)
    means = np.eye(3) * shift
    chol = np.stack([np.linalg.cholesky(np.eye(3) * 0.8)] * 3)
    signals, all_states = [], []
    for _ in range(n):
        steps = int(rng.integers(low, high + 1))
        state = np.empty(steps, dtype=np.int64)
        current = int(rng.integers(3))
        for t in range(steps):
            if t and rng.random() >= stay:
                current = (current + int(rng.integers(1, 3))) % 3
            state[t] = current
        all_states.append(state)
        signals.append(_gaussian(state, means, chol, rng))
    return _pack(signals, all_states, np.arange(3), rng)
