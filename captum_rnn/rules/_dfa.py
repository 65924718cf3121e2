"""A complete deterministic finite automaton over a finite alphabet of symbols."""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from captum_rnn._utils.files import atomic_write_text
from captum_rnn._utils.jsonio import load_json
from captum_rnn.rules._minimize import canonical_order, hopcroft

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["DFA", "Word"]

_FORMAT = "captum_rnn.DFA"
_VERSION = 1

#: A word over a DFA's alphabet: a ``str`` when every symbol is a one-character
#: string, else a tuple of symbols.
Word = str | tuple


class DFA:
    """A complete deterministic finite automaton.

    States are the integers ``0 .. num_states - 1``. Every state has a transition on
    every symbol (add a sink state for a partial automaton).

    Args:
        alphabet: the symbols, in a fixed order; a string such as ``"01"`` means its
            characters. Symbols must be hashable, distinct, and (for :meth:`save`) JSON
            strings or ints.
        transitions: ``transitions[q][a]`` is the state reached from ``q`` on the
            ``a``-th symbol; or a mapping ``{q: {symbol: next_state}}``.
        accepting: the accepting states.
        start: the start state.
        state_names: optional display names, one per state (used by :meth:`to_dot`
            and :meth:`plot`).

    Words: a word is any iterable of symbols. When every symbol is a one-character
    string, words are returned as ``str`` (``"0110"``), otherwise as tuples.

    Example:
        >>> even_ones = DFA("01", [[0, 1], [1, 0]], accepting={0})
        >>> even_ones.accepts("0110"), even_ones.accepts("010")
        (True, False)
        >>> even_ones.equivalent(DFA("01", [[0, 0]], accepting={0}))
        '1'
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        alphabet: Iterable[Any],
        transitions: Sequence[Sequence[int]] | Mapping[int, Mapping[Any, int]],
        accepting: Iterable[int],
        start: int = 0,
        state_names: Sequence[str] | None = None,
    ) -> None:
        symbols = tuple(alphabet)
        if not symbols:
            raise ValueError("alphabet must hold at least one symbol")
        try:
            index = {s: i for i, s in enumerate(symbols)}
        except TypeError:
            raise TypeError("alphabet symbols must be hashable") from None
        if len(index) != len(symbols):
            raise ValueError(f"alphabet holds duplicate symbols: {symbols!r}")
        self._alphabet = symbols
        self._index = index
        self._chars = all(isinstance(s, str) and len(s) == 1 for s in symbols)
        k = len(symbols)

        if isinstance(transitions, Mapping):
            n = len(transitions)
            if sorted(transitions) != list(range(n)):
                raise ValueError("transitions mapping keys must be the states 0 .. n-1")
            rows = []
            for q in range(n):
                row = transitions[q]
                missing = [s for s in symbols if s not in row]
                if missing:
                    raise ValueError(
                        f"transitions[{q}] has no move on {missing[0]!r}; a DFA must be "
                        "complete (add a sink state)"
                    )
                rows.append([row[s] for s in symbols])
        else:
            rows = [list(row) for row in transitions]
        n = len(rows)
        if n == 0:
            raise ValueError("transitions must describe at least one state")
        table = np.zeros((n, k), dtype=np.int64)
        for q, row in enumerate(rows):
            if len(row) != k:
                raise ValueError(
                    f"transitions[{q}] has {len(row)} entries, expected one per symbol ({k})"
                )
            for a, r in enumerate(row):
                if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r < n:
                    raise ValueError(f"transitions[{q}][{a}] = {r!r} is not a state in [0, {n})")
                table[q, a] = int(r)
        self._table = table
        self._rows = tuple(tuple(int(r) for r in row) for row in table)
        acc = set()
        for q in accepting:
            if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 0 <= q < n:
                raise ValueError(f"accepting state {q!r} is not a state in [0, {n})")
            acc.add(int(q))
        self._accepting = frozenset(acc)
        self._accept_mask = np.zeros(n, dtype=bool)
        self._accept_mask[list(acc)] = True
        if (
            isinstance(start, bool)
            or not isinstance(start, (int, np.integer))
            or not 0 <= start < n
        ):
            raise ValueError(f"start = {start!r} is not a state in [0, {n})")
        self._start = int(start)
        if state_names is not None:
            names = [str(s) for s in state_names]
            if len(names) != n:
                raise ValueError(f"state_names has {len(names)} names for {n} states")
            self._names: tuple[str, ...] | None = tuple(names)
        else:
            self._names = None
        #: the extraction report, set by :func:`~captum_rnn.rules.extract_dfa`
        self.report: Any = None
        # word counts per (max_length, accepted), for sampling (the DFA is immutable)
        self._counts: dict[tuple[int, bool], list[list[int]]] = {}

    # ------------------------------------------------------------------ structure
    @property
    def alphabet(self) -> tuple[Any, ...]:
        """The symbols, in order."""
        return self._alphabet

    @property
    def num_states(self) -> int:
        """Number of states."""
        return len(self._rows)

    @property
    def states(self) -> range:
        """The states ``0 .. num_states - 1``."""
        return range(len(self._rows))

    @property
    def transitions(self) -> tuple[tuple[int, ...], ...]:
        """``transitions[q][a]``: the successor of ``q`` on the ``a``-th symbol."""
        return self._rows

    @property
    def accepting(self) -> frozenset[int]:
        """The accepting states."""
        return self._accepting

    @property
    def start(self) -> int:
        """The start state."""
        return self._start

    @property
    def state_names(self) -> tuple[str, ...]:
        """Display names of the states (their numbers unless names were given)."""
        return self._names if self._names is not None else tuple(str(q) for q in self.states)

    def __eq__(self, other: object) -> bool:
        """Structural equality (same alphabet, table, accepting set and start)."""
        if not isinstance(other, DFA):
            return NotImplemented
        return (
            self._alphabet == other._alphabet
            and self._rows == other._rows
            and self._accepting == other._accepting
            and self._start == other._start
        )

    def __repr__(self) -> str:
        return (
            f"DFA(num_states={self.num_states}, alphabet={list(self._alphabet)!r}, "
            f"accepting={sorted(self._accepting)})"
        )

    # ------------------------------------------------------------------ words
    def encode(self, sequence: Iterable[Any], name: str = "sequence") -> list[int]:
        """Map a word to symbol indices.

        Raises:
            ValueError: naming ``name`` when a symbol is not in the alphabet.
        """
        if isinstance(sequence, (bytes, bytearray)) or not isinstance(sequence, Iterable):
            raise TypeError(f"{name} must be an iterable of symbols, got {type(sequence).__name__}")
        out = []
        get = self._index.get
        for position, symbol in enumerate(sequence):
            try:
                a = get(symbol)
            except TypeError:
                a = None
            if a is None:
                raise ValueError(
                    f"{name}[{position}] = {symbol!r} is not in the alphabet {list(self._alphabet)!r}"
                )
            out.append(a)
        return out

    def word(self, indices: Iterable[int]) -> Word:
        """The word made of the symbols at ``indices`` (a str for one-character symbols)."""
        symbols = tuple(self._alphabet[a] for a in indices)
        return "".join(symbols) if self._chars else symbols

    def step(self, state: int, symbol: Any) -> int:
        """The state reached from ``state`` on ``symbol``."""
        if symbol not in self._index:
            raise ValueError(f"symbol {symbol!r} is not in the alphabet {list(self._alphabet)!r}")
        return self._rows[state][self._index[symbol]]

    def run(self, sequence: Iterable[Any], state: int | None = None) -> int:
        """The state reached after reading ``sequence`` from ``state`` (default: start)."""
        q = self._start if state is None else state
        rows = self._rows
        for a in self.encode(sequence):
            q = rows[q][a]
        return q

    def accepts(self, sequence: Iterable[Any]) -> bool:
        """True if the automaton accepts ``sequence``.

        Example:
            >>> DFA("ab", [[1, 0], [1, 0]], accepting={1}).accepts("aba")
            True
        """
        return self.run(sequence) in self._accepting

    def accepts_batch(self, sequences: Iterable[Iterable[Any]]) -> np.ndarray:
        """Accept/reject many words at once (vectorised over words).

        Returns:
            A boolean array, one entry per word.
        """
        encoded = [self.encode(s, f"sequences[{i}]") for i, s in enumerate(sequences)]
        return self._accepts_indices(encoded)

    def _accepts_indices(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        n = len(encoded)
        if n == 0:
            return np.zeros(0, dtype=bool)
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n)
        width = int(lengths.max())
        sym = np.zeros((n, max(width, 1)), dtype=np.int64)
        if width:
            flat = np.fromiter(
                itertools.chain.from_iterable(encoded), dtype=np.int64, count=int(lengths.sum())
            )
            sym[np.arange(sym.shape[1])[None, :] < lengths[:, None]] = flat
        state = np.full(n, self._start, dtype=np.int64)
        for t in range(width):
            alive = lengths > t
            state = np.where(alive, self._table[state, sym[:, t]], state)
        return self._accept_mask[state]

    # ------------------------------------------------------------------ algorithms
    def minimize(self) -> DFA:
        """The minimal equivalent DFA (Hopcroft's algorithm).

        Unreachable states are dropped and states are renumbered in breadth-first order
        from the start, so two minimal DFAs of one language over the same alphabet
        order compare equal with ``==``.

        Example:
            >>> DFA("01", [[1, 1], [0, 0]], accepting={0, 1}).minimize().num_states
            1
        """
        table, accepting = hopcroft(self._rows, self._accepting, self._start)
        return DFA(self._alphabet, table, accepting)

    def complement(self) -> DFA:
        """The DFA accepting exactly the words this one rejects."""
        return DFA(
            self._alphabet,
            self._rows,
            set(self.states) - self._accepting,
            self._start,
            self._names,
        )

    def relabel(self) -> DFA:
        """The reachable part with states renumbered breadth-first from the start."""
        table, accepting = canonical_order(self._rows, self._accepting, self._start)
        return DFA(self._alphabet, table, accepting)

    def equivalent(self, other: DFA) -> Word | None:
        """A shortest word on which the two automata disagree, or ``None`` if equivalent.

        Args:
            other: a DFA over the same set of symbols (their order may differ).

        Returns:
            A shortest distinguishing word (the first in breadth-first order over this
            DFA's alphabet order), or ``None`` when both accept the same language.

        Raises:
            ValueError: if the alphabets hold different symbols.

        Example:
            >>> a = DFA("01", [[0, 1], [1, 0]], accepting={0})
            >>> a.equivalent(a.minimize()) is None
            True
        """
        if not isinstance(other, DFA):
            raise TypeError(f"other must be a DFA, got {type(other).__name__}")
        if set(self._alphabet) != set(other._alphabet):
            raise ValueError(
                f"other has alphabet {list(other._alphabet)!r}, this DFA has "
                f"{list(self._alphabet)!r}"
            )
        perm = [other._index[s] for s in self._alphabet]
        start = (self._start, other._start)
        parent: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {start: None}
        queue = deque([start])
        while queue:
            pair = queue.popleft()
            p, q = pair
            if (p in self._accepting) != (q in other._accepting):
                letters = []
                node = pair
                while parent[node] is not None:
                    node, a = parent[node]  # type: ignore[misc]
                    letters.append(a)
                return self.word(reversed(letters))
            for a in range(len(self._alphabet)):
                nxt = (self._rows[p][a], other._rows[q][perm[a]])
                if nxt not in parent:
                    parent[nxt] = (pair, a)
                    queue.append(nxt)
        return None

    def distinguishing_suffix(self, p: int, q: int) -> Word | None:
        """A shortest word accepted from exactly one of the states ``p`` and ``q``."""
        return DFA(self._alphabet, self._rows, self._accepting, p).equivalent(
            DFA(self._alphabet, self._rows, self._accepting, q)
        )

    def _access_words(self) -> dict[int, tuple[int, ...]]:
        """A shortest word (symbol indices) reaching each reachable state, the first in
        breadth-first order."""
        access: dict[int, tuple[int, ...]] = {self._start: ()}
        queue = deque([self._start])
        while queue:
            q = queue.popleft()
            for a, nxt in enumerate(self._rows[q]):
                if nxt not in access:
                    access[nxt] = access[q] + (a,)
                    queue.append(nxt)
        return access

    def _separating_suffixes(self) -> list[tuple[int, ...]]:
        """A characterization set: for every pair of inequivalent states, a shortest
        word (symbol indices) accepted from exactly one of them; the empty word first.

        All pairs are solved together, shortest suffixes first (pairs told apart by
        acceptance, then by one symbol into a pair already told apart, ...), so the
        cost is about ``num_states ** 2 * len(alphabet)`` per suffix length.
        """
        n, k = self.num_states, len(self._alphabet)
        table, accept = self._table, self._accept_mask
        p, q = np.triu_indices(n, 1)
        # first[i], follow[i]: the suffix of pair i is symbol first[i] then the suffix
        # of pair follow[i]; -1 while the pair is not told apart (-2: told by acceptance)
        first = np.where(accept[p] != accept[q], -2, -1)
        follow = np.full(p.size, -1)
        index = np.full((n, n), -1)
        index[p, q] = np.arange(p.size)
        index[q, p] = np.arange(p.size)
        while True:
            told = first != -1  # pairs told apart by shorter suffixes
            todo = np.nonzero(~told)[0]
            found = False
            for a in range(k):
                if not todo.size:
                    break
                nxt = index[table[p[todo], a], table[q[todo], a]]
                done = (nxt >= 0) & told[np.maximum(nxt, 0)]
                if done.any():
                    first[todo[done]], follow[todo[done]] = a, nxt[done]
                    todo, found = todo[~done], True
            if not found:
                break
        suffixes: dict[tuple[int, ...], None] = {(): None}
        cache: dict[int, tuple[int, ...]] = {}

        def suffix(i: int) -> tuple[int, ...]:
            if i not in cache:
                cache[i] = () if first[i] == -2 else (int(first[i]), *suffix(int(follow[i])))
            return cache[i]

        for i in np.nonzero(first != -1)[0].tolist():
            suffixes.setdefault(suffix(i))
        return list(suffixes)

    # ------------------------------------------------------------------ sampling
    def count_words(self, max_length: int, accepted: bool = True) -> list[list[int]]:
        """``counts[L][q]``: words of length ``L`` leading from ``q`` to an accepting
        (``accepted=True``) or rejecting state, for ``L`` in ``0 .. max_length``."""
        return [list(row) for row in self._count_words(max_length, accepted)]

    def _count_words(self, max_length: int, accepted: bool) -> list[list[int]]:
        key = (max_length, bool(accepted))
        cached = self._counts.get(key)
        if cached is not None:
            return cached
        target = [(q in self._accepting) == accepted for q in self.states]
        if len(self._alphabet) ** max_length < 2**62:  # every count fits in int64
            C = np.zeros((max_length + 1, self.num_states), dtype=np.int64)
            C[0] = target
            for L in range(1, max_length + 1):
                C[L] = C[L - 1][self._table].sum(axis=1)
            counts = C.tolist()
        else:
            counts = [[int(t) for t in target]]
            for _ in range(max_length):
                prev = counts[-1]
                counts.append([sum(prev[r] for r in row) for row in self._rows])
        self._counts[key] = counts
        return counts

    def sample(
        self,
        n: int,
        min_length: int = 1,
        max_length: int = 20,
        balanced: bool = True,
        seed: int | random.Random = 0,
    ) -> tuple[list[Word], list[int]]:
        """Draw labelled words; class-balanced by this automaton's own labels.

        With ``balanced=True`` half the words are accepted and half rejected; each
        class spreads its words evenly over the lengths in ``[min_length, max_length]``
        where it has words, uniformly among the words of that class and length. A class
        with no word in the range gets none (the other class fills up). With
        ``balanced=False`` lengths and symbols are uniform.

        Args:
            n: number of words.
            min_length: shortest length.
            max_length: longest length.
            balanced: sample class-balanced.
            seed: an int seed or a :class:`random.Random`.

        Returns:
            ``(words, labels)`` with labels 1 (accepted) or 0, shuffled.

        Example:
            >>> words, labels = DFA("01", [[1, 0], [1, 1]], accepting={0}).sample(4, seed=1)
            >>> sum(labels), all(set(w) == {"1"} for w, y in zip(words, labels) if y)
            (2, True)
        """
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        if n < 0 or min_length < 0 or max_length < min_length:
            raise ValueError(
                f"need n >= 0 and 0 <= min_length <= max_length, got n={n}, "
                f"min_length={min_length}, max_length={max_length}"
            )
        words, labels = self._sample_indices(n, min_length, max_length, balanced, rng)
        return [self.word(w) for w in words], labels

    def _sample_indices(
        self,
        n: int,
        min_length: int,
        max_length: int,
        balanced: bool,
        rng: random.Random,
        labels: bool = True,
    ) -> tuple[list[list[int]], list[int]]:
        k = len(self._alphabet)
        gen = np.random.default_rng(rng.getrandbits(63))
        if not balanced:
            lengths = gen.integers(min_length, max_length + 1, size=n)
            symbols = gen.integers(0, k, size=(n, max_length))
            out = [
                row[:length].tolist() for row, length in zip(symbols, lengths.tolist(), strict=True)
            ]
            return out, ([int(y) for y in self._accepts_indices(out)] if labels else [])
        pools = []
        for label in (1, 0):
            counts = self._count_words(max_length, bool(label))
            lengths = [L for L in range(min_length, max_length + 1) if counts[L][self._start] > 0]
            pools.append((label, counts, lengths))
        wanted = {1: n // 2, 0: n - n // 2}
        if not pools[0][2]:
            wanted = {1: 0, 0: n}
        elif not pools[1][2]:
            wanted = {1: n, 0: 0}
        examples: list[tuple[list[int], int]] = []
        for label, counts, lengths in pools:
            m = wanted[label]
            if m:
                spread = [lengths[(i * len(lengths)) // m] for i in range(m)]
                examples.extend((w, label) for w in self._draw(counts, spread, gen, rng))
        order = gen.permutation(len(examples)).tolist()
        return [examples[i][0] for i in order], [examples[i][1] for i in order]

    def _draw(
        self,
        counts: list[list[int]],
        lengths: list[int],
        gen: np.random.Generator,
        rng: random.Random,
    ) -> list[list[int]]:
        """One word per entry of ``lengths``, uniform among the words ``counts`` counts."""
        longest = max(lengths)
        if len(self._alphabet) ** longest < 2**62 and len(lengths) * longest <= 4096:
            # few words: a plain loop with bisection beats many small numpy calls
            rows = self._rows
            cum = [
                [list(itertools.accumulate(counts[R][nxt] for nxt in row)) for row in rows]
                for R in range(longest)
            ]
            firsts = np.array([counts[L][self._start] for L in lengths], dtype=np.int64)
            words = []
            for length, r in zip(lengths, gen.integers(0, firsts).tolist(), strict=True):
                q, word = self._start, []
                for R in range(length - 1, -1, -1):
                    c = cum[R][q]
                    a = bisect.bisect_right(c, r)
                    if a:
                        r -= c[a - 1]
                    word.append(a)
                    q = rows[q][a]
                words.append(word)
            return words
        if len(self._alphabet) ** longest < 2**62:  # every count fits in int64: vectorise
            table = self._table
            C = np.array(counts[: longest + 1], dtype=np.int64)
            L = np.array(lengths, dtype=np.int64)
            m = len(lengths)
            q = np.full(m, self._start, dtype=np.int64)
            r = gen.integers(0, C[L, self._start])
            out = np.zeros((m, longest), dtype=np.int64)
            rows = np.arange(m)
            for pos in range(longest):
                active = L > pos
                remaining = np.where(active, L - pos - 1, 0)
                cum = np.cumsum(C[remaining[:, None], table[q]], axis=1)
                a = np.where(active, (r[:, None] >= cum).sum(axis=1), 0)
                r = r - np.where(active & (a > 0), cum[rows, np.maximum(a - 1, 0)], 0)
                out[:, pos] = a
                q = np.where(active, table[q, a], q)
            return [row[:n].tolist() for row, n in zip(out, lengths, strict=True)]
        words = []
        for length in lengths:  # exact big-integer path for very long words
            q, word = self._start, []
            r = rng.randrange(counts[length][q])
            for remaining in range(length, 0, -1):
                for a, nxt in enumerate(self._rows[q]):
                    c = counts[remaining - 1][nxt]
                    if r < c:
                        word.append(a)
                        q = nxt
                        break
                    r -= c
            words.append(word)
        return words

    # ------------------------------------------------------------------ output
    def to_dot(self, name: str = "dfa") -> str:
        """The automaton in Graphviz DOT (no graphviz needed to produce it).

        Parallel edges are merged into one edge labelled with all their symbols.

        Example:
            >>> print(DFA("01", [[0, 0]], accepting={0}).to_dot())  # doctest: +ELLIPSIS
            digraph "dfa" {...
        """
        lines = [f"digraph {_dot_quote(name)} {{", "  rankdir=LR;", "  node [shape=circle];"]
        lines.append('  "__start" [shape=point, label=""];')
        lines.append(f'  "__start" -> "q{self._start}";')
        names = self.state_names
        for q in self.states:
            shape = "doublecircle" if q in self._accepting else "circle"
            lines.append(f'  "q{q}" [label={_dot_quote(names[q])}, shape={shape}];')
        for (p, r), symbols in self.edges().items():
            label = ",".join(str(s) for s in symbols)
            lines.append(f'  "q{p}" -> "q{r}" [label={_dot_quote(label)}];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def edges(self) -> dict[tuple[int, int], list[Any]]:
        """``{(source, target): [symbols]}`` with parallel transitions merged."""
        out: dict[tuple[int, int], list[Any]] = {}
        for p in self.states:
            for a, r in enumerate(self._rows[p]):
                out.setdefault((p, r), []).append(self._alphabet[a])
        return out

    def plot(self, ax: Axes | None = None, title: str | None = None) -> Figure:
        """Draw the state diagram with matplotlib (no graphviz).

        States are laid out in columns by their distance from the start; accepting
        states have a double ring; the start state has an incoming arrow; parallel
        transitions share one arrow labelled with all their symbols.

        Args:
            ax: an Axes to draw into; a new :class:`~matplotlib.figure.Figure` otherwise.
            title: optional title.

        Returns:
            The figure drawn into.

        Example:
            >>> fig = DFA("01", [[1, 0], [1, 1]], accepting={0}).plot(title="1*")
        """
        from captum_rnn.rules._plot import plot_dfa

        return plot_dfa(self, ax=ax, title=title)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the automaton."""
        for s in self._alphabet:
            if isinstance(s, bool) or not isinstance(s, (str, int)):
                raise TypeError(f"only str or int symbols can be saved, got {s!r}")
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "alphabet": list(self._alphabet),
            "transitions": [list(row) for row in self._rows],
            "accepting": sorted(self._accepting),
            "start": self._start,
            "state_names": list(self._names) if self._names is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DFA:
        """Rebuild a DFA from :meth:`to_dict` output, validating it.

        Raises:
            ValueError: if ``data`` is not a valid DFA description.
        """
        if not isinstance(data, dict):
            raise ValueError(f"DFA data must be a JSON object, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a DFA file: 'format' must be {_FORMAT!r}")
        if data.get("version") != _VERSION:
            raise ValueError(f"unsupported DFA version {data.get('version')!r}")
        for key, kind in (("alphabet", list), ("transitions", list), ("accepting", list)):
            if not isinstance(data.get(key), kind):
                raise ValueError(f"DFA data needs a list under {key!r}")
        try:
            return cls(
                data["alphabet"],
                data["transitions"],
                data["accepting"],
                data.get("start", 0),
                data.get("state_names"),
            )
        except TypeError as err:
            raise ValueError(f"invalid DFA data: {err}") from err

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the automaton to ``path`` as UTF-8 JSON.

        Example:
            >>> dfa.save("dfa.json")  # doctest: +SKIP
            >>> DFA.load("dfa.json") == dfa  # doctest: +SKIP
            True
        """
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DFA:
        """Read an automaton written by :meth:`save` (JSON; nothing is unpickled).

        Raises:
            ValueError: if the file is not valid JSON or not a valid DFA.
        """
        return load_json(path, "DFA", cls.from_dict)


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
