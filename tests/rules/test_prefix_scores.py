"""Black-box extraction from a callable that scores every prefix in one forward."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from captum_rnn.data import tomita_accepts
from captum_rnn.rules import DFA, extract_dfa, tomita_dfa
from captum_rnn.rules._equivalence import SamplingEquivalence, _first_wrong_prefix
from captum_rnn.rules._oracle import CallableOracle, make_oracle


def prefix_truth(grammar, calls=None):
    """An exact 'network' for a Tomita language that labels every prefix: (n, T)."""

    def score(words):
        if calls is not None:
            calls.append(list(words))
        width = max(len(w) for w in words)
        out = np.zeros((len(words), width))
        for i, w in enumerate(words):
            out[i, : len(w)] = [tomita_accepts(grammar, w[: t + 1]) for t in range(len(w))]
        return out

    return score


@pytest.mark.parametrize("grammar", [2, 3, 5])
def test_prefix_scores_recover_the_language(grammar):
    calls = []
    dfa = extract_dfa(
        prefix_truth(grammar, calls), "01", prefix_scores=True, empty=True, reference=None
    )
    assert dfa.equivalent(tomita_dfa(grammar)) is None
    assert dfa.report.converged and not dfa.report.white_box
    assert dfa.report.fidelity.in_range.fidelity == 1.0
    # no word is sent that is a prefix of another word of the same call
    for words in calls:
        for a in words:
            assert not any(b != a and b.startswith(a) for b in words)


def test_prefix_mode_sends_fewer_words_and_agrees_with_final_scores():
    final_calls, prefix_calls = [], []

    def final(words):
        final_calls.append(len(words))
        return [tomita_accepts(4, w) for w in words]

    a = extract_dfa(final, "01", empty=True, falsify=0, seed=1)
    b = extract_dfa(prefix_truth(4, prefix_calls), "01", prefix_scores=True, empty=True, falsify=0)
    assert a.equivalent(b) is None and b.equivalent(tomita_dfa(4)) is None
    assert sum(map(len, prefix_calls)) < sum(final_calls) / 3


def test_prefix_oracle_caches_every_prefix_and_reports_counts():
    calls = []
    oracle = make_oracle(prefix_truth(7, calls), "01", empty=False, prefix_scores=True)
    assert isinstance(oracle, CallableOracle) and oracle.prefix_free
    words = [(0, 1, 1), (0, 1), (1,), (1, 0, 1, 0)]
    got = oracle.labels(words)
    assert got.tolist() == [tomita_accepts(7, "".join(map(str, w))) for w in words]
    # (0, 1) is a prefix of (0, 1, 1): only the maximal words are sent
    assert sorted(calls[0]) == ["011", "1010"]
    n_calls = oracle.calls
    oracle.labels([(1, 0, 1), (1, 0)])  # prefixes of a word already asked: no call
    assert oracle.calls == n_calls
    matrix = oracle.prefix_labels([(1, 0, 1, 0), (0,)])
    assert matrix.shape == (2, 4)
    assert matrix[0].tolist() == [tomita_accepts(7, "1010"[: t + 1]) for t in range(4)]
    assert matrix[1].tolist() == [tomita_accepts(7, "0"), False, False, False]


def test_first_wrong_prefix_is_the_shortest_disagreement():
    hypothesis = DFA("01", [[0, 0]], {0})  # accepts everything
    words = [(1, 1, 0), (0, 0, 0), (0, 1)]
    network = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=bool)  # (0, 1) rejected
    assert _first_wrong_prefix(hypothesis, words, network) == (0, 1)
    network[2, 1] = True
    assert _first_wrong_prefix(hypothesis, words, network) == (0, 0, 0)
    network[:, 2] = [True, True, False]  # past the end of (0, 1): ignored
    assert _first_wrong_prefix(hypothesis, words, network) is None


def test_sampling_equivalence_in_prefix_mode_finds_a_counterexample():
    oracle = make_oracle(prefix_truth(1), "01", empty=True, prefix_scores=True)
    accept_all = DFA("01", [[0, 0]], {0})
    eq = SamplingEquivalence(oracle, 15, 1000, random.Random(0))
    cex = eq(accept_all)
    assert cex == (0,)  # the shortest word outside 1*
    assert eq(tomita_dfa(1)) is None


def test_prefix_scores_bad_input():
    with pytest.raises(ValueError, match="prefix_scores=True"):
        extract_dfa(lambda words: np.zeros(len(words)), "01", prefix_scores=True)
    with pytest.raises(ValueError, match="prefix_scores=True"):
        extract_dfa(prefix_truth(1), "01", prefix_scores=True, empty="network")
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="prefix_scores"):
        extract_dfa(model, {"0": 0, "1": 1}, prefix_scores=True)
    with pytest.raises(TypeError, match="prefix_scores"):
        extract_dfa(prefix_truth(1), "01", prefix_scores="yes")
