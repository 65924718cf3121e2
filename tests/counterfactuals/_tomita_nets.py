"""GRUs trained to 100% on Tomita languages, once per test process (about a second each),
and the true fewest substitutions / edits computed by brute force over the exact language."""

from __future__ import annotations

import functools
import itertools
import random

import torch

from captum_rnn.data import tomita_vocabulary
from captum_rnn.demo._tomita_task import train_tomita
from captum_rnn.rules import tomita_dfa

LONGEST = 10


def all_words(length: int) -> list[str]:
    return ["".join(w) for w in itertools.product("01", repeat=length)]


@functools.cache
def tomita_net(grammar: int):
    """``(model, vocab)``: a GRU that classifies every word of lengths 1..10 as the
    language does (checked exhaustively), on one thread."""
    vocab = tomita_vocabulary()
    dfa = tomita_dfa(grammar)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in range(4):
            model, _, _ = train_tomita(
                grammar, "gru", hidden_size=16, max_length=LONGEST, n_train=2000,
                max_epochs=60, seed=seed,
            )  # fmt: skip
            words = [w for n in range(1, LONGEST + 1) for w in all_words(n)]
            ids = torch.nn.utils.rnn.pad_sequence(
                [torch.tensor(vocab.encode(list(w))) for w in words],
                batch_first=True,
                padding_value=vocab.pad_index,
            )
            with torch.no_grad():
                predicted = model(ids).argmax(-1).numpy().astype(bool)
            if (predicted == dfa.accepts_batch(words)).all():
                return model, vocab
    finally:
        torch.set_num_threads(threads)
    raise AssertionError(f"no GRU reached 100% on Tomita {grammar} in four seeds")


def true_substitutions(grammar: int, word: str) -> int | None:
    """Fewest substitutions that move ``word`` to the other class of the language
    (``None`` when no word of its length is in the other class)."""
    dfa = tomita_dfa(grammar)
    label = dfa.accepts(word)
    others = [w for w in all_words(len(word)) if dfa.accepts(w) != label]
    return min((sum(a != b for a, b in zip(word, w, strict=True)) for w in others), default=None)


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def true_edits(grammar: int, word: str, within: int) -> int:
    """Fewest insertions, deletions and substitutions that move ``word`` to the other
    class (words of length ``len(word) - within .. len(word) + within`` searched, which
    holds the answer when it is at most ``within``); the empty word is left out."""
    dfa = tomita_dfa(grammar)
    label = dfa.accepts(word)
    lengths = range(max(1, len(word) - within), len(word) + within + 1)
    return min(
        levenshtein(word, w) for n in lengths for w in all_words(n) if dfa.accepts(w) != label
    )


def sample_words(count: int, seed: int, shortest: int = 3, longest: int = LONGEST) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice("01") for _ in range(rng.randint(shortest, longest)))
        for _ in range(count)
    ]
