"""The seven Tomita regular languages over {"0", "1"}, with exact ground truth.

Definitions follow Weiss, Goldberg and Yahav (2018); in brackets the number of states
of the minimal complete automaton, sink included:

1. ``1*`` (2)
2. ``(10)*``, the empty string included (3)
3. no maximal odd-length block of 1s is followed, anywhere later, by a maximal
   odd-length block of 0s (5)
4. no ``000`` (4)
5. an even number of 0s and an even number of 1s (4)
6. (number of 0s - number of 1s) divisible by 3 (3)
7. ``0*1*0*1*`` (5)

Membership is decided by those minimal automata. Class-balanced samples draw each
string uniformly among the accepted (or rejected) strings of its length by counting
paths through the automaton, so positives of the sparse languages (1, 2, 7) are
constructed directly rather than found by rejection.
"""

from __future__ import annotations

import random

from captum_rnn._utils.options import check_int

from .._collate import SequenceDataset
from .._vocabulary import Vocabulary

__all__ = [
    "TOMITA_DESCRIPTIONS",
    "tomita",
    "tomita_accepts",
    "tomita_dataset",
    "tomita_vocabulary",
]

TOMITA_DESCRIPTIONS: dict[int, str] = {
    1: "1*",
    2: "(10)*, the empty string included",
    3: "no maximal odd-length block of 1s followed, anywhere later, by a maximal "
    "odd-length block of 0s",
    4: "no 000 substring",
    5: "an even number of 0s and an even number of 1s",
    6: "number of 0s minus number of 1s divisible by 3",
    7: "0*1*0*1*",
}

# Minimal complete DFAs: state -> (next state on "0", next state on "1"); start state 0.
_DFAS: dict[int, tuple[tuple[tuple[int, int], ...], frozenset[int]]] = {
    1: (((1, 0), (1, 1)), frozenset({0})),
    2: (((2, 1), (0, 2), (2, 2)), frozenset({0})),
    # 0: unarmed, not in an odd 1-block; 1: unarmed, in an odd 1-block;
    # 2: an odd 1-block was seen, not in an odd 0-block; 3: ... in an odd 0-block; 4: sink
    3: (((0, 1), (3, 0), (3, 2), (2, 4), (4, 4)), frozenset({0, 1, 2})),
    4: (((1, 0), (2, 0), (3, 0), (3, 3)), frozenset({0, 1, 2})),
    # state = 2 * (zeros % 2) + (ones % 2)
    5: (((2, 1), (3, 0), (0, 3), (1, 2)), frozenset({0})),
    # state = (zeros - ones) % 3
    6: (((1, 2), (2, 0), (0, 1)), frozenset({0})),
    7: (((0, 1), (2, 1), (2, 3), (4, 3), (4, 4)), frozenset({0, 1, 2, 3})),
}


def _check_grammar(grammar: int) -> None:
    if isinstance(grammar, bool) or not isinstance(grammar, int) or grammar not in _DFAS:
        raise ValueError(f"grammar must be an int in 1..7, got {grammar!r}")


def tomita_accepts(grammar: int, string: str) -> bool:
    """Decide exactly whether ``string`` belongs to Tomita language ``grammar``.

    Args:
        grammar: 1 to 7.
        string: a string over the characters ``"0"`` and ``"1"`` (may be empty).

    Returns:
        True if the string is in the language.

    Raises:
        ValueError: for a grammar outside 1..7 or a character other than 0/1.

    Example:
        >>> tomita_accepts(2, "1010"), tomita_accepts(3, "100110")
        (True, False)
    """
    _check_grammar(grammar)
    if not isinstance(string, str):
        raise TypeError(f"string must be a str, got {type(string).__name__}")
    delta, accepting = _DFAS[grammar]
    state = 0
    for position, char in enumerate(string):
        if char == "0":
            state = delta[state][0]
        elif char == "1":
            state = delta[state][1]
        else:
            raise ValueError(f"string[{position}] is {char!r}; only '0' and '1' are allowed")
    return state in accepting


def _path_counts(grammar: int, positive: bool, max_length: int) -> list[list[int]]:
    """counts[k][q]: strings of length k leading from state q to an accepting (or not) state."""
    delta, accepting = _DFAS[grammar]
    states = range(len(delta))
    counts = [[int((q in accepting) == positive) for q in states]]
    for _ in range(max_length):
        prev = counts[-1]
        counts.append([prev[delta[q][0]] + prev[delta[q][1]] for q in states])
    return counts


