"""Series counterfactuals: values of the nearest unlike training neighbour, spliced in.

* ``"native_guide"`` (default): the nearest training series the model puts in another
  class (by dynamic time warping, aligned to the input's length: Delaney et al. 2021,
  Native Guide) lends its values cell by cell (time x feature), the cells taken in the
  order of their integrated-gradients attribution with the neighbour as the baseline;
  the fewest first cells that flip the prediction are kept, then every cell that is not
  needed is put back.
* ``"comte"``: whole features (channels) of the neighbour swapped in, fewest first (Ates
  et al. 2021, CoMTE's brute-force search).
* ``"window"``: Native Guide's own splice, a window over all features centred on the most
  attributed steps, grown until the prediction flips (the baseline).

Every changed value comes from a training series, and is clipped to the training range of
its feature in any case.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from captum_rnn._counterfactuals._result import Counterfactual
from captum_rnn.attr import get_method
from captum_rnn.models.protocol import SequenceModel

__all__ = ["SERIES_METHODS", "SeriesSearch", "dtw_distances", "dtw_alignment"]

SERIES_METHODS = ("native_guide", "comte", "window")


def dtw_distances(x: np.ndarray, pool: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Dynamic-time-warping distances from ``x`` ``(T, F)`` to every padded series of
    ``pool`` ``(N, S, F)`` with true ``lengths`` ``(N,)`` (squared Euclidean step cost)."""
    T, S = x.shape[0], pool.shape[1]
    cost = ((x[None, :, None, :] - pool[:, None, :, :]) ** 2).sum(-1)  # (N, T, S)
    D = np.full((pool.shape[0], T, S), np.inf)
    D[:, 0, 0] = cost[:, 0, 0]
    for s in range(1, S):
        D[:, 0, s] = D[:, 0, s - 1] + cost[:, 0, s]
    for t in range(1, T):
        above = np.minimum(D[:, t - 1, :], np.concatenate(
            [np.full((pool.shape[0], 1), np.inf), D[:, t - 1, :-1]], axis=1
        ))  # fmt: skip
        row = D[:, t, :]
        row[:, 0] = above[:, 0] + cost[:, t, 0]
        for s in range(1, S):
            row[:, s] = np.minimum(above[:, s], row[:, s - 1]) + cost[:, t, s]
    return D[np.arange(pool.shape[0]), T - 1, lengths - 1]


