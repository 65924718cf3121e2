"""DFA: minimize, equivalent and accepts against brute-force enumeration; I/O; plots."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
from matplotlib.figure import Figure

from captum_rnn.data import tomita_accepts
from captum_rnn.rules import DFA, tomita_dfa


def random_dfa(rng, n, k=2):
    table = [[rng.randrange(n) for _ in range(k)] for _ in range(n)]
    accepting = {q for q in range(n) if rng.random() < 0.4}
    return DFA("ab"[:k] if k <= 2 else "abc"[:k], table, accepting, rng.randrange(n))


def words(alphabet, max_length):
    for length in range(max_length + 1):
        for w in itertools.product(alphabet, repeat=length):
            yield "".join(w)


def simulate(dfa, word):
    q = dfa.start
    for ch in word:
        q = dfa.transitions[q][dfa.alphabet.index(ch)]
    return q in dfa.accepting


def nerode_classes(dfa):
    """Number of distinct futures among reachable states (exact for depth >= n)."""
    reach = {dfa.run(w) for w in words(dfa.alphabet, dfa.num_states)}
    futures = {
        tuple(
            simulate(DFA(dfa.alphabet, dfa.transitions, dfa.accepting, q), w)
            for w in words(dfa.alphabet, dfa.num_states)
        )
        for q in reach
    }
    return len(futures)


@pytest.mark.parametrize("seed", range(25))
def test_minimize_matches_brute_force(seed):
    rng = random.Random(seed)
    dfa = random_dfa(rng, rng.randint(1, 7), k=rng.choice([2, 3]))
    small = dfa.minimize()
    assert all(small.accepts(w) == simulate(dfa, w) for w in words(dfa.alphabet, 7))
    assert small.num_states == nerode_classes(dfa)
    assert small.minimize() == small  # canonical and idempotent
    assert dfa.accepts_batch(list(words(dfa.alphabet, 5))).tolist() == [
        simulate(dfa, w) for w in words(dfa.alphabet, 5)
    ]


def test_minimal_automata_of_one_language_are_identical():
    rng = random.Random(3)
    for _ in range(10):
        dfa = random_dfa(rng, 5)
        # a bigger automaton of the same language: two copies, crossing on symbol a
        n = dfa.num_states
        table = [list(row) for row in dfa.transitions] + [list(row) for row in dfa.transitions]
        for q in range(n):
            table[q][0] += n
        accepting = set(dfa.accepting) | {q + n for q in dfa.accepting}
        bigger = DFA(dfa.alphabet, table, accepting, dfa.start)
        assert bigger.minimize() == dfa.minimize()
        assert bigger.equivalent(dfa) is None


@pytest.mark.parametrize("seed", range(25))
def test_equivalent_returns_a_shortest_distinguishing_word(seed):
    rng = random.Random(100 + seed)
    a = random_dfa(rng, rng.randint(1, 5))
    b = random_dfa(rng, rng.randint(1, 5))
    bound = a.num_states + b.num_states
    differing = [w for w in words("ab", bound) if simulate(a, w) != simulate(b, w)]
    found = a.equivalent(b)
    if not differing:
        assert found is None
    else:
        assert found is not None
        assert len(found) == len(differing[0])
        assert a.accepts(found) != b.accepts(found)
    assert a.equivalent(a) is None


def test_equivalent_accepts_reordered_alphabet_and_rejects_other_symbols():
    a = DFA("01", [[1, 0], [1, 1]], {0})
    b = DFA("10", [[0, 1], [1, 1]], {0})  # the same language, symbols in another order
    assert a.equivalent(b) is None
    with pytest.raises(ValueError, match="alphabet"):
        a.equivalent(DFA("ab", [[0, 0]], {0}))


def test_tomita_reference_automata():
    sizes = [tomita_dfa(g).num_states for g in range(1, 8)]
    assert sizes == [2, 3, 5, 4, 4, 3, 5]
    for g in range(1, 8):
        dfa = tomita_dfa(g)
        assert all(dfa.accepts(w) == tomita_accepts(g, w) for w in words("01", 10))
        assert dfa.minimize() == dfa
    # the "immediately followed" variant of language 3 first differs on 100110
    assert not tomita_dfa(3).accepts("100110")
    with pytest.raises(ValueError, match="grammar"):
        tomita_dfa(8)


def test_sample_is_class_balanced_and_seeded():
    dfa = tomita_dfa(2)
    words_, labels = dfa.sample(200, 2, 12, seed=4)
    assert sum(labels) == 100
    assert all(2 <= len(w) <= 12 for w in words_)
    assert [tomita_accepts(2, w) for w in words_] == [bool(y) for y in labels]
    assert dfa.sample(200, 2, 12, seed=4) == (words_, labels)
    # a language with no positive word in range: all negatives, no error
    none = DFA("01", [[0, 0]], set())
    assert sum(none.sample(10, seed=0)[1]) == 0


def test_accepts_checks_symbols_and_tuple_alphabets():
    dfa = DFA(["go", "stop"], {0: {"go": 1, "stop": 0}, 1: {"go": 1, "stop": 0}}, {1})
    assert dfa.accepts(["stop", "go"]) and not dfa.accepts(["go", "stop"])
    assert dfa.equivalent(DFA(["go", "stop"], [[0, 0]], set())) == ("go",)
    with pytest.raises(ValueError, match=r"sequence\[1\]"):
        dfa.accepts(["go", "jump"])


@pytest.mark.parametrize(
    "args, match",
    [
        (("01", [[0]], {0}), "entries"),
        (("01", [[0, 2]], {0}), "not a state"),
        (("01", [[0, 0]], {3}), "accepting"),
        (("00", [[0, 0]], {0}), "duplicate"),
        (("", [], set()), "at least one"),
        (("01", {0: {"0": 0}}, {0}), "complete"),
    ],
)
def test_constructor_errors(args, match):
    with pytest.raises(ValueError, match=match):
        DFA(*args)


def test_json_round_trip_and_bad_files(tmp_path):
    dfa = tomita_dfa(7)
    path = tmp_path / "t7.json"
    dfa.save(path)
    assert DFA.load(path) == dfa
    assert json.loads(path.read_text())["format"] == "captum_rnn.DFA"
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(ValueError, match="JSON"):
        DFA.load(tmp_path / "bad.json")
    data = dfa.to_dict()
    data["transitions"][0][0] = 99
    with pytest.raises(ValueError, match="not a state"):
        DFA.from_dict(data)
    with pytest.raises(ValueError, match="format"):
        DFA.from_dict({"format": "pickle"})


def test_to_dot_and_plot():
    dfa = DFA("01", [[1, 0], [1, 1]], {0}, state_names=['say "hi"', "sink"])
    dot = dfa.to_dot()
    assert 'label="say \\"hi\\""' in dot and "doublecircle" in dot
    assert '"q1" -> "q1" [label="0,1"]' in dot
    fig = tomita_dfa(3).plot(title="Tomita 3")
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"0", "1", "4", "0,1", "start"} <= texts
    circles = [p for p in fig.axes[0].patches if type(p).__name__ == "Circle"]
    assert len(circles) == 5 + len(tomita_dfa(3).accepting)  # double ring when accepting


def test_complement_and_vectorised_runs_agree():
    dfa = tomita_dfa(5)
    comp = dfa.complement()
    ws = list(words("01", 6))
    assert (comp.accepts_batch(ws) == ~dfa.accepts_batch(ws)).all()
    assert np.array_equal(dfa.accepts_batch(ws), [tomita_accepts(5, w) for w in ws])
