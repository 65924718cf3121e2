"""Fidelity of extracted rules: how often they agree with the network, on held-out data.

A fidelity number means little on its own: on a sparse language (Tomita 1, 2, long 7)
uniform random strings are almost all negative, and an automaton that rejects
everything agrees with the network on 99.5% of them. So the test sets here are
balanced by the network's labels, agreement is macro-averaged over the network's two classes, and
lengths inside the training range and longer lengths are reported apart. Where the
ground truth is known (a reference automaton or membership function), the accuracy
of the automaton and of the network are reported beside each other: an automaton
can be more accurate than the network it was extracted from.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from captum_rnn.rules._dfa import DFA, Word
from captum_rnn.rules._oracle import MembershipOracle, evaluation_mode, make_oracle

__all__ = [
    "Counterexample",
    "FidelityReport",
    "FidelitySplit",
    "dfa_fidelity",
    "fidelity",
]

Indices = tuple[int, ...]


def fidelity(rule_predictions: Any, model_predictions: Any, balanced: bool = True) -> float:
    """Agreement between a rule's predictions and the model's.

    Args:
        rule_predictions: predicted labels of the rule (any 1-D array-like).
        model_predictions: the model's labels for the same inputs.
        balanced: macro-average the agreement over the model's classes, so that a
            rule predicting only the majority class scores ``1 / num_classes``.

    Returns:
        A float in ``[0, 1]``.

    Raises:
        ValueError: on empty or mismatched inputs.

    Example:
        >>> fidelity([0, 0, 0, 0], [0, 0, 0, 1]), fidelity([0, 0, 0, 0], [0, 0, 0, 1], False)
        (0.5, 0.75)
    """
    rule = np.asarray(_to_numpy(rule_predictions)).reshape(-1)
    model = np.asarray(_to_numpy(model_predictions)).reshape(-1)
    if rule.shape != model.shape:
        raise ValueError(
            f"rule_predictions has {rule.size} labels but model_predictions has {model.size}"
        )
    if rule.size == 0:
        raise ValueError("rule_predictions and model_predictions are empty")
    if not balanced:
        return float((rule == model).mean())
    return float(np.mean([(rule[model == c] == c).mean() for c in np.unique(model)]))


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


@dataclass(frozen=True)
class Counterexample:
    """A word on which the automaton and the network disagree.

    Attributes:
        word: the word (a str for one-character symbols).
        network: the network's label (True: accept).
        dfa: the automaton's label.
        truth: the ground truth where a reference was given, else None.
    """

    word: Word
    network: bool
    dfa: bool
    truth: bool | None = None

    def __str__(self) -> str:
        truth = "" if self.truth is None else f", truth {int(self.truth)}"
        return f"{self.word!r}: network {int(self.network)}, dfa {int(self.dfa)}{truth}"


@dataclass(frozen=True)
class FidelitySplit:
    """Fidelity on one held-out length range.

    Attributes:
        min_length, max_length: the lengths of the words.
        n: number of words.
        fidelity: agreement with the network, macro-averaged over the network's classes.
        agreement: plain agreement with the network.
        positive_rate: fraction of the words the network accepts.
        dfa_accuracy: the automaton's accuracy against the ground truth (or None).
        network_accuracy: the network's accuracy against the ground truth (or None).
        disagreements: words on which the automaton and the network disagree.
        sample: how the words were drawn.
    """

    min_length: int
    max_length: int
    n: int
    fidelity: float
    agreement: float
    positive_rate: float
    dfa_accuracy: float | None = None
    network_accuracy: float | None = None
    disagreements: int = 0
    sample: str = ""


@dataclass
class FidelityReport:
    """Fidelity of an automaton to a network, inside and beyond the training lengths.

    Attributes:
        in_range: the split with lengths inside the training range.
        longer: the split with longer words (None when not measured).
        num_states: states of the automaton.
        reference_states: states of the minimal reference automaton (or None).
        counterexamples: the shortest disagreements found, shortest first.
    """

    in_range: FidelitySplit
    longer: FidelitySplit | None
    num_states: int
    reference_states: int | None = None
    counterexamples: list[Counterexample] = field(default_factory=list)

    @property
    def fidelity(self) -> float:
        """Fidelity on the in-range split."""
        return self.in_range.fidelity

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["counterexamples"] = [
            {**asdict(c), "word": c.word if isinstance(c.word, str) else list(c.word)}
            for c in self.counterexamples
        ]
        return out

    def __str__(self) -> str:
        lines = [
            f"states {self.num_states}"
            + (
                ""
                if self.reference_states is None
                else f" (minimal reference {self.reference_states})"
            )
        ]
        for name, split in (("in range", self.in_range), ("longer", self.longer)):
            if split is None:
                continue
            text = (
                f"{name} (lengths {split.min_length}-{split.max_length}, n={split.n}): "
                f"fidelity {split.fidelity:.4f}, agreement {split.agreement:.4f}"
            )
            if split.dfa_accuracy is not None:
                text += (
                    f", dfa accuracy {split.dfa_accuracy:.4f}, "
                    f"network accuracy {split.network_accuracy:.4f}"
                )
            if split.sample:
                text += f"; sample: {split.sample}"
            lines.append(text)
        if self.counterexamples:
            shown = ", ".join(repr(c.word) for c in self.counterexamples[:5])
            lines.append(f"counterexamples ({len(self.counterexamples)}): {shown}")
        return "\n".join(lines)


Reference = DFA | Callable[[Any], bool] | None


def _reference_labels(reference: Reference, dfa: DFA, words: list[Indices]) -> np.ndarray | None:
    if reference is None:
        return None
    if isinstance(reference, DFA):
        perm = [reference.encode([s])[0] for s in dfa.alphabet]
        return reference._accepts_indices([[perm[a] for a in w] for w in words])
    return np.array([bool(reference(dfa.word(w))) for w in words], dtype=bool)


def _spread(want: int, caps: list[int]) -> list[int]:
    """Share ``want`` words over lengths one at a time, round robin, none past its cap:
    what taking one word per length in turn gives."""
    alloc = [0] * len(caps)
    left = want
    while left > 0:
        open_ = [i for i, cap in enumerate(caps) if alloc[i] < cap]
        if not open_:
            break
        for i in open_[:left]:
            alloc[i] += 1
        left -= min(left, len(open_))
    return alloc


def _apportion(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders)."""
    mass = sum(weights)
    if total <= 0 or mass <= 0:
        return [0] * len(weights)
    exact = [total * w / mass for w in weights]
    out = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: out[i] - exact[i])
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def _words_of(k: int, length: int, fraction: float, most: int) -> int:
    """``fraction`` of the ``k ** length`` words, at most ``most`` (no float overflow)."""
    if fraction <= 0:
        return 0
    if length * math.log(k) > math.log(most) - math.log(fraction) + 1:
        return most
    return min(most, round(k**length * fraction))


