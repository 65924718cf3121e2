"""Per-word black-box L*: few network calls, words answered once, the same exact automata."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captum_rnn.data import tomita_accepts
from captum_rnn.rules import DFA, extract_dfa, tomita_dfa
from captum_rnn.rules._equivalence import SamplingEquivalence, WMethodEquivalence
from captum_rnn.rules._lstar import ObservationTable
from captum_rnn.rules._oracle import make_oracle


def truth(grammar, calls=None):
    """An exact per-word 'network' for a Tomita language; records each batch it gets."""

    def score(words):
        if calls is not None:
            calls.append(list(words))
        return [tomita_accepts(grammar, w) for w in words]

    return score


@pytest.mark.parametrize("grammar", range(1, 8))
def test_per_word_extraction_recovers_every_tomita_language(grammar):
    calls = []
    dfa = extract_dfa(truth(grammar, calls), "01", empty=True, falsify=0, seed=grammar)
    assert dfa.equivalent(tomita_dfa(grammar)) is None
    assert dfa.num_states == tomita_dfa(grammar).num_states
    assert dfa.report.converged and dfa.report.calls == len(calls)
    # every word reaches the network once: answers are cached across table and tests
    sent = [w for batch in calls for w in batch]
    assert len(sent) == len(set(sent)) == dfa.report.queries


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 10**6))
def test_a_wrong_hypothesis_gets_a_real_counterexample(language, guess, seed):
    oracle = make_oracle(truth(language), "01", empty=True)
    eq = SamplingEquivalence(oracle, 12, 1000, random.Random(seed))
    hypothesis = tomita_dfa(guess)
    word = eq(hypothesis)
    if language == guess:
        assert word is None
        return
    # Tomita languages differ on a word of at most 6 symbols: sampling finds one
    assert word is not None and 1 <= len(word) <= 12
    text = "".join(map(str, word))
    assert tomita_accepts(language, text) != hypothesis.accepts(text)


def test_words_answered_before_are_rechecked_without_a_network_call():
    calls = []
    oracle = make_oracle(truth(4, calls), "01", empty=True)
    eq = SamplingEquivalence(oracle, 10, 300, random.Random(0))
    assert eq(tomita_dfa(4)) is None  # right: every stage is asked
    asked = len(calls)
    assert asked >= 1
    # a hypothesis wrong on a word the network already answered costs no call
    wrong = tomita_dfa(3)
    word = eq(wrong)
    assert len(calls) == asked and word is not None
    assert tomita_accepts(4, "".join(map(str, word))) != wrong.accepts("".join(map(str, word)))


def test_the_first_stage_rides_along_with_the_table_fill():
    calls = []
    oracle = make_oracle(truth(4, calls), "01", empty=True)
    eq = SamplingEquivalence(oracle, 10, 200, random.Random(1))
    table = ObservationTable(oracle, oracle.alphabet)
    prefetched = eq.prefetch()
    assert 0 < len(prefetched) <= SamplingEquivalence.first_stage
    table.fill(prefetched)
    texts = {"".join(map(str, w)) for w in prefetched}
    assert len(calls) == 1 and texts <= set(calls[0])
    # the query tests the prefetched words free, then draws the rest in one call
    assert eq(tomita_dfa(4)) is None
    assert len(calls) == 2
    assert not texts & set(calls[1])


def test_the_callers_words_are_rechecked_but_do_not_replace_fresh_tests():
    calls = []
    oracle = make_oracle(truth(4, calls), "01", empty=True)
    rng = random.Random(3)
    extra = list({tuple(rng.randrange(2) for _ in range(rng.randint(1, 12))) for _ in range(1500)})
    eq = SamplingEquivalence(oracle, 12, 1000, random.Random(2), extra=extra)
    assert eq(tomita_dfa(4)) is None
    # 1500 known words did not stand in for the 1000 drawn ones: a second stage was drawn
    assert len(calls) == 2 and len(calls[1]) > 100
    assert eq._credit == len(eq._known) - len(extra)
    # the caller's words and the drawn ones are rechecked free against a new hypothesis
    del calls[:]
    assert eq(tomita_dfa(3)) is not None and not calls


def test_every_answered_word_is_a_free_test_of_the_next_hypothesis():
    calls = []
    oracle = make_oracle(truth(2, calls), "01", empty=True)
    oracle.labels([(0,), (1,), (1, 0), (1, 1)])  # membership queries: "10" is accepted
    words, labels = oracle.answered()
    assert words[0] == () and labels.tolist() == [True, False, False, True, False]
    calls.clear()
    reject_all = DFA("01", [[0, 0]], accepting=set())
    for eq in (
        SamplingEquivalence(oracle, 10, 1000, random.Random(0)),
        WMethodEquivalence(oracle, 10, 25, random.Random(0)),
    ):
        # the empty word (accepted) is the shortest answered word the hypothesis gets wrong
        assert eq(reject_all) == () and not calls
