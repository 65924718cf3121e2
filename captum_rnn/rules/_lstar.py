"""Angluin's L* with batched membership queries and pluggable equivalence oracles.

The observation table follows Maler and Pnueli: a counterexample adds all its suffixes
as experiments, so the access strings always have distinct rows and the table never
needs a consistency check. Every fill of the table sends all its missing entries to the
membership oracle in one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from captum_rnn.rules._dfa import DFA
from captum_rnn.rules._oracle import MembershipOracle

__all__ = ["Budget", "BudgetExceeded", "LStarResult", "ObservationTable", "lstar"]

Indices = tuple[int, ...]


class BudgetExceeded(Exception):
    """Raised inside the learner when its time budget is spent."""


class Budget:
    """Caps on wall-clock time, hypothesis size and equivalence rounds."""

    def __init__(self, time_limit: float, max_states: int, max_rounds: int) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + time_limit
        self.max_states = max_states
        self.max_rounds = max_rounds

    def expired(self) -> bool:
        return time.perf_counter() > self.deadline

    def check(self) -> None:
        if self.expired():
            raise BudgetExceeded

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


class ObservationTable:
    """L*'s table: access strings ``S`` (rows), experiments ``E`` (columns)."""

    def __init__(self, oracle: MembershipOracle, alphabet: Sequence[object]) -> None:
        self.oracle = oracle
        self.alphabet = tuple(alphabet)
        self.k = len(self.alphabet)
        self.S: list[Indices] = [()]
        self.E: list[Indices] = [()]
        self._E_set = {()}
        self.T: dict[Indices, bool] = {}

    #: most words a fill asks ahead for the rows one symbol further (see :meth:`fill`)
    lookahead = 64

    def fill(self, extra: Sequence[Indices] = ()) -> None:
        """Ask the oracle, in one batch, for every missing cell (and, while the batch is
        small, the rows a closing may need next, and ``extra`` words of the caller's)."""
        T, E, k = self.T, self.E, self.k
        need = []
        for s in self.S:
            for prefix in (s, *(s + (a,) for a in range(k))):
                for e in E:
                    w = prefix + e
                    if w not in T:
                        need.append(w)
        if need:
            # Closing the table promotes rows s + a into S, whose own successors then
            # need a fresh network call, and so on for their successors. While the table
            # is small, ask for the rows of those successors, level after level, in the
            # same call: one batched call costs little more than a tiny one.
            level = [s + (a,) for s in self.S for a in range(k)]
            while True:
                level = [p + (b,) for p in level for b in range(k)]
                ahead = [w for p in level for e in E if (w := p + e) not in T]
                if len(need) + len(ahead) > self.lookahead:
                    break
                need.extend(ahead)
            need = list(dict.fromkeys(need))
            answers = self.oracle.labels(need + list(extra))[: len(need)].tolist()
            T.update(zip(need, answers, strict=True))

    def row(self, s: Indices) -> tuple[bool, ...]:
        T = self.T
        return tuple(T[s + e] for e in self.E)

    def close(self, budget: Budget, extra: Sequence[Indices] = ()) -> bool:
        """Fill and close the table; False when closing would pass ``max_states``.
        ``extra`` words go to the oracle with the first fill."""
        while True:
            self.fill(extra)
            extra = ()
            rows = {}
            for s in self.S:
                rows.setdefault(self.row(s), s)
            new, seen = [], set()
            for s in self.S:
                for a in range(self.k):
                    t = s + (a,)
                    r = self.row(t)
                    if r not in rows and r not in seen:
                        seen.add(r)
                        new.append(t)
            if not new:
                return True
            if len(self.S) + len(new) > budget.max_states:
                return False
            self.S.extend(new)
            budget.check()

    def hypothesis(self) -> DFA:
        """The automaton of the (filled) table; an unclosed row goes to the nearest row."""
        rows = [self.row(s) for s in self.S]
        index: dict[tuple[bool, ...], int] = {}
        for i, r in enumerate(rows):
            index.setdefault(r, i)
        table = []
        for s in self.S:
            out = []
            for a in range(self.k):
                r = self.row(s + (a,))
                j = index.get(r)
                if j is None:
                    j = min(
                        range(len(rows)),
                        key=lambda i: sum(x != y for x, y in zip(rows[i], r, strict=True)),
                    )
                out.append(j)
            table.append(out)
        accepting = {i for i, s in enumerate(self.S) if self.T[s]}
        chars = all(isinstance(x, str) and len(x) == 1 for x in self.alphabet)
        names = [
            ("".join(self.alphabet[a] for a in s) if chars else " ".join(map(str, s))) or "ε"
            for s in self.S
        ]
        return DFA(self.alphabet, table, accepting, 0, names)

    def add_counterexample(self, word: Indices) -> None:
        for i in range(len(word) - 1, -1, -1):
            suffix = word[i:]
            if suffix not in self._E_set:
                self._E_set.add(suffix)
                self.E.append(suffix)


@dataclass
class LStarResult:
    dfa: DFA
    rounds: int
    converged: bool
    stopped_by: str
    hypotheses: list[DFA] = field(default_factory=list)


def lstar(
    oracle: MembershipOracle,
    equivalences: Sequence[Callable[[DFA], Indices | None]],
    budget: Budget,
    score: Callable[[DFA], float] | None = None,
) -> LStarResult:
    """Learn a DFA of the oracle's language.

    Args:
        oracle: answers membership queries in batches.
        equivalences: equivalence oracles tried in order; each returns a
            counterexample (a word the hypothesis gets wrong) or ``None``.
        budget: time, state and round caps.
        score: rates hypotheses (higher is better) to pick the best one when a cap
            stops the learner before an equivalence query accepts.

    Returns:
        The final (converged) or best hypothesis and how the run ended.
    """
    table = ObservationTable(oracle, oracle.alphabet)
    hypotheses: list[DFA] = []
    rounds, converged, stopped_by = 0, False, "equivalence"
    try:
        while True:
            # words the first equivalence oracle will test whatever the hypothesis is
            # ride along with the table's own queries: one network call instead of two
            first = equivalences[0] if equivalences else None
            closed = table.close(budget, getattr(first, "prefetch", list)())
            hypothesis = table.hypothesis()
            if not closed:
                stopped_by = "max_states"
                if not hypotheses:
                    hypotheses.append(hypothesis)
                break
            hypotheses.append(hypothesis)
            if rounds >= budget.max_rounds:
                stopped_by = "max_rounds"
                break
            budget.check()
            rounds += 1
            counterexample = None
            for equivalence in equivalences:
                counterexample = equivalence(hypothesis)
                if counterexample is not None:
                    break
            if counterexample is None:
                converged = True
                break
            table.add_counterexample(counterexample)
    except BudgetExceeded:
        stopped_by = "time"
        if not hypotheses:
            table.fill()
            hypotheses.append(table.hypothesis())
    if converged or score is None or len(hypotheses) == 1:
        best = hypotheses[-1]
    else:
        # highest score, then fewest states, then the latest
        ranked = sorted(
            range(len(hypotheses)),
            key=lambda i: (-score(hypotheses[i]), hypotheses[i].num_states, -i),
        )
        best = hypotheses[ranked[0]]
    return LStarResult(best, rounds, converged, stopped_by, hypotheses)
