"""``extract_dfa``: an automaton from a binary sequence classifier, with its report."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from captum_rnn._utils.options import check_int
from captum_rnn.rules._dfa import DFA
from captum_rnn.rules._equivalence import (
    AbstractionEquivalence,
    SamplingEquivalence,
    WMethodEquivalence,
)
from captum_rnn.rules._lstar import Budget, lstar
from captum_rnn.rules._oracle import MembershipOracle, evaluation_mode, make_oracle
from captum_rnn.rules._quantize import quantize

if TYPE_CHECKING:
    from captum_rnn.rules._fidelity import Counterexample, FidelityReport

__all__ = ["ExtractionReport", "extract_dfa"]

Indices = tuple[int, ...]
_METHODS = ("lstar", "quantize")
_EQUIVALENCES = ("auto", "abstraction", "sampling", "wmethod")


@dataclass
class ExtractionReport:
    """How an automaton was extracted and how faithful it is.

    Attributes:
        method: ``"lstar"`` or ``"quantize"``.
        equivalence: the equivalence oracle(s) used by L* (None for quantize).
        white_box: whether the network's recurrent state was used.
        seconds: extraction time, without the falsification pass.
        falsification_seconds: time of the falsification pass.
        queries: distinct words the network classified during extraction.
        calls: batched calls to the network during extraction.
        steps: recurrent steps computed (white-box only).
        rounds: equivalence queries (L*).
        states: states of the returned automaton.
        converged: the equivalence oracles found no counterexample (L*).
        stopped_by: ``"equivalence"`` (converged), ``"time"``, ``"max_states"``,
            ``"max_rounds"`` or, for quantize, ``"candidates"``.
        empty_label: the label the automaton gives the empty word.
        hypothesis_sizes: states of each L* hypothesis, in order.
        partition_parts: parts of the state-space partition (abstraction oracle).
        clusters: clusters of the chosen quantisation.
        fidelity: the falsification pass's :class:`~captum_rnn.rules.FidelityReport`.
    """

    method: str
    equivalence: str | None
    white_box: bool
    seconds: float
    queries: int
    calls: int
    steps: int | None
    rounds: int
    states: int
    converged: bool
    stopped_by: str
    empty_label: bool
    hypothesis_sizes: list[int] = field(default_factory=list)
    partition_parts: int | None = None
    clusters: int | None = None
    falsification_seconds: float = 0.0
    fidelity: FidelityReport | None = None

    @property
    def counterexamples(self) -> list[Counterexample]:
        """Disagreements found by the falsification pass, shortest first."""
        return [] if self.fidelity is None else list(self.fidelity.counterexamples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["fidelity"] = None if self.fidelity is None else self.fidelity.to_dict()
        return out

    def __str__(self) -> str:
        head = (
            f"{self.method}"
            + (f" ({self.equivalence})" if self.equivalence else "")
            + f": {self.states} states in {self.seconds:.3f} s, {self.queries} queries, "
            f"{self.calls} network calls, stopped by {self.stopped_by}"
        )
        return head if self.fidelity is None else f"{head}\n{self.fidelity}"


def _encode_samples(samples: Any, alphabet: tuple[Any, ...]) -> list[Indices]:
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Iterable):
        raise TypeError("samples must be a sequence of words (e.g. a list of strings)")
    index = {s: i for i, s in enumerate(alphabet)}
    out = []
    for i, word in enumerate(samples):
        if hasattr(word, "tolist"):
            word = word.tolist()
        try:
            out.append(tuple(index[s] for s in word))
        except (KeyError, TypeError):
            bad = next((s for s in word if s not in index), word)
            raise ValueError(
                f"samples[{i}] holds {bad!r}, which is not in the alphabet {list(alphabet)!r}"
            ) from None
    if not out:
        raise ValueError("samples is empty: pass at least one sequence (or None)")
    return out


def _settle_empty(dfa: DFA, oracle: MembershipOracle) -> tuple[DFA, bool]:
    """With ``empty="auto"`` the empty word is outside the network's domain: give it
    the label that makes the automaton smaller (ties keep the provisional label)."""
    label = oracle.empty_label
    n = dfa.num_states
    table = [list(row) for row in dfa.transitions] + [list(dfa.transitions[dfa.start])]
    accepting = set(dfa.accepting) | ({n} if not label else set())
    variant = DFA(dfa.alphabet, table, accepting, n).minimize()
    if variant.num_states < dfa.num_states:
        return variant, not label
    return dfa, label


def extract_dfa(
    model: Any,
    alphabet: Sequence[Any] | dict[Any, int],
    method: str = "lstar",
    *,
    vocab: Any = None,
    max_length: int = 20,
    time_limit: float = 10.0,
    max_states: int = 50,
    max_rounds: int = 100,
    equivalence: str = "auto",
    samples: Sequence[Any] | None = None,
    samples_per_round: int = 1000,
    walks_per_state: int = 25,
    n_clusters: int | Sequence[int] | None = None,
    clustering: str = "kmeans",
    empty: bool | str = "auto",
    reference: DFA | Any = None,
    falsify: int = 2000,
    longer_length: int | None = None,
    batch_size: int = 2048,
    prefix_scores: bool = False,
    seed: int = 0,
    held_out: Sequence[Any] | None = None,
    **hints: Any,
) -> DFA:
    """Extract a deterministic finite automaton from a binary sequence classifier.

    ``method="lstar"`` runs Angluin's L* with membership queries answered by the
    network in batches. Equivalence queries are answered, for a package
    ``RNNClassifier`` that reads left to right and classifies its last state, by
    exploring the network's own state space under a partition refined on conflicts
    (Weiss, Goldberg and Yahav, ICML 2018), followed by a batch of sampled words; for
    any other model, by sampled words alone (half balanced by the hypothesis' own
    classes). ``method="quantize"`` clusters the network's states over sample words,
    reads the transitions by majority vote, minimises, and picks the number of
    clusters by held-out fidelity.

    Every extraction ends with a falsification pass: ``falsify`` fresh words, half of
    lengths ``1 .. max_length`` (or the ``held_out`` words) and half longer, balanced
    by the network's labels with each class spread over the lengths (never drawn from
    the automaton's own language alone), on which the network and the automaton are
    compared; the fidelity, how the words were drawn and the disagreements found are
    attached.

    Args:
        model: a package ``RNNClassifier`` with 2 classes over token ids; any
            ``nn.Module`` mapping padded token ids ``(batch, time)`` to ``(batch, 2)``
            scores; or a callable that takes a list of words (``str`` when every symbol
            is one character, else tuples of symbols) and returns ``(n,)``
            acceptance probabilities/labels or ``(n, 2)`` class scores (or, with
            ``prefix_scores=True``, the scores of every prefix).
        alphabet: the symbols (``"01"`` means ``"0"``, ``"1"``), or a mapping
            ``{symbol: token_id}``.
        method: ``"lstar"`` or ``"quantize"``.
        vocab: maps symbols to the model's token ids: a
            :class:`~captum_rnn.data.Vocabulary` or a mapping.
        max_length: the lengths of interest (the training range): sampled words
            have lengths ``1 .. max_length``.
        time_limit: seconds; when spent, the best hypothesis so far is returned.
        max_states: cap on hypothesis size.
        max_rounds: cap on L* equivalence queries.
        equivalence: ``"auto"`` (state-space exploration then sampling when the state
            is available, else sampling), ``"abstraction"``, ``"sampling"`` (a test of
            ``samples_per_round`` words from the range of interest), or ``"wmethod"``
            (the randomised W-method: ``walks_per_state`` random walks from each state
            of the hypothesis, each ended by a word that tells its states apart; far
            fewer words than sampling, with no guarantee over the range of interest).
        samples: optional words from the task (e.g. the training strings): tested at
            every sampling equivalence query, and the words quantisation clusters
            over (default: 1000 uniform random words).
        samples_per_round: words tested per sampling equivalence query; when the
            network answers every prefix of a word with it (a package recurrent model
            read left to right, or ``prefix_scores=True``), every prefix counts as a
            test, so about ``2 * samples_per_round / (max_length + 1)`` words are sent.
        walks_per_state: ``equivalence="wmethod"``: random walks from each state's
            access word over the whole run (AALpy's default is 25).
        n_clusters: quantize: a number of clusters or candidates to choose from.
        clustering: quantize: ``"kmeans"`` or ``"interval"``.
        empty: the label of the empty word, which package models cannot read:
            ``True``/``False``; ``"network"`` (the network's output on its initial
            state, or the callable's answer); ``"auto"`` (whichever gives the
            smaller automaton).
        reference: the true language (a :class:`DFA` or a callable ``word -> bool``),
            for accuracy in the report.
        falsify: words in the falsification pass (0 skips it).
        longer_length: longest length of the longer falsification words
            (default ``2 * max_length``).
        batch_size: most words per network call.
        prefix_scores: ``model`` is a callable that returns the score of every prefix
            of every word: ``(n, T)`` acceptance probabilities (column ``t`` for the
            first ``t + 1`` symbols; ``T`` at least the longest word) or ``(n, T, 2)``
            class scores, as one forward of a recurrent network gives. Membership and
            sampled equivalence queries then cost far fewer words.
        seed: seeds all sampling; the result is deterministic for a seed on CPU.
        held_out: words of the caller's own to measure the in-range fidelity on (else
            words balanced by the network's labels over lengths 1..``max_length``).
        hints: the model contract's hints for an ``nn.Module`` that does not say them
            (``pad_id``, ``batch_first``, ``output``, ...; see :func:`captum_rnn.adapt`).

    Returns:
        The :class:`DFA`, with an :class:`ExtractionReport` as ``dfa.report``.

    Raises:
        ValueError/TypeError: for an alphabet that does not match the model's
            vocabulary, a model that is not a binary classifier, an empty ``samples``,
            a bad method or cap.

    Example:
        >>> from captum_rnn.data import tomita_accepts
        >>> net = lambda words: [tomita_accepts(4, w) for w in words]
        >>> dfa = extract_dfa(net, "01", empty=True)
        >>> dfa.num_states, dfa.report.converged
        (4, True)

        A recurrent network scores every prefix in one forward (``model`` a package
        ``RNNClassifier``, ``encode`` a user's function from strings to token ids):

        >>> def prefix_score(words):  # doctest: +SKIP
        ...     out, _ = model.rnn(model.embedding(encode(words)))
        ...     return model.head(out).softmax(-1)[..., 1]  # (n, T)
        >>> dfa = extract_dfa(prefix_score, "01", prefix_scores=True)  # doctest: +SKIP
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if equivalence not in _EQUIVALENCES:
        raise ValueError(f"equivalence must be one of {_EQUIVALENCES}, got {equivalence!r}")
    if clustering not in ("kmeans", "interval"):
        raise ValueError(f"clustering must be 'kmeans' or 'interval', got {clustering!r}")
    check_int("max_length", max_length, 1)
    check_int("max_states", max_states, 1)
    check_int("max_rounds", max_rounds, 0)
    check_int("samples_per_round", samples_per_round, 1)
    check_int("walks_per_state", walks_per_state, 1)
    check_int("falsify", falsify, 0)
    if (
        isinstance(time_limit, bool)
        or not isinstance(time_limit, (int, float))
        or not math.isfinite(time_limit)
        or time_limit <= 0
    ):
        raise ValueError(f"time_limit must be a finite number of seconds > 0, got {time_limit!r}")
    longer_length = 2 * max_length if longer_length is None else longer_length
    if longer_length and longer_length <= max_length:
        raise ValueError(f"longer_length must exceed max_length={max_length}, got {longer_length}")
    if reference is not None and not (isinstance(reference, DFA) or callable(reference)):
        raise TypeError(
            f"reference must be a DFA or a callable word -> bool, got {type(reference).__name__}"
        )

    with evaluation_mode(model):
        oracle = make_oracle(
            model, alphabet, vocab, empty, batch_size, prefix_scores=prefix_scores, hints=hints
        )
        symbols = oracle.alphabet
        if isinstance(reference, DFA) and set(reference.alphabet) != set(symbols):
            raise ValueError(
                f"reference has alphabet {list(reference.alphabet)!r}, expected {list(symbols)!r}"
            )
        sample_words = None if samples is None else _encode_samples(samples, symbols)
        rng = random.Random(seed)
        budget = Budget(float(time_limit), max_states, max_rounds)
        partition_parts = clusters = None
        if method == "lstar":
            equivalences: list[Any] = []
            used = []
            if equivalence == "abstraction" and not oracle.has_states:
                raise ValueError(
                    "equivalence='abstraction' needs the network's recurrent state: a package "
                    "RNNClassifier, unidirectional, with pooling='last'"
                )
            abstraction = None
            if equivalence in ("auto", "abstraction") and oracle.has_states:
                abstraction = AbstractionEquivalence(
                    oracle,  # type: ignore[arg-type]
                    budget,
                    seeds=sample_words or (),
                )
                equivalences.append(abstraction)
                used.append("abstraction")
            if equivalence == "wmethod":
                equivalences.append(
                    WMethodEquivalence(oracle, max_length, walks_per_state, rng, sample_words or ())
                )
                used.append("wmethod")
            if equivalence in ("auto", "sampling"):
                equivalences.append(
                    SamplingEquivalence(
                        oracle, max_length, samples_per_round, rng, sample_words or ()
                    )
                )
                used.append("sampling")
            score_words: list[Indices] = []

            def score(dfa: DFA) -> float:
                # held-out words to rank hypotheses when a cap stops the learner
                if not score_words:
                    words, _ = dfa._sample_indices(
                        500, 1, max_length, False, random.Random(seed + 7)
                    )
                    score_words.extend(tuple(w) for w in words)
                    score_words.extend(sample_words or ())
                return _balanced(dfa._accepts_indices(score_words), oracle.labels(score_words))

            result = lstar(oracle, equivalences, budget, score)
            dfa, rounds, converged, stopped_by = (
                result.dfa,
                result.rounds,
                result.converged,
                result.stopped_by,
            )
            sizes = [h.num_states for h in result.hypotheses]
            equivalence_used: str | None = "+".join(used)
            if abstraction is not None:
                partition_parts = abstraction.partition.num_parts
        else:
            if not oracle.has_states:
                raise ValueError(
                    "method='quantize' needs the network's recurrent state: pass a package "
                    "RNNClassifier (unidirectional, pooling='last'), or use method='lstar'"
                )
            if sample_words is None:
                words, _ = DFA(symbols, [[0] * len(symbols)], set())._sample_indices(
                    1000, 1, max_length, False, rng
                )
                sample_words = [tuple(w) for w in words]
            result_q = quantize(
                oracle,
                sample_words,
                budget,
                clustering,
                n_clusters,
                seed=seed,  # type: ignore[arg-type]
            )
            dfa, rounds, converged, stopped_by = result_q.dfa, 0, False, result_q.stopped_by
            sizes, equivalence_used, clusters = [], None, result_q.clusters
        empty_label = oracle.empty_label
        if empty == "auto":
            dfa, empty_label = _settle_empty(dfa, oracle)
        seconds = budget.elapsed()
        report = ExtractionReport(
            method=method,
            equivalence=equivalence_used,
            white_box=oracle.has_states,
            seconds=seconds,
            queries=oracle.queries,
            calls=oracle.calls,
            steps=oracle.steps,
            rounds=rounds,
            states=dfa.num_states,
            converged=converged,
            stopped_by=stopped_by,
            empty_label=empty_label,
            hypothesis_sizes=sizes,
            partition_parts=partition_parts,
            clusters=clusters,
        )
        if falsify:
            from captum_rnn.rules._fidelity import fidelity_with_oracle

            half = max(1, falsify // 2) if longer_length else falsify
            start = time.perf_counter()
            report.fidelity = fidelity_with_oracle(
                dfa,
                oracle,
                reference,
                (1, max_length),
                (max_length + 1, longer_length) if longer_length else None,
                half,
                seed + 1,
                held_out=held_out,
            )
            report.falsification_seconds = time.perf_counter() - start
    dfa.report = report
    return dfa


def _balanced(predicted: np.ndarray, truth: np.ndarray) -> float:
    scores = [
        float((predicted[truth == c] == c).mean()) for c in (False, True) if (truth == c).any()
    ]
    return float(np.mean(scores)) if scores else 1.0
