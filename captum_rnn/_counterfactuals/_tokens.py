"""Token counterfactuals: the fewest edits of a sequence that change the model's class.

Two searches, both verified on the network in batches:

* **automaton-guided**: with a DFA of the network (extracted by
  :func:`~captum_rnn.rules.extract_dfa` or given), a dynamic programme over (position,
  state) gives the fewest edits that lead the automaton to a state of the other class, and
  enumerates every word reachable with that many edits; these are run on the network.
* **search**: breadth-first over 1, 2, ... edits, positions and replacement tokens ordered by
  a first-order estimate from Captum's ``Saliency`` (HotFlip's ranking), the whole level
  run when it fits the budget (then a counterfactual found at the next level is proven
  minimal), else the best-ranked part of it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from captum.attr import Saliency
from torch import Tensor

from captum_rnn._counterfactuals._result import Counterfactual
from captum_rnn.models.protocol import SequenceModel

__all__ = ["TokenSearch", "automaton_candidates"]

Edit = tuple[int, "int | None", "int | None"]
_OPS = ("substitute", "edit")


class TokenSearch:
    """Counterfactual search for one token classifier (seen through the model contract).

    Args:
        model: the adapted model.
        candidates: replacement token ids (the pad id excluded).
        target: the class to reach, or ``None`` for any class but the predicted one.
        ops: ``"substitute"`` (length kept) or ``"edit"`` (also insert and delete).
        budget: most candidate sequences run on the network per input.
        batch_size: most sequences per forward.
    """

    def __init__(
        self,
        model: SequenceModel,
        candidates: Sequence[int],
        *,
        target: int | None,
        ops: str,
        budget: int,
        batch_size: int,
    ) -> None:
        self.model = model
        self.candidates = [int(c) for c in candidates]
        self.target = target
        self.ops = ops
        self.budget = budget
        self.batch_size = batch_size
        self.passes = 0

    # ------------------------------------------------------------------ the network
    def probabilities(self, batch: list[list[int]]) -> Tensor:
        """Class probabilities of unpadded sequences (grouped by length: no padding)."""
        out = torch.empty(len(batch), 0)
        by_length: dict[int, list[int]] = {}
        for i, seq in enumerate(batch):
            by_length.setdefault(len(seq), []).append(i)
        device = next(self.model.parameters()).device
        for rows in by_length.values():
            for start in range(0, len(rows), self.batch_size):
                part = rows[start : start + self.batch_size]
                ids = torch.tensor([batch[r] for r in part], dtype=torch.long, device=device)
                with torch.no_grad():
                    probs = self.model.probabilities(self.model(ids)).float().cpu()
                if out.shape[1] == 0:
                    out = torch.zeros(len(batch), probs.shape[1])
                out[part] = probs
                self.passes += len(part)
        return out

    def reached(self, probs: Tensor, base: int) -> Tensor:
        """Which rows reach the goal, and how strongly (probability of the goal class,
        or 1 - probability of ``base``); -inf where the goal is not reached."""
        pred = probs.argmax(-1)
        if self.target is not None:
            ok = pred == self.target
            strength = probs[:, self.target]
        else:
            ok = pred != base
            strength = 1 - probs[:, base]
        return torch.where(ok, strength, torch.full_like(strength, -math.inf))

    # ------------------------------------------------------------------ ranking
    def ranking(self, ids: list[int], base: int) -> tuple[list[int], dict[int, list[int]]]:
        """Positions and, per position, replacement tokens best first, by the first-order
        change of the ``base`` class output that swapping the token's embedding makes
        (gradient from Captum's ``Saliency``)."""
        model = self.model
        device = next(model.parameters()).device
        x = torch.tensor([ids], dtype=torch.long, device=device)
        embedded = model.embed(x)
        lengths = torch.tensor([len(ids)], device=device)
        with torch.no_grad():
            width = model(x).shape[-1]
        grad = Saliency(model).attribute(
            embedded.detach().requires_grad_(),
            target=base if width > 1 else 0,
            additional_forward_args=(lengths, x),
            abs=False,
        )[0]
        self.passes += 2
        table = model.embedding.weight.detach()[torch.tensor(self.candidates, device=device)]
        # lowering the base class's output: gain = -(e_new - e_old) . grad
        gain = -(table @ grad.T - (embedded[0] * grad).sum(-1)[None, :])  # (V, T)
        if width == 1 and base == 0:
            gain = -gain  # one logit is the evidence for class 1: raise it
        order = {}
        best = []
        for p in range(len(ids)):
            ranked = torch.argsort(gain[:, p], descending=True).tolist()
            order[p] = [self.candidates[r] for r in ranked if self.candidates[r] != ids[p]]
            best.append(float(gain[:, p].max()))
        positions = sorted(range(len(ids)), key=lambda p: -best[p])
        return positions, order

    # ------------------------------------------------------------------ search
    def slots(self, n: int) -> list[tuple[str, int]]:
        """The places an edit can go: ``("s", p)`` changes token p (substitute or delete),
        ``("i", p)`` inserts before position p."""
        places = [("s", p) for p in range(n)]
        if self.ops == "edit":
            places += [("i", p) for p in range(n + 1)]
        return places

    def level_size(self, n: int, k: int, width: int) -> int:
        """Candidates with exactly ``k`` edits over ``n`` tokens and ``width`` choices."""
        per = width - 1 + (self.ops == "edit")
        if self.ops == "substitute":
            return math.comb(n, k) * per**k
        return sum(
            math.comb(n, j) * per**j * math.comb(n + 1, k - j) * width ** (k - j)
            for j in range(k + 1)
        )

    def level(
        self, ids: list[int], k: int, positions: list[int], order: dict[int, list[int]]
    ) -> Iterator[tuple[list[int], list[Edit]]]:
        """Every sequence ``k`` edits away over ``positions`` (best ranked first)."""
        rank = {p: i for i, p in enumerate(positions)}
        places = sorted(
            [s for s in self.slots(len(ids)) if s[1] in rank or s[0] == "i"],
            key=lambda s: (rank.get(s[1], len(rank)), s[0] == "i"),
        )
        if self.ops == "edit":
            allowed = set(positions) | {len(ids)}
            places = [s for s in places if s[1] in allowed]
        for chosen in itertools.combinations(places, k):
            choices = []
            for kind, p in chosen:
                if kind == "s":
                    opts = list(order[p]) + ([None] if self.ops == "edit" else [])
                else:
                    opts = list(self.candidates)
                choices.append(opts)
            for picked in itertools.product(*choices):
                edits = [
                    (p, ids[p], new) if kind == "s" else (p, None, new)
                    for (kind, p), new in zip(chosen, picked, strict=True)
                ]
                yield apply_edits(ids, edits), edits

    def run_level(
        self, ids: list[int], base: int, generator: Iterator[tuple[list[int], list[Edit]]]
    ) -> tuple[list[int], list[Edit], int] | None:
        """Run candidates in batches; the best hit of the first batch that holds one."""
        while True:
            chunk = list(itertools.islice(generator, self.batch_size))
            if not chunk:
                return None
            probs = self.probabilities([c[0] for c in chunk])
            strength = self.reached(probs, base)
            j = int(strength.argmax())
            if strength[j] > -math.inf:
                return chunk[j][0], chunk[j][1], int(probs[j].argmax())

    def search(
        self,
        ids: list[int],
        base: int,
        max_edits: int,
        ranking: tuple[list[int], dict[int, list[int]]],
        first: int = 1,
    ) -> tuple[tuple[list[int], list[Edit], int] | None, bool]:
        """Breadth-first over ``first .. max_edits`` edits.

        Returns:
            ``(hit or None, exhaustive)``: ``exhaustive`` is True when every level below
            the hit's (every level, without a hit) was run in full.
        """
        positions, order = ranking
        exhaustive = True
        for k in range(first, max_edits + 1):
            left = self.budget - self.passes
            if left <= 0:
                return None, False
            width = len(self.candidates)
            use = list(positions)
            if self.level_size(len(ids), k, width) > left:
                exhaustive_here = False
                while len(use) > k and self.level_size(len(use), k, width) > left:
                    use.pop()
            else:
                exhaustive_here = True
            limited = itertools.islice(self.level(ids, k, use, order), max(left, 0))
            hit = self.run_level(ids, base, limited)
            if hit is not None:
                return hit, exhaustive
            exhaustive = exhaustive and exhaustive_here
        return None, exhaustive

    def prove(
        self, ids: list[int], base: int, size: int, ranking: tuple[list[int], dict[int, list[int]]]
    ) -> tuple[tuple[list[int], list[Edit], int] | None, bool | None]:
        """Check every edit set smaller than ``size`` when the budget allows.

        Returns:
            ``(a smaller hit or None, minimal)``: ``minimal`` is True when all fewer edits
            were run and none flips, ``None`` when the check did not fit the budget.
        """
        width = len(self.candidates)
        need = sum(self.level_size(len(ids), k, width) for k in range(1, size))
        if need > self.budget - self.passes:
            return None, None
        hit, _ = self.search(ids, base, size - 1, ranking)
        return hit, (None if hit is not None else True)


def apply_edits(ids: list[int], edits: list[Edit]) -> list[int]:
    """The sequence ``ids`` after ``edits`` (positions in ``ids``; see :class:`Counterfactual`)."""
    out: list[int] = []
    inserts: dict[int, list[int]] = {}
    changes: dict[int, int | None] = {}
    for pos, old, new in edits:
        if old is None:
            inserts.setdefault(pos, []).append(int(new))  # type: ignore[arg-type]
        else:
            changes[pos] = new
    for p in range(len(ids) + 1):
        out.extend(inserts.get(p, ()))
        if p < len(ids):
            new = changes.get(p, ids[p])
            if new is not None:
                out.append(int(new))
    return out


def automaton_candidates(
    transitions: np.ndarray,
    start: int,
    goal: np.ndarray,
    word: list[int],
    symbols: list[int],
    ops: str,
    limit: int,
    max_cost: int | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[int | None, list[list[Edit]]]:
    """The fewest edits that take an automaton from ``start`` over ``word`` to a goal state,
    and up to ``limit`` edit lists of that cost (distinct results).

    Args:
        transitions: ``(states, symbols)`` next-state table.
        start: the start state.
        goal: ``(states,)`` boolean: the states of the class to reach.
        word: the input as symbol indices.
        symbols: the token id of each symbol (for the edits).
        ops: ``"substitute"`` or ``"edit"`` (insertions and deletions too).
        limit: most edit lists returned.
        max_cost: give up above this many edits.
        allowed: ``(symbols,)`` boolean: the symbols an edit may write (default all); the
            word's own symbols are read whatever this says.

    Returns:
        ``(cost or None when unreachable, edit lists)``.
    """
    n_states, n_symbols = transitions.shape
    T = len(word)
    inf = np.iinfo(np.int64).max // 4
    writable = np.ones(n_symbols, dtype=bool) if allowed is None else np.asarray(allowed, bool)
    insert_cost = np.where(writable, 1, inf)
    to_go = np.full((T + 1, n_states), inf, dtype=np.int64)
    to_go[T][goal] = 0

    def relax_inserts(row: np.ndarray) -> None:
        for _ in range(n_states):  # shortest insertion paths inside one position
            best = (row[transitions] + insert_cost[None, :]).min(axis=1)
            better = best < row
            if not better.any():
                return
            row[better] = best[better]

    if ops == "edit":
        relax_inserts(to_go[T])
    for t in range(T - 1, -1, -1):
        cost = insert_cost.copy()
        cost[word[t]] = 0
        row = (to_go[t + 1][transitions] + cost[None, :]).min(axis=1)
        if ops == "edit":
            row = np.minimum(row, to_go[t + 1] + 1)
            relax_inserts(row)
        to_go[t] = np.minimum(row, inf)  # unreachable stays "inf" (no overflow)
    best = int(to_go[0][start])
    if best >= inf or (max_cost is not None and best > max_cost):
        return None, []
    found: list[list[Edit]] = []
    seen: set[tuple[int, ...]] = set()
    original = [symbols[s] for s in word]

    def walk(t: int, q: int, spent: int, edits: list[Edit]) -> None:
        if len(found) >= limit:
            return
        if t == T and goal[q] and spent == best:
            result = tuple(apply_edits(original, edits))
            if result not in seen:
                seen.add(result)
                found.append(list(edits))
        if ops == "edit":  # insert before position t
            for a in range(n_symbols):
                r = transitions[q, a]
                if writable[a] and spent + 1 + to_go[t][r] <= best:
                    walk(t, r, spent + 1, [*edits, (t, None, symbols[a])])
        if t == T:
            return
        for a in range(n_symbols):
            r = transitions[q, a]
            step = 0 if a == word[t] else 1
            if (step == 0 or writable[a]) and spent + step + to_go[t + 1][r] <= best:
                change = [] if step == 0 else [(t, original[t], symbols[a])]
                walk(t + 1, r, spent + step, edits + change)
        if ops == "edit" and spent + 1 + to_go[t + 1][q] <= best:
            walk(t + 1, q, spent + 1, [*edits, (t, original[t], None)])

    walk(0, start, 0, [])
    return best, found


def build(
    search: TokenSearch,
    ids: list[int],
    base: int,
    hit: tuple[list[int], list[Edit], int] | None,
    minimal: bool | None,
    method: str,
    names: Any,
) -> Counterfactual:
    """A :class:`Counterfactual` from a verified hit (or the unchanged input)."""
    original = torch.tensor(ids, dtype=torch.long)
    if hit is None:
        seq, edits, pred, flipped = list(ids), [], base, False
    else:
        seq, edits, pred = hit
        flipped = True
    return Counterfactual(
        original=original,
        counterfactual=torch.tensor(seq, dtype=torch.long),
        edits=sorted(edits, key=lambda e: (e[0], e[1] is not None)),
        flipped=flipped,
        prediction=pred,
        minimal=minimal if flipped else None,
        original_prediction=base,
        target=search.target,
        method=method,
        tokens=names(ids) if names else None,
        counterfactual_tokens=names(seq) if names else None,
        forward_passes=search.passes,
    )
