"""The randomised W-method equivalence oracle and the automaton facts it stands on:
access words and a characterization set, checked against brute force."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captum_rnn.data import tomita_accepts
from captum_rnn.rules import DFA, extract_dfa, tomita_dfa
from captum_rnn.rules._equivalence import WMethodEquivalence
from captum_rnn.rules._oracle import CallableOracle


@st.composite
def dfas(draw):
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 3))
    table = [[draw(st.integers(0, n - 1)) for _ in range(k)] for _ in range(n)]
    accepting = {q for q in range(n) if draw(st.booleans())}
    return DFA("abc"[:k], table, accepting, draw(st.integers(0, n - 1)))


def run(dfa, indices, state):
    for a in indices:
        state = dfa.transitions[state][a]
    return state


def words(k, max_length):
    for length in range(max_length + 1):
        yield from itertools.product(range(k), repeat=length)


@settings(max_examples=150, deadline=None)
@given(dfas())
def test_access_words_are_shortest_and_reach_their_state(dfa):
    access = dfa._access_words()
    k, n = len(dfa.alphabet), dfa.num_states
    shortest = {}
    for w in words(k, n):
        shortest.setdefault(run(dfa, w, dfa.start), w)
    assert set(access) == set(shortest)  # exactly the reachable states
    for q, w in access.items():
        assert run(dfa, w, dfa.start) == q and len(w) == len(shortest[q])


@settings(max_examples=150, deadline=None)
@given(dfas())
def test_separating_suffixes_tell_every_inequivalent_pair_apart_shortest_first(dfa):
    suffixes = dfa._separating_suffixes()
    assert suffixes[0] == () and len(set(suffixes)) == len(suffixes)
    n = dfa.num_states
    for p, q in itertools.combinations(range(n), 2):
        shortest = dfa.distinguishing_suffix(p, q)  # brute-force-tested elsewhere
        separating = [
            w
            for w in suffixes
            if (run(dfa, w, p) in dfa.accepting) != (run(dfa, w, q) in dfa.accepting)
        ]
        if shortest is None:
            assert not separating
        else:
            assert separating and min(map(len, separating)) == len(shortest)
    # nothing beyond one shortest suffix per pair
    assert len(suffixes) <= 1 + n * (n - 1) // 2


def prefix_truth(grammar):
    def score(words):
        width = max(len(w) for w in words)
        return [
            [tomita_accepts(grammar, w[: t + 1]) if t < len(w) else 0 for t in range(width)]
            for w in words
        ]

    return score


@pytest.mark.parametrize("grammar", range(1, 8))
def test_wmethod_with_prefix_scores_recovers_every_tomita_language(grammar):
    dfa = extract_dfa(
        prefix_truth(grammar),
        "01",
        prefix_scores=True,
        equivalence="wmethod",
        empty=True,
        falsify=500,
        seed=grammar,
    )
    assert dfa.equivalent(tomita_dfa(grammar)) is None
    assert dfa.report.equivalence == "wmethod" and dfa.report.converged
    assert dfa.report.fidelity.in_range.fidelity == 1.0


def test_wmethod_per_word_tests_far_fewer_words_than_sampling():
    def truth(words):
        return [tomita_accepts(4, w) for w in words]

    wm = extract_dfa(truth, "01", equivalence="wmethod", empty=True, falsify=0)
    sampled = extract_dfa(truth, "01", empty=True, falsify=0)
    assert wm.equivalent(tomita_dfa(4)) is None and sampled.equivalent(tomita_dfa(4)) is None
    assert wm.report.queries < sampled.report.queries / 2


def test_wmethod_walks_each_access_word_once_over_the_run_and_rechecks_old_words():
    sent = []

    def truth(words):
        sent.append(list(words))
        return [tomita_accepts(4, w) for w in words]

    oracle = CallableOracle(truth, "01", True, 10_000)
    eq = WMethodEquivalence(oracle, 15, 7, random.Random(0))
    one_state = DFA("01", [[0, 0]], accepting={0})  # accepts everything: wrong
    first = eq(one_state)
    assert first is not None and not tomita_accepts(4, "".join("01"[a] for a in first))
    assert len(sent) == 1 and len(sent[0]) <= 7  # 7 walks from the one access word
    assert all(len(w) <= 15 for w in sent[0])
    # the same hypothesis again: no new walks, the old words find the mistake for free
    assert eq(one_state) == first and len(sent) == 1
    truth_dfa = tomita_dfa(4)
    assert eq(truth_dfa) is None
    # the true automaton has 4 access words, one of them already walked
    assert len(sent) == 2 and len(sent[1]) <= 3 * 7


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_walks_per_state_is_checked(value):
    with pytest.raises(ValueError, match="walks_per_state"):
        extract_dfa(lambda w: [1] * len(w), "01", equivalence="wmethod", walks_per_state=value)