class _Strata:
    """Words split by the joint labels of guide automata (the extracted one, and a
    reference), with the share of each length's words in every stratum and a uniform
    sampler within a stratum.

    Args:
        guides: automata, each with the index in its alphabet of each of our symbols.
        k: the number of symbols.
        longest: the longest length asked for.
    """

    def __init__(self, guides: list[tuple[DFA, list[int]]], k: int, longest: int) -> None:
        start = tuple(g.start for g, _ in guides)
        index, order, rows = {start: 0}, [start], []
        while len(rows) < len(order):  # the reachable states of the product
            state, row = order[len(rows)], []
            for a in range(k):
                nxt = tuple(g.transitions[q][m[a]] for (g, m), q in zip(guides, state, strict=True))
                if nxt not in index:
                    index[nxt] = len(order)
                    order.append(nxt)
                row.append(index[nxt])
            rows.append(row)
        self.table = np.array(rows, dtype=np.int64)
        labels = [
            tuple(q in g.accepting for (g, _), q in zip(guides, st, strict=True)) for st in order
        ]
        self.keys = sorted(set(labels))
        self.stratum_of_state = np.array([self.keys.index(x) for x in labels])
        # share[s, L, q]: the fraction of the words of length L read from q that end in
        # stratum s (fractions, not counts: no overflow at any length)
        share = np.zeros((len(self.keys), longest + 1, len(order)))
        share[:, 0] = self.stratum_of_state[None, :] == np.arange(len(self.keys))[:, None]
        for length in range(1, longest + 1):
            share[:, length] = share[:, length - 1][:, self.table].mean(axis=2)
        self.share = share

    def of(self, words: list[Indices]) -> np.ndarray:
        """The stratum of each word (all of one length)."""
        q = np.zeros(len(words), dtype=np.int64)
        if words and words[0]:
            x = np.array(words, dtype=np.int64)
            for pos in range(x.shape[1]):
                q = self.table[q, x[:, pos]]
        return self.stratum_of_state[q]

    def sample(self, s: int, length: int, m: int, gen: np.random.Generator) -> list[Indices]:
        """``m`` words of ``length`` drawn uniformly from stratum ``s`` (none if empty)."""
        if m <= 0 or self.share[s, length, 0] <= 0:
            return []
        q = np.zeros(m, dtype=np.int64)
        out = np.zeros((m, length), dtype=np.int64)
        for pos in range(length):
            weights = self.share[s, length - pos - 1][self.table[q]]  # (m, k)
            cum = np.cumsum(weights, axis=1)
            pick = (cum > gen.random(m)[:, None] * cum[:, -1:]).argmax(axis=1)
            out[:, pos] = pick
            q = self.table[q, pick]
        return list(map(tuple, out.tolist()))


