"""Equivalence oracles for L*: the network's own state space, and batched sampling.

:class:`AbstractionEquivalence` is the oracle of Weiss, Goldberg and Yahav (ICML 2018).
It explores the network's reachable states breadth-first in parallel with the
hypothesis, under a finite partition of the state space. Two words whose network
states fall in one part but whose hypothesis states differ are a conflict: a shortest
suffix that tells the two hypothesis states apart is tried on both words; if the
network disagrees with the hypothesis on either, that word is a counterexample,
otherwise the network also tells the states apart and the part is split between them
(here by the nearest mean of the states each hypothesis state collected in the part,
where Weiss et al. train an SVM). The partition only ever gets finer and is kept
across equivalence queries. When the exploration closes without a conflict or a
misclassified word, the abstraction of the network is the hypothesis.

:class:`SamplingEquivalence` is the black-box oracle: batches of words, half drawn
class-balanced from the hypothesis (uniform among its accepted, or rejected, words of
a length) and half uniform, each classified by the network in one call. Every word
the network has answered so far is checked again, free, against every new hypothesis;
then fresh words are tested in growing stages (64 uniform words answered with the learner's
table fill, then the rest up to the size) until a counterexample is found or the size
is reached.

:class:`WMethodEquivalence` is the randomised W-method (Chow 1978; as LearnLib and
AALpy randomise it): from each hypothesis state's access word, random walks ended by a
word of the hypothesis' characterization set, a fixed number of walks per access word
over the whole run, all sent in one batch. Both black-box oracles first check every
word the network has answered so far (membership queries, the learner's look-ahead
and earlier tests, every prefix in prefix mode) against the new hypothesis, free.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from captum_rnn.rules._dfa import DFA
from captum_rnn.rules._lstar import Budget
from captum_rnn.rules._oracle import MembershipOracle, RecurrentOracle

__all__ = ["AbstractionEquivalence", "Partition", "SamplingEquivalence", "WMethodEquivalence"]

Indices = tuple[int, ...]


class Partition:
    """A finite partition of state space.

    The first level splits on the signs of the first ``initial_split_depth``
    coordinates (up to ``2 ** depth`` parts, made when first reached), as the initial
    partition of Weiss et al.; below it, a tree whose internal nodes send a state to
    the child with the nearest mean. Leaves are the parts.
    """

    def __init__(self, initial_split_depth: int = 0) -> None:
        self.depth = initial_split_depth
        self._nodes: list[tuple[Tensor, list[int]] | None] = []
        self._roots: dict[int, int] = {}

    @property
    def num_parts(self) -> int:
        return sum(node is None for node in self._nodes)

    def _root_codes(self, X: Tensor) -> np.ndarray:
        depth = min(self.depth, X.shape[1])
        if depth == 0:
            return np.zeros(X.shape[0], dtype=np.int64)
        bits = (X[:, :depth] > 0).long().cpu().numpy()
        return bits @ (1 << np.arange(depth, dtype=np.int64))

    def assign(self, X: Tensor) -> np.ndarray:
        """Part (leaf id) of each row of ``X``."""
        out = np.zeros(X.shape[0], dtype=np.int64)
        codes = self._root_codes(X)
        stack = []
        for code in np.unique(codes).tolist():
            root = self._roots.get(code)
            if root is None:
                root = self._roots[code] = len(self._nodes)
                self._nodes.append(None)
            idx = torch.as_tensor(np.nonzero(codes == code)[0], device=X.device)
            stack.append((root, idx))
        while stack:
            node, idx = stack.pop()
            spec = self._nodes[node]
            if spec is None:
                out[idx.cpu().numpy()] = node
                continue
            means, children = spec
            nearest = torch.cdist(X[idx], means).argmin(dim=1)
            for j, child in enumerate(children):
                sel = idx[nearest == j]
                if sel.numel():
                    stack.append((child, sel))
        return out

    def split(self, leaf: int, means: Tensor) -> None:
        first = len(self._nodes)
        self._nodes.extend([None] * means.shape[0])
        self._nodes[leaf] = (means, list(range(first, first + means.shape[0])))


class AbstractionEquivalence:
    """Weiss et al.'s equivalence oracle over a white-box recurrent oracle.

    Args:
        oracle: a :class:`RecurrentOracle` (states of every prefix).
        budget: the learner's budget (the exploration stops when time runs out).
        initial_split_depth: the initial partition splits on the signs of this many
            state coordinates.
        max_parts: the partition stops being refined past this many parts; the
            exploration then reports no counterexample of its own.
        seeds: words checked before every exploration (Weiss et al.'s starting
            examples, e.g. the training strings): on its own the exploration can
            accept a hypothesis before it has reached a distant part of the state
            space, such as the first rejected word of Tomita 7 at length 4.
    """

    def __init__(
        self,
        oracle: RecurrentOracle,
        budget: Budget,
        initial_split_depth: int = 10,
        max_parts: int = 5000,
        seeds: Sequence[Indices] = (),
    ) -> None:
        self.oracle = oracle
        self.seeds = sorted(set(seeds), key=lambda w: (len(w), w))
        self.budget = budget
        self.max_parts = max_parts
        self.partition = Partition(initial_split_depth)
        self.refinements = 0
        self._suffixes: dict[tuple[int, int], Indices] = {}

    def __call__(self, hypothesis: DFA) -> Indices | None:
        self._suffixes = {}
        if self.seeds:
            wrong = np.nonzero(
                self.oracle.labels(self.seeds) != hypothesis._accepts_indices(self.seeds)
            )[0]
            if wrong.size:
                return self.seeds[int(wrong[0])]
        while True:
            self.budget.check()
            outcome = self._explore(hypothesis)
            if outcome == "refined":
                continue
            return outcome  # type: ignore[return-value]

    def _suffix(self, hypothesis: DFA, p: int, q: int) -> Indices:
        key = (min(p, q), max(p, q))
        if key not in self._suffixes:
            word = hypothesis.distinguishing_suffix(p, q)
            self._suffixes[key] = tuple(hypothesis.encode(word))  # type: ignore[arg-type]
        return self._suffixes[key]

    def _explore(self, hypothesis: DFA) -> Indices | None | str:
        oracle, k = self.oracle, self.oracle.k
        rows, accepting = hypothesis.transitions, hypothesis.accepting
        visited: dict[int, tuple[int, int, Indices]] = {}
        members: dict[int, dict[int, list[int]]] = {}
        frontier: list[Indices] = [()]
        frontier_q = [hypothesis.start]
        while frontier:
            self.budget.check()
            nodes = oracle.nodes(frontier)
            labels = oracle.node_labels(nodes)
            expected = np.fromiter((q in accepting for q in frontier_q), dtype=bool)
            wrong = np.nonzero(labels != expected)[0]
            if wrong.size:
                return frontier[int(wrong[0])]
            parts = self.partition.assign(oracle.H[nodes])
            next_frontier: list[Indices] = []
            next_q: list[int] = []
            for word, q, node, part in zip(
                frontier, frontier_q, nodes.tolist(), parts.tolist(), strict=True
            ):
                seen = visited.get(part)
                if seen is None:
                    visited[part] = (q, node, word)
                    members[part] = {q: [node]}
                    for a in range(k):
                        next_frontier.append(word + (a,))
                        next_q.append(rows[q][a])
                    continue
                q0, node0, word0 = seen
                members[part].setdefault(q, []).append(node)
                if q0 == q:
                    continue
                # conflict: one part, two hypothesis states
                suffix = self._suffix(hypothesis, q0, q)
                candidates = [word0 + suffix, word + suffix]
                truth = oracle.labels(candidates)
                for candidate, label in zip(candidates, truth.tolist(), strict=True):
                    if label != hypothesis.accepts(hypothesis.word(candidate)):
                        return candidate
                if self.partition.num_parts >= self.max_parts:
                    return None
                self._refine(part, members[part], node0, node)
                return "refined"
            frontier, frontier_q = next_frontier, next_q
        return None

    def _refine(self, part: int, members: dict[int, list[int]], node_a: int, node_b: int) -> None:
        H = self.oracle.H
        means = torch.stack([H[ids].mean(dim=0) for ids in members.values()])
        pair = H[[node_a, node_b]]
        nearest = torch.cdist(pair, means).argmin(dim=1)
        if nearest[0] == nearest[1]:
            means = pair.clone()
        self.partition.split(part, means)
        self.refinements += 1


class SamplingEquivalence:
    """Black-box equivalence by growing batches of hypothesis-balanced and uniform words.

    Every word the network has answered so far (membership queries included) is
    checked against each new hypothesis first, at no network cost; the distinct words
    drawn in earlier queries count as tested. Then fresh words are drawn in stages: 64
    uniform words (which need no hypothesis: :meth:`prefetch` hands them to the learner
    to be answered with its table fill), then 16 times more at each stage, half
    balanced by the hypothesis, until the words tested reach ``n``. Each stage sends the
    words the oracle has not answered yet in one batch; the first stage that finds a
    counterexample ends the query with the shortest wrong word. A hypothesis is
    accepted once ``n`` words agree with it.

    Args:
        oracle: any membership oracle.
        max_length: words have lengths ``1 .. max_length``.
        n: words tested before a hypothesis is accepted.
        rng: the random source.
        extra: words always tested as well (e.g. the training strings).
    """

    #: words tested by the first stage (when not answered for every prefix)
    first_stage = 64
    #: each further stage tests this many times more words, up to ``n``
    growth = 16

    def __init__(
        self,
        oracle: MembershipOracle,
        max_length: int,
        n: int,
        rng: random.Random,
        extra: Sequence[Indices] = (),
    ) -> None:
        self.oracle = oracle
        self.max_length = max_length
        self.n = n
        self.rng = rng
        self.extra = list(extra)
        self._pending: list[Indices] = []
        self._known: set[Indices] = set()
        self._extra = set(self.extra)
        self._credit = 0  # distinct drawn (not extra) words answered so far

    def prefetch(self) -> list[Indices]:
        """The words of the next query's first stage: uniform words (and ``extra``),
        which need no hypothesis, so the learner can have them answered in the same
        network call as its next table fill. Empty in prefix mode."""
        if self.oracle.prefix_free:
            return []
        if not self._pending:
            count = min(self.first_stage, self.n)
            gen = np.random.default_rng(self.rng.getrandbits(63))
            lengths = gen.integers(1, self.max_length + 1, size=count).tolist()
            symbols = gen.integers(0, self.oracle.k, size=(count, self.max_length)).tolist()
            uniform = [tuple(row[:n]) for row, n in zip(symbols, lengths, strict=True)]
            extra = [w for w in self.extra if w not in self._known]
            self._pending = list(dict.fromkeys(uniform + extra))
        return self._pending

    def __call__(self, hypothesis: DFA) -> Indices | None:
        wrong = _shortest_wrong(hypothesis, *self.oracle.answered())
        if wrong is not None:
            return wrong
        if self.oracle.prefix_free:
            return self._prefix_query(hypothesis)
        # the words drawn in earlier queries were just checked: they count as tested,
        # though every query tests a first stage of fresh words
        credit = self._credit
        words, self._pending = self.prefetch(), []
        size = min(self.first_stage, self.n)  # words drawn (duplicates are tested once)
        while True:
            network = self.oracle.labels(words)
            fresh = [w for w in words if w not in self._known]
            self._known.update(fresh)
            self._credit += sum(w not in self._extra for w in fresh)
            wrong = _shortest_wrong(hypothesis, words, network)
            if wrong is not None:
                return wrong
            if size + credit >= self.n:
                return None
            count = min(self.growth * size, self.n - credit) - size
            size += count
            words = list(dict.fromkeys(_sample(hypothesis, count, self.max_length, self.rng)))

    def _prefix_query(self, hypothesis: DFA) -> Indices | None:
        # When the oracle labels every prefix of a word for free (a recurrent network
        # read left to right), every prefix is a test: far fewer words are sent, the
        # full size at once, and the shortest wrong prefix is the counterexample.
        count = max(2, math.ceil(self.n / ((1 + self.max_length) / 2)))
        sampled = _sample(hypothesis, count, self.max_length, self.rng)
        words = list(dict.fromkeys(sampled + self.extra))
        return _first_wrong_prefix(hypothesis, words, self.oracle.prefix_labels(words))


class WMethodEquivalence:
    """Black-box equivalence by the randomised W-method.

    For a hypothesis, each state's access word (a shortest word reaching it) is
    followed by a random walk of ``1 ..`` symbols and then by a word of the
    hypothesis' characterization set (a shortest word telling each pair of its states
    apart, and the empty word); the walk is as long as keeps the word within
    ``max_length`` (at least one symbol). Each access word gets ``walks_per_state``
    walks over the whole run, as in AALpy's ``RandomWMethodEqOracle``: a state kept
    from an earlier hypothesis gets no new walks, but every word the network has
    answered (membership queries included) is checked again, free, against every new
    hypothesis. All of a query's words go to the network in one batch; the shortest
    word (or, when the network labels every prefix, the shortest prefix) the hypothesis
    gets wrong is the counterexample.

    Args:
        oracle: any membership oracle.
        max_length: the longest word, where the access and separating words allow.
        walks_per_state: random walks from each access word.
        rng: the random source.
        extra: words always tested as well (e.g. the training strings).
    """

    def __init__(
        self,
        oracle: MembershipOracle,
        max_length: int,
        walks_per_state: int,
        rng: random.Random,
        extra: Sequence[Indices] = (),
    ) -> None:
        self.oracle = oracle
        self.max_length = max_length
        self.walks_per_state = walks_per_state
        self.rng = rng
        self.extra = list(extra)
        self._walks: dict[Indices, int] = {}  # walks drawn so far per access word

    def __call__(self, hypothesis: DFA) -> Indices | None:
        wrong = _shortest_wrong(hypothesis, *self.oracle.answered())
        if wrong is not None:
            return wrong
        suffixes = hypothesis._separating_suffixes()
        gen = np.random.default_rng(self.rng.getrandbits(63))
        words = list(self.extra)
        for access in hypothesis._access_words().values():
            count = self.walks_per_state - self._walks.get(access, 0)
            if count <= 0:
                continue
            self._walks[access] = self.walks_per_state
            picks = gen.integers(0, len(suffixes), size=count).tolist()
            room = [max(1, self.max_length - len(access) - len(suffixes[i])) for i in picks]
            walk_lengths = gen.integers(1, np.array(room) + 1).tolist()
            symbols = gen.integers(0, self.oracle.k, size=(count, max(room))).tolist()
            words.extend(
                access + tuple(row[:n]) + suffixes[i]
                for row, n, i in zip(symbols, walk_lengths, picks, strict=True)
            )
        words = list(dict.fromkeys(words))
        if not words:
            return None
        if self.oracle.prefix_free:
            return _first_wrong_prefix(hypothesis, words, self.oracle.prefix_labels(words))
        return _shortest_wrong(hypothesis, words, self.oracle.labels(words))


def _sample(hypothesis: DFA, count: int, max_length: int, rng: random.Random) -> list[Indices]:
    """``count`` words of lengths ``1 .. max_length``, half class-balanced by the
    hypothesis, half uniform."""
    half = count // 2
    balanced, _ = hypothesis._sample_indices(half, 1, max_length, True, rng)
    uniform, _ = hypothesis._sample_indices(count - half, 1, max_length, False, rng, labels=False)
    return [tuple(w) for w in balanced + uniform]


def _shortest_wrong(hypothesis: DFA, words: list[Indices], network: np.ndarray) -> Indices | None:
    """The shortest (then smallest) of ``words`` the hypothesis labels unlike ``network``."""
    if not words:
        return None
    wrong = np.nonzero(network != hypothesis._accepts_indices(words))[0]
    if not wrong.size:
        return None
    return min((words[i] for i in wrong.tolist()), key=lambda w: (len(w), w))


def _first_wrong_prefix(
    hypothesis: DFA, words: list[Indices], network: np.ndarray
) -> Indices | None:
    """The shortest (then smallest) prefix of ``words`` on which the hypothesis and the
    network's prefix labels ``(n, T)`` disagree, or None."""
    n, width = network.shape
    if n == 0 or width == 0:
        return None
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=n)
    valid = np.arange(width)[None, :] < lengths[:, None]
    symbols = np.zeros((n, width), dtype=np.int64)
    symbols[valid] = np.fromiter(
        (a for w in words for a in w), dtype=np.int64, count=int(lengths.sum())
    )
    table, accept = hypothesis._table, hypothesis._accept_mask
    state = np.full(n, hypothesis.start, dtype=np.int64)
    expected = np.zeros((n, width), dtype=bool)
    for t in range(width):
        state = table[state, symbols[:, t]]
        expected[:, t] = accept[state]
    wrong = (expected != network) & valid
    columns = np.nonzero(wrong.any(axis=0))[0]
    if columns.size == 0:
        return None
    t = int(columns[0])
    return min(words[i][: t + 1] for i in np.nonzero(wrong[:, t])[0].tolist())
