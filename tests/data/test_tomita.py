import itertools
import re

import pytest
import torch

from captum_rnn.data import (
    TOMITA_DESCRIPTIONS,
    SequenceDataset,
    tomita,
    tomita_accepts,
    tomita_dataset,
    tomita_vocabulary,
)

# Independent reference implementations, written from the definitions.


def _blocks(s):
    return [(m.group()[0], len(m.group())) for m in re.finditer(r"0+|1+", s)]


def _ref3(s):
    """No maximal odd block of 1s followed anywhere later by a maximal odd block of 0s."""
    blocks = _blocks(s)
    for i, (ch, size) in enumerate(blocks):
        if ch == "1" and size % 2:
            if any(c == "0" and k % 2 for c, k in blocks[i + 1 :]):
                return False
    return True


def _ref3_immediately(s):
    blocks = _blocks(s)
    return not any(
        a == "1" and m % 2 and b == "0" and k % 2
        for (a, m), (b, k) in zip(blocks, blocks[1:], strict=False)
    )


REFERENCE = {
    1: lambda s: re.fullmatch(r"1*", s) is not None,
    2: lambda s: re.fullmatch(r"(10)*", s) is not None,
    3: _ref3,
    4: lambda s: re.search(r"000", s) is None,
    5: lambda s: s.count("0") % 2 == 0 and s.count("1") % 2 == 0,
    6: lambda s: (s.count("0") - s.count("1")) % 3 == 0,
    7: lambda s: re.fullmatch(r"0*1*0*1*", s) is not None,
}
MINIMAL_STATES = {1: 2, 2: 3, 3: 5, 4: 4, 5: 4, 6: 3, 7: 5}


def _all_strings(max_length):
    for n in range(max_length + 1):
        for chars in itertools.product("01", repeat=n):
            yield "".join(chars)


ALL_UP_TO_10 = list(_all_strings(10))


@pytest.mark.parametrize("grammar", range(1, 8))
def test_membership_matches_reference_exhaustively(grammar):
    ref = REFERENCE[grammar]
    wrong = [s for s in ALL_UP_TO_10 if tomita_accepts(grammar, s) != ref(s)]
    assert wrong == []


@pytest.mark.parametrize("grammar", range(1, 8))
def test_minimal_automaton_sizes_from_the_design(grammar):
    # Myhill-Nerode classes of the reference language: prefixes up to length 6,
    # distinguished by suffixes up to length 6.
    ref = REFERENCE[grammar]
    suffixes = list(_all_strings(6))
    classes = {tuple(ref(p + x) for x in suffixes) for p in _all_strings(6)}
    assert len(classes) == MINIMAL_STATES[grammar]


def test_grammar_3_anywhere_later_vs_immediately_followed():
    assert tomita_accepts(3, "100110") is False
    assert _ref3_immediately("100110") is True
    first = next(s for s in ALL_UP_TO_10 if _ref3(s) != _ref3_immediately(s))
    assert first == "100110"


def test_known_members():
    assert tomita_accepts(2, "") and tomita_accepts(2, "1010") and not tomita_accepts(2, "0101")
    assert tomita_accepts(1, "") and not tomita_accepts(1, "110")
    assert tomita_accepts(7, "0011001") and not tomita_accepts(7, "10101")


@pytest.mark.parametrize("grammar", [0, 8, -1, "1", 1.0, True])
def test_bad_grammar(grammar):
    with pytest.raises(ValueError, match="grammar"):
        tomita_accepts(grammar, "01")
    with pytest.raises(ValueError, match="grammar"):
        tomita(grammar, 4)


@pytest.mark.parametrize("string", ["012", "ab", "0 1", "1\n"])
def test_bad_characters(string):
    with pytest.raises(ValueError, match="only '0' and '1'"):
        tomita_accepts(4, string)


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError):
        tomita_accepts(4, 101)