def _held_out_words(
    dfa: DFA,
    oracle: MembershipOracle,
    reference: Reference,
    lo: int,
    hi: int,
    n: int,
    rng: random.Random,
) -> tuple[list[Indices], str]:
    """Words balanced by the network's own labels, each class spread over the lengths.

    Up to ``n / 2`` words of each of the network's classes, taken one length after
    another (a length gives no more words of a class than it has), and within a
    length a uniform sample of that class. A class the network seldom gives (a sparse
    language) is found through the automaton's accepted and rejected words (and a
    reference automaton's): each such stratum is sampled uniformly and weighted by its
    size, so the sample stays uniform within the class. Sampling from the automaton's
    own language instead would measure it on that language: a non-regular network
    then looks perfectly mimicked.
    """
    lengths = list(range(lo, hi + 1))
    k = len(dfa.alphabet)
    wants = {True: n // 2, False: n - n // 2}
    quota = -(-max(wants.values()) // len(lengths))  # words per class and length
    draws = max(16, 8 * quota)
    gen = np.random.default_rng(rng.getrandbits(63))
    guides = [(dfa, list(range(k)))]
    if isinstance(reference, DFA):
        guides.append((reference, [reference.encode([a])[0] for a in dfa.alphabet]))
    strata = _Strata(guides, k, hi)
    n_strata = len(strata.keys)
    exhaustive = {length for length in lengths if k**length <= draws}
    # (length, stratum) -> distinct words seen; (length, stratum, class) -> words
    seen: dict[tuple[int, int], set[Indices]] = {}
    found: dict[tuple[int, int, bool], list[Indices]] = {}

    def add(words: list[Indices]) -> None:
        by_length: dict[int, list[Indices]] = {}
        for w in dict.fromkeys(words):
            by_length.setdefault(len(w), []).append(w)
        fresh = []
        for length, group in by_length.items():
            for w, s in zip(group, strata.of(group).tolist(), strict=True):
                bucket = seen.setdefault((length, s), set())
                if w not in bucket:
                    bucket.add(w)
                    fresh.append((w, s))
        labels = oracle.labels([w for w, _ in fresh])
        for (w, s), y in zip(fresh, labels.tolist(), strict=True):
            found.setdefault((len(w), s, bool(y)), []).append(w)

    def uniform(length: int, m: int) -> list[Indices]:
        return list(map(tuple, gen.integers(0, k, size=(m, length)).tolist()))

    def sizes(length: int, label: bool) -> list[float]:
        """Estimated fraction of the words of ``length`` in each stratum and class:
        the stratum's share times the class rate among its (uniform) words seen."""
        out = []
        for s in range(n_strata):
            total = len(seen.get((length, s), ()))
            have = len(found.get((length, s, label), ()))
            out.append(strata.share[s, length, 0] * have / total if total else 0.0)
        return out

    def plan(final: bool) -> dict[tuple[int, int, bool], int]:
        """Words to take from each (length, stratum, class); ``final``: no more than
        were found, the strata of a length kept in proportion (a stratum short of words
        shrinks the others: filling up from them would bias the sample)."""
        out = {}
        for label, want in wants.items():
            caps = [_words_of(k, L, sum(sizes(L, label)), want) for L in lengths]
            for L, m in zip(lengths, _spread(want, caps), strict=True):
                weights = sizes(L, label)
                takes = _apportion(m, weights)
                if final:
                    have = [len(found.get((L, s, label), ())) for s in range(n_strata)]
                    fit = min([h / t for h, t in zip(have, takes, strict=True) if t] + [1.0])
                    takes = _apportion(int(m * fit), weights)
                    takes = [min(t, h) for t, h in zip(takes, have, strict=True)]
                for s, t in enumerate(takes):
                    out[(L, s, label)] = t
        return out

    first: list[Indices] = []
    for length in lengths:
        if length in exhaustive:
            first.extend(itertools.product(range(k), repeat=length))
            continue
        first.extend(uniform(length, draws))
        for s in range(n_strata):  # a few words of every stratum, rare ones included
            first.extend(strata.sample(s, length, max(4, quota), gen))
    add(first)
    # a stratum short of words of a class: more of its words, as its class rate needs
    more: dict[tuple[int, int], int] = {}
    for (length, s, label), take in plan(final=False).items():
        have = len(found.get((length, s, label), ()))
        if length not in exhaustive and take > have:
            total = len(seen[(length, s)])
            need = -(-(take - have) * total * 5 // (4 * max(have, 1)))
            more[(length, s)] = max(more.get((length, s), 0), min(need, 16 * draws))
    # at most twice as many as the first draw
    scale = min(1.0, 2 * len(first) / max(1, sum(more.values())))
    add([w for (L, s), m in more.items() for w in strata.sample(s, L, int(m * scale), gen)])
    chosen: list[Indices] = []
    counts = {True: 0, False: 0}
    for (length, s, label), take in plan(final=True).items():
        words = found.get((length, s, label), [])
        rng.shuffle(words)
        chosen.extend(words[:take])
        counts[label] += min(take, len(words))
    guide = "the automaton's" if len(guides) == 1 else "the automaton's and the reference's"
    how = (
        f"balanced by the network's labels ({counts[True]} accepted, {counts[False]} "
        f"rejected), each class spread over lengths {lo}-{hi}, uniform within a length "
        f"(drawn through {guide} accepted and rejected words, weighted by their numbers)"
    )
    return chosen, how


def fidelity_with_oracle(
    dfa: DFA,
    oracle: MembershipOracle,
    reference: Reference,
    in_range: tuple[int, int],
    longer: tuple[int, int] | None,
    n: int,
    seed: int,
    max_counterexamples: int = 20,
    held_out: Sequence[Any] | None = None,
) -> FidelityReport:
    """:func:`dfa_fidelity` over an existing oracle whose alphabet order is the DFA's.

    With ``held_out`` (words over the alphabet), the in-range split is measured on them.
    """
    rng = random.Random(seed)
    splits: list[FidelitySplit | None] = []
    found: dict[Indices, Counterexample] = {}
    for lengths in (in_range, longer):
        if lengths is None:
            splits.append(None)
            continue
        lo, hi = lengths
        if held_out is not None and lengths is in_range:  # the caller's words
            words = [tuple(dfa.encode(w, f"held_out[{i}]")) for i, w in enumerate(held_out)]
            lo, hi = min(map(len, words), default=0), max(map(len, words), default=0)
            how = f"{len(words)} held-out words given by the caller"
        else:
            words, how = _held_out_words(dfa, oracle, reference, lo, hi, n, rng)
        if not words:
            raise ValueError(f"no held-out words with lengths {lo}-{hi}")
        network = oracle.labels(words)
        predicted = dfa._accepts_indices(words)
        truth = _reference_labels(reference, dfa, words)
        wrong = np.nonzero(network != predicted)[0]
        for i in wrong.tolist():
            found.setdefault(
                words[i],
                Counterexample(
                    dfa.word(words[i]),
                    bool(network[i]),
                    bool(predicted[i]),
                    None if truth is None else bool(truth[i]),
                ),
            )
        splits.append(
            FidelitySplit(
                min_length=lo,
                max_length=hi,
                n=len(words),
                fidelity=fidelity(predicted, network),
                agreement=fidelity(predicted, network, balanced=False),
                positive_rate=float(network.mean()),
                dfa_accuracy=None if truth is None else float((predicted == truth).mean()),
                network_accuracy=None if truth is None else float((network == truth).mean()),
                disagreements=int(wrong.size),
                sample=how,
            )
        )
    ordered = sorted(found, key=lambda w: (len(w), w))[:max_counterexamples]
    reference_states = reference.minimize().num_states if isinstance(reference, DFA) else None
    return FidelityReport(
        in_range=splits[0],  # type: ignore[arg-type]
        longer=splits[1],
        num_states=dfa.num_states,
        reference_states=reference_states,
        counterexamples=[found[w] for w in ordered],
    )


def _check_reference(reference: Any, dfa: DFA) -> None:
    if reference is None or callable(reference) and not isinstance(reference, DFA):
        return
    if not isinstance(reference, DFA):
        raise TypeError(
            f"reference must be a DFA or a callable word -> bool, got {type(reference).__name__}"
        )
    if set(reference.alphabet) != set(dfa.alphabet):
        raise ValueError(
            f"reference has alphabet {list(reference.alphabet)!r}, the DFA has "
            f"{list(dfa.alphabet)!r}"
        )


def dfa_fidelity(
    dfa: DFA,
    model: Any,
    alphabet: Sequence[Any] | dict[Any, int] | None = None,
    *,
    vocab: Any = None,
    reference: Reference = None,
    max_length: int = 20,
    longer_length: int | None = None,
    min_length: int = 1,
    n: int = 1000,
    empty: bool | str = "auto",
    seed: int = 0,
    batch_size: int = 2048,
    held_out: Sequence[Any] | None = None,
    **hints: Any,
) -> FidelityReport:
    """Measure how faithfully ``dfa`` mimics ``model`` on fresh words balanced by its labels.

    Two held-out sets of up to ``n`` words are drawn: lengths ``min_length ..
    max_length`` (the training range) and ``max_length + 1 .. longer_length``. Each
    is balanced by the network's own labels, each class spread over the lengths and,
    within a length, a uniform sample of that class (a rare class is found among the
    automaton's, and a reference automaton's, accepted and rejected words, each set
    weighted by its size); the report's ``sample`` says how the words were drawn. With
    a ``reference`` (the true language) the accuracies of automaton and network are
    reported too.

    Args:
        dfa: the automaton.
        model: a binary classifier accepted by :func:`~captum_rnn.rules.extract_dfa`
            (package ``RNNClassifier``, ``nn.Module`` over token ids, or a callable
            scoring a list of words).
        alphabet: the symbols, or ``{symbol: token_id}``; defaults to ``dfa.alphabet``.
        vocab: maps symbols to token ids (a ``Vocabulary`` or a mapping).
        reference: the true language: a :class:`DFA` or a callable ``word -> bool``.
        max_length: longest length of the in-range set.
        longer_length: longest length of the longer set (default ``2 * max_length``;
            0 skips it).
        min_length: shortest length of the in-range set.
        n: words per set.
        empty: how the network labels the empty word (unused for lengths >= 1).
        seed: seeds the sampling.
        held_out: words of the caller's own (e.g. a held-out test set) to measure the
            in-range fidelity on, instead of sampled words.
        hints: the model contract's hints (see :func:`captum_rnn.adapt`).
        batch_size: most words per network call.

    Returns:
        A :class:`FidelityReport`.

    Raises:
        ValueError/TypeError: for an alphabet not matching the DFA or the model's
            vocabulary, a non-binary model, ``n < 1`` or a bad length range.

    Example:
        >>> from captum_rnn.rules import tomita_dfa
        >>> from captum_rnn.data import tomita_accepts
        >>> net = lambda words: [tomita_accepts(4, w) for w in words]
        >>> dfa_fidelity(tomita_dfa(4), net, reference=tomita_dfa(4)).fidelity
        1.0
    """
    if not isinstance(dfa, DFA):
        raise TypeError(f"dfa must be a DFA, got {type(dfa).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the held-out set cannot be empty), got {n!r}")
    if not 0 <= min_length <= max_length:
        raise ValueError(f"need 0 <= min_length <= max_length, got {min_length}, {max_length}")
    longer_length = 2 * max_length if longer_length is None else longer_length
    if longer_length and longer_length <= max_length:
        raise ValueError(f"longer_length must exceed max_length={max_length}, got {longer_length}")
    _check_reference(reference, dfa)
    if alphabet is None:
        alphabet = dfa.alphabet
    symbols = tuple(alphabet)
    if set(symbols) != set(dfa.alphabet):
        raise ValueError(
            f"alphabet {list(symbols)!r} does not hold the DFA's symbols {list(dfa.alphabet)!r}"
        )
    if isinstance(alphabet, dict):
        alphabet = {s: alphabet[s] for s in dfa.alphabet}
    else:
        alphabet = dfa.alphabet
    with evaluation_mode(model):
        oracle = make_oracle(model, alphabet, vocab, empty, batch_size, hints=hints)
        return fidelity_with_oracle(
            dfa,
            oracle,
            reference,
            (min_length, max_length),
            (max_length + 1, longer_length) if longer_length else None,
            n,
            seed,
            held_out=held_out,
        )