def dtw_alignment(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For every step of ``x``, the step of ``y`` the warping path pairs it with (the
    first one when it pairs several)."""
    T, S = x.shape[0], y.shape[0]
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    D = np.full((T + 1, S + 1), np.inf)
    D[0, 0] = 0.0
    for t in range(1, T + 1):
        for s in range(1, S + 1):
            D[t, s] = cost[t - 1, s - 1] + min(D[t - 1, s], D[t, s - 1], D[t - 1, s - 1])
    t, s, pairs = T, S, {}
    while t > 0 and s > 0:
        pairs[t - 1] = s - 1
        moves = (D[t - 1, s - 1], D[t - 1, s], D[t, s - 1])
        step = int(np.argmin(moves))
        t, s = (t - 1, s - 1) if step == 0 else (t - 1, s) if step == 1 else (t, s - 1)
    return np.array([pairs.get(i, 0) for i in range(T)])


class SeriesSearch:
    """Counterfactual search for one series classifier over a training set.

    Args:
        model: the adapted model.
        train: the training series ``(T_i, F)``.
        target: the class to reach, or ``None`` for any class but the predicted one.
        method: one of :data:`SERIES_METHODS`.
        neighbours: unlike neighbours tried, nearest first.
        budget: most candidate series run on the network per input.
        batch_size: most series per forward.
        attribution: the registered attribution method that orders the cells.
        n_steps: integration steps for ``integrated_gradients``.
    """

    def __init__(
        self,
        model: SequenceModel,
        train: Sequence[Tensor],
        *,
        target: int | None,
        method: str,
        neighbours: int,
        budget: int,
        batch_size: int,
        attribution: str = "integrated_gradients",
        n_steps: int = 16,
    ) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        # the model's own precision (a model trained in float64 is called in float64)
        self.dtype = next(
            (p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32
        )
        self.target = target
        self.method = method
        self.neighbours = neighbours
        self.budget = budget
        self.batch_size = batch_size
        self.attribution = attribution
        self.n_steps = n_steps
        self.passes = 0
        self.train = [t.detach().float().cpu() for t in train]
        frames = torch.cat(self.train)
        self.low, self.high = frames.min(0).values, frames.max(0).values
        lengths = np.array([len(t) for t in self.train])
        pool = np.zeros((len(self.train), int(lengths.max()), frames.shape[1]))
        for i, t in enumerate(self.train):
            pool[i, : len(t)] = t.numpy()
        self.pool, self.lengths = pool, lengths
        self.train_predictions = torch.cat(
            [self.predict_list(self.train[i : i + batch_size]) for i in range(0, len(self.train), batch_size)]
        )  # fmt: skip
        self.passes = 0

    # ------------------------------------------------------------------ the network
    def probabilities(self, batch: Tensor) -> Tensor:
        """Class probabilities of same-length series ``(n, T, F)``, in batches."""
        out = []
        for part in batch.split(self.batch_size):
            lengths = torch.full((len(part),), part.shape[1], dtype=torch.long, device=self.device)
            with torch.no_grad():
                out.append(
                    self.model.probabilities(self.model(part.to(self.device, self.dtype), lengths))
                    .float()
                    .cpu()
                )
            self.passes += len(part)
        return torch.cat(out)

    def predict_list(self, series: Sequence[Tensor]) -> Tensor:
        """Predicted classes of series of any lengths (each length run alone: no padding)."""
        out = torch.empty(len(series), dtype=torch.long)
        by_length: dict[int, list[int]] = {}
        for i, s in enumerate(series):
            by_length.setdefault(len(s), []).append(i)
        for rows in by_length.values():
            out[rows] = self.probabilities(torch.stack([series[r] for r in rows])).argmax(-1)
        return out

    def strength(self, probs: Tensor, base: int) -> Tensor:
        """How strongly each row reaches the goal; -inf where it does not."""
        pred = probs.argmax(-1)
        if self.target is not None:
            ok, value = pred == self.target, probs[:, self.target]
        else:
            ok, value = pred != base, 1 - probs[:, base]
        return torch.where(ok, value, torch.full_like(value, -math.inf))

    # ------------------------------------------------------------------ pieces
    def unlike_neighbours(self, x: Tensor, base: int) -> Iterator[Tensor]:
        """The nearest training series of the goal class(es), nearest first, each aligned
        to ``x``'s steps when it is asked for."""
        if self.target is not None:
            allowed = self.train_predictions == self.target
        else:
            allowed = self.train_predictions != base
        index = allowed.nonzero()[:, 0].numpy()
        if len(index) == 0:
            return
        xs = x.double().numpy()
        distances = dtw_distances(xs, self.pool[index], self.lengths[index])
        for i in index[np.argsort(distances, kind="stable")[: self.neighbours]]:
            series = self.pool[i, : self.lengths[i]]
            steps = dtw_alignment(xs, series)
            yield torch.as_tensor(series[steps], dtype=torch.float32)

    def cell_scores(self, x: Tensor, z: Tensor, base: int) -> Tensor:
        """Per cell, how much putting ``z``'s value there moves towards the goal: the
        attribution of ``x`` against the baseline ``z`` (of the base class, or minus that
        of the target class)."""
        method = get_method(self.attribution)(self.model)
        cls = self.target if self.target is not None else base
        options = {"n_steps": self.n_steps, "max_steps": self.n_steps}
        if self.attribution != "integrated_gradients":
            options = {}
        result = method.attribute(
            x[None].to(self.device, self.dtype),
            z[None].to(self.device, self.dtype),
            torch.tensor([cls], device=self.device),
            torch.tensor([len(x)], device=self.device),
            **options,
        )
        self.passes += self.n_steps if self.attribution == "integrated_gradients" else 2
        scores = result.attributions[0].detach().float().cpu()
        return -scores if self.target is not None else scores

    def first_hit(
        self, candidates: Any, count: int, base: int, growing: bool = False
    ) -> tuple[int, Tensor, Tensor] | None:
        """Run ``candidates(rows)`` (a batch for the given row numbers) in order, chunk by
        chunk (chunks of 32, 64, ... rows when ``growing``: early hits cost little); the
        first row that reaches the goal, with its series and probabilities."""
        start, size = 0, min(32, self.batch_size) if growing else self.batch_size
        while start < count:
            if self.passes >= self.budget:
                return None
            rows = list(range(start, min(count, start + size)))
            start += len(rows)
            size = min(2 * size, self.batch_size) if growing else size
            batch = candidates(rows)
            probs = self.probabilities(batch)
            ok = self.strength(probs, base) > -math.inf
            if bool(ok.any()):
                j = int(ok.nonzero()[0])
                return rows[j], batch[j], probs[j]
        return None

    # ------------------------------------------------------------------ methods
    def cells(self, x: Tensor, z: Tensor, base: int) -> tuple[Tensor, Tensor] | None:
        """Native Guide over cells: fewest most-attributed cells of ``z``, then pruned."""
        differ = (z != x).flatten()
        scores = self.cell_scores(x, z, base).flatten()
        order = [int(i) for i in torch.argsort(scores, descending=True, stable=True) if differ[i]]
        flat_x, flat_z = x.flatten(), z.flatten()
        rank = torch.full((x.numel(),), x.numel())
        rank[order] = torch.arange(len(order))

        def prefixes(rows: list[int]) -> Tensor:
            take = rank[None, :] <= torch.tensor(rows)[:, None]
            return torch.where(take, flat_z, flat_x).view(len(rows), *x.shape)

        hit = self.first_hit(prefixes, len(order), base, growing=True)
        if hit is None:
            return None
        k, _, _ = hit
        chosen = order[: k + 1]
        kept = list(chosen)
        for cell in reversed(chosen):  # put back every cell the flip does not need
            if len(kept) == 1 or self.passes >= self.budget:
                break
            trial = [c for c in kept if c != cell]
            candidate = flat_x.clone()
            candidate[trial] = flat_z[trial]
            if bool(
                self.strength(self.probabilities(candidate.view(1, *x.shape)), base)[0] > -math.inf
            ):
                kept = trial
        mask = torch.zeros(x.numel(), dtype=torch.bool)
        mask[kept] = True
        mask = mask.view(x.shape)
        return torch.where(mask, z, x), mask

    def channels(self, x: Tensor, z: Tensor, base: int) -> tuple[Tensor, Tensor] | None:
        """CoMTE: fewest whole features of ``z`` swapped in (all subsets, smallest first)."""
        differ = (z != x).any(0)
        scores = self.cell_scores(x, z, base).sum(0)
        features = [int(f) for f in torch.argsort(scores, descending=True) if differ[f]]
        for size in range(1, len(features) + 1):
            subsets = list(itertools.combinations(features, size))

            def swapped(rows: list[int], subsets: list[tuple[int, ...]] = subsets) -> Tensor:
                out = x.repeat(len(rows), 1, 1)
                for r, row in enumerate(rows):
                    cols = list(subsets[row])
                    out[r][:, cols] = z[:, cols]
                return out

            hit = self.first_hit(swapped, len(subsets), base)
            if hit is not None:
                series = hit[1]
                return series, series != x
            if self.passes >= self.budget:
                return None
        return None

    def window(self, x: Tensor, z: Tensor, base: int) -> tuple[Tensor, Tensor] | None:
        """Native Guide's window: all features over the most attributed steps, grown."""
        steps = self.cell_scores(x, z, base).sum(1)
        T = len(x)
        starts = []
        for width in range(1, T + 1):
            sums = steps.unfold(0, width, 1).sum(1)
            starts.append(int(sums.argmax()))

        def windows(rows: list[int]) -> Tensor:
            out = x.repeat(len(rows), 1, 1)
            for r, row in enumerate(rows):
                a = starts[row]
                out[r, a : a + row + 1] = z[a : a + row + 1]
            return out

        hit = self.first_hit(windows, T, base)
        if hit is None:
            return None
        return hit[1], hit[1] != x

    # ------------------------------------------------------------------ one input
    def run(self, x: Tensor, feature_names: list[str] | None) -> Counterfactual:
        """The counterfactual of one unpadded series ``(T, F)``."""
        self.passes = 0
        probs = self.probabilities(x[None])[0]
        base = int(probs.argmax())
        found = None
        if self.target is None or self.target != base:
            splice = {"native_guide": self.cells, "comte": self.channels, "window": self.window}
            for z in self.unlike_neighbours(x, base):
                found = splice[self.method](x, z, base)
                if found is not None or self.passes >= self.budget:
                    break
        if found is None:
            series, changed = x.clone(), torch.zeros_like(x, dtype=torch.bool)
        else:
            series, changed = found
            # only changed cells are moved into the training range; the others stay x's
            series = torch.where(changed, series.clamp(self.low, self.high), x)
            changed = series != x
        verified = self.probabilities(series[None])[0]
        prediction = int(verified.argmax())
        flipped = bool(self.strength(verified[None], base)[0] > -math.inf)
        return Counterfactual(
            original=x.clone(),
            counterfactual=series,
            flipped=flipped,
            prediction=prediction,
            minimal=None,
            original_prediction=base,
            target=self.target,
            changed=changed,
            method=self.method,
            feature_names=feature_names,
            forward_passes=self.passes,
        )