@pytest.mark.parametrize("grammar", range(1, 8))
def test_balanced_sampling(grammar):
    ref = REFERENCE[grammar]
    strings, labels = tomita(grammar, 301, min_length=1, max_length=12, seed=5)
    assert len(strings) == len(labels) == 301
    assert sum(labels) == 150
    assert all(ref(s) == bool(y) for s, y in zip(strings, labels, strict=True))
    assert all(1 <= len(s) <= 12 for s in strings)
    # every length where the class has a string is used
    feasible = {1: set(), 0: set()}
    for s in ALL_UP_TO_12:
        if s:
            feasible[int(ref(s))].add(len(s))
    for label in (0, 1):
        used = {len(s) for s, y in zip(strings, labels, strict=True) if y == label}
        assert used == feasible[label]
    assert labels[:20] != sorted(labels[:20])  # classes interleaved, not blocked
    assert tomita(grammar, 301, max_length=12, seed=5) == (strings, labels)


ALL_UP_TO_12 = list(_all_strings(12))


def test_sparse_languages_use_long_positives():
    strings, labels = tomita(2, 200, min_length=1, max_length=40, seed=0)
    long_positives = [s for s, y in zip(strings, labels, strict=True) if y and len(s) >= 30]
    assert long_positives and all(s == "10" * (len(s) // 2) for s in long_positives)
    strings, labels = tomita(7, 200, min_length=30, max_length=40, seed=0)
    assert sum(labels) == 100
    assert (
        len({s for s, y in zip(strings, labels, strict=True) if y}) > 90
    )  # varied, not one pattern


def test_seeds_differ():
    assert tomita(4, 50, seed=0) != tomita(4, 50, seed=1)


def test_unbalanced_sampling_is_uniform_and_mostly_negative_for_sparse():
    strings, labels = tomita(1, 400, min_length=5, max_length=20, balanced=False, seed=0)
    assert sum(labels) < 10
    assert all(REFERENCE[1](s) == bool(y) for s, y in zip(strings, labels, strict=True))
    assert tomita(1, 400, min_length=5, max_length=20, balanced=False, seed=0)[0] == strings


def test_empty_string_allowed_with_min_length_zero():
    strings, labels = tomita(2, 10, min_length=0, max_length=0 + 2, seed=0)
    assert all(REFERENCE[2](s) == bool(y) for s, y in zip(strings, labels, strict=True))
    assert "" in strings


def test_infeasible_ranges():
    with pytest.raises(ValueError, match="no positive"):
        tomita(2, 10, min_length=3, max_length=3)
    with pytest.raises(ValueError, match="no negative"):
        tomita(4, 10, min_length=0, max_length=0)
    with pytest.raises(ValueError, match="max_length"):
        tomita(4, 10, min_length=5, max_length=4)
    with pytest.raises(ValueError, match="n must"):
        tomita(4, -1)
    assert tomita(4, 0) == ([], [])


def test_dataset_and_vocabulary():
    vocab = tomita_vocabulary()
    assert vocab.encode(["0", "1"]) == [2, 3]
    ds = tomita_dataset(5, 40, min_length=2, max_length=8, seed=3)
    strings, labels = tomita(5, 40, min_length=2, max_length=8, seed=3)
    assert isinstance(ds, SequenceDataset) and len(ds) == 40
    for (ids, target), s, y in zip(ds, strings, labels, strict=True):
        assert ids.dtype == torch.long and "".join(vocab.decode(ids)) == s
        assert target.item() == y
    with pytest.raises(ValueError, match="min_length"):
        tomita_dataset(2, 4, min_length=0)


def test_descriptions():
    assert sorted(TOMITA_DESCRIPTIONS) == list(range(1, 8))
    assert "anywhere later" in TOMITA_DESCRIPTIONS[3]


def test_positives_are_uniform_within_a_length():
    strings, labels = tomita(5, 2000, min_length=4, max_length=4, seed=0)
    positives = [s for s, y in zip(strings, labels, strict=True) if y]
    members = {s for s in ALL_UP_TO_10 if len(s) == 4 and REFERENCE[5](s)}
    counts = {s: positives.count(s) for s in members}
    assert set(positives) == members and len(members) == 8
    assert all(80 <= c <= 170 for c in counts.values())  # ~125 each