def _sample(grammar: int, counts: list[list[int]], length: int, rng: random.Random) -> str:
    """Draw uniformly among the strings of ``length`` counted in ``counts``."""
    delta, _ = _DFAS[grammar]
    state, chars = 0, []
    r = rng.randrange(counts[length][0])
    for remaining in range(length, 0, -1):
        on_zero = counts[remaining - 1][delta[state][0]]
        if r < on_zero:
            chars.append("0")
            state = delta[state][0]
        else:
            r -= on_zero
            chars.append("1")
            state = delta[state][1]
    return "".join(chars)


def _spread(lengths: list[int], k: int) -> list[int]:
    """k lengths spread evenly over ``lengths`` (each used k // len or k // len + 1 times)."""
    return [lengths[(i * len(lengths)) // k] for i in range(k)]


def tomita(
    grammar: int,
    n: int,
    min_length: int = 1,
    max_length: int = 20,
    balanced: bool = True,
    seed: int = 0,
) -> tuple[list[str], list[int]]:
    """Sample labelled strings of a Tomita language.

    With ``balanced=True`` exactly ``n // 2`` strings are positive and the rest
    negative; each class spreads its lengths evenly over the lengths in
    ``[min_length, max_length]`` where that class has strings, and each string is
    uniform among the strings of its class and length. Short lengths have few
    distinct strings, so duplicates occur. With ``balanced=False`` lengths and
    characters are uniform, so sparse languages give almost only negatives.

    Args:
        grammar: 1 to 7.
        n: number of strings.
        min_length: shortest length (0 allows the empty string).
        max_length: longest length.
        balanced: sample an exactly class-balanced set.
        seed: seeds a private :class:`random.Random`; same seed, same output.

    Returns:
        ``(strings, labels)`` with labels 1 (in the language) or 0, shuffled.

    Raises:
        ValueError: for a bad grammar or range, or (balanced) a length range where a
            needed class has no string, e.g. grammar 2 with only odd lengths.

    Example:
        >>> strings, labels = tomita(2, 4, min_length=2, max_length=6, seed=1)
        >>> sum(labels), all(tomita_accepts(2, s) == bool(y) for s, y in zip(strings, labels))
        (2, True)
    """
    _check_grammar(grammar)
    check_int("n", n, 0)
    check_int("min_length", min_length, 0)
    check_int("max_length", max_length, min_length)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    rng = random.Random(seed)
    if not balanced:
        strings = []
        for _ in range(n):
            length = rng.randint(min_length, max_length)
            strings.append("".join(rng.choice("01") for _ in range(length)))
        return strings, [int(tomita_accepts(grammar, s)) for s in strings]

    examples: list[tuple[str, int]] = []
    for label, k in ((1, n // 2), (0, n - n // 2)):
        if k == 0:
            continue
        counts = _path_counts(grammar, bool(label), max_length)
        lengths = [L for L in range(min_length, max_length + 1) if counts[L][0] > 0]
        if not lengths:
            kind = "positive" if label else "negative"
            raise ValueError(
                f"Tomita grammar {grammar} has no {kind} string with a length in "
                f"[{min_length}, {max_length}]"
            )
        examples.extend((_sample(grammar, counts, L, rng), label) for L in _spread(lengths, k))
    rng.shuffle(examples)
    return [s for s, _ in examples], [y for _, y in examples]


def tomita_vocabulary() -> Vocabulary:
    """The vocabulary of Tomita datasets: ``"0"`` -> 2, ``"1"`` -> 3 (0 pad, 1 unk).

    Example:
        >>> tomita_vocabulary().encode(list("01"))
        [2, 3]
    """
    return Vocabulary(["0", "1"])


def tomita_dataset(
    grammar: int,
    n: int,
    min_length: int = 1,
    max_length: int = 20,
    balanced: bool = True,
    seed: int = 0,
) -> SequenceDataset:
    """:func:`tomita` strings as token ids (``"0"`` -> 2, ``"1"`` -> 3) with 0/1 targets.

    Args:
        grammar, n, min_length, max_length, balanced, seed: as for :func:`tomita`;
            ``min_length`` must be at least 1 (no empty sequences).

    Returns:
        A :class:`SequenceDataset` of ``(ids, label)`` items.

    Example:
        >>> ds = tomita_dataset(4, 100, max_length=12)
        >>> ds[0][0].dtype, len(ds)
        (torch.int64, 100)
    """
    check_int("min_length", min_length, 1)
    strings, labels = tomita(grammar, n, min_length, max_length, balanced, seed)
    vocab = tomita_vocabulary()
    return SequenceDataset([vocab.encode(list(s)) for s in strings], labels)
