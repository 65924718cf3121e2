"""Rule fidelity: class-balanced, in range and longer, accuracy beside the network's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_rnn.data import tomita_accepts
from captum_rnn.rules import DFA, FidelityReport, dfa_fidelity, fidelity, tomita_dfa

REJECT_ALL = DFA("01", [[0, 0]], set())


def tomita_net(grammar, wrong_beyond=None):
    """A perfect recogniser, or one that flips its answer on words longer than a bound."""

    def score(words):
        out = [tomita_accepts(grammar, w) for w in words]
        if wrong_beyond is not None:
            out = [y != (len(w) > wrong_beyond) for y, w in zip(out, words, strict=True)]
        return np.array(out)

    return score


def test_fidelity_function():
    assert fidelity([0, 0, 0, 0], [0, 0, 0, 1]) == 0.5
    assert fidelity([0, 0, 0, 0], [0, 0, 0, 1], balanced=False) == 0.75
    assert fidelity(torch.tensor([1, 0]), np.array([1, 0])) == 1.0
    with pytest.raises(ValueError, match="labels"):
        fidelity([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        fidelity([], [])


def test_reject_everything_is_exposed_by_class_balance():
    net = tomita_net(1)
    # uniform strings almost never belong to 1*: plain agreement looks excellent
    words, _ = tomita_dfa(1).sample(2000, 1, 20, balanced=False, seed=0)
    uniform = fidelity(REJECT_ALL.accepts_batch(words), net(words), balanced=False)
    assert uniform > 0.9
    report = dfa_fidelity(REJECT_ALL, net, reference=tomita_dfa(1), n=400)
    assert report.in_range.fidelity == pytest.approx(0.5)
    assert report.in_range.dfa_accuracy == pytest.approx(0.5)
    assert report.in_range.network_accuracy == 1.0
    assert report.in_range.positive_rate == pytest.approx(0.5)
    # without a reference the set mixes automaton-balanced and uniform words and the
    # macro-average over the network's classes still gives 0.5
    blind = dfa_fidelity(REJECT_ALL, net, n=400)
    assert blind.in_range.fidelity == pytest.approx(0.5) and blind.in_range.dfa_accuracy is None


def test_perfect_automaton_and_longer_split():
    report = dfa_fidelity(
        tomita_dfa(4),
        tomita_net(4),
        reference=tomita_dfa(4),
        max_length=10,
        longer_length=25,
        n=300,
    )
    assert isinstance(report, FidelityReport)
    assert report.fidelity == 1.0 and report.longer.fidelity == 1.0
    assert (report.in_range.min_length, report.in_range.max_length) == (1, 10)
    assert (report.longer.min_length, report.longer.max_length) == (11, 25)
    assert report.num_states == report.reference_states == 4
    assert report.counterexamples == []
    assert "fidelity 1.0000" in str(report)


def test_automaton_more_accurate_than_its_network():
    net = tomita_net(4, wrong_beyond=12)  # generalises badly beyond length 12
    report = dfa_fidelity(tomita_dfa(4), net, reference=tomita_dfa(4), max_length=10, n=300)
    assert report.in_range.fidelity == 1.0
    assert report.longer.dfa_accuracy == 1.0 and report.longer.network_accuracy < 0.5
    assert report.longer.fidelity < 0.5
    cex = report.counterexamples
    assert cex and all(len(c.word) > 12 for c in cex)
    assert all(c.network != c.dfa and c.truth == c.dfa for c in cex)
    assert [len(c.word) for c in cex] == sorted(len(c.word) for c in cex)


def test_callable_reference_and_alphabet_order():
    reference = lambda w: tomita_accepts(2, w)  # noqa: E731
    report = dfa_fidelity(tomita_dfa(2), tomita_net(2), alphabet="10", reference=reference, n=200)
    assert report.in_range.dfa_accuracy == 1.0
    assert 0.3 < report.in_range.positive_rate < 0.7  # balanced by the reference


def test_bad_input():
    with pytest.raises(ValueError, match="n must be"):
        dfa_fidelity(tomita_dfa(1), tomita_net(1), n=0)
    with pytest.raises(ValueError, match="alphabet"):
        dfa_fidelity(tomita_dfa(1), tomita_net(1), alphabet="ab")
    with pytest.raises(ValueError, match="alphabet"):
        dfa_fidelity(tomita_dfa(1), tomita_net(1), reference=DFA("ab", [[0, 0]], {0}))
    with pytest.raises(TypeError, match="reference"):
        dfa_fidelity(tomita_dfa(1), tomita_net(1), reference=3)
    with pytest.raises(TypeError, match="dfa"):
        dfa_fidelity("01", tomita_net(1))
    with pytest.raises(ValueError, match="longer_length"):
        dfa_fidelity(tomita_dfa(1), tomita_net(1), max_length=10, longer_length=5)
