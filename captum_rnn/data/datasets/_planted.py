"""Token sequences whose label is carried only by planted cue tokens at known positions."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from captum_rnn._utils.options import check_int

from .._collate import SequenceDataset
from .._vocabulary import Vocabulary
from ._switching import _check_length

__all__ = ["PlantedCues", "planted_cues"]

_CUE_TOKENS = {0: "bad", 1: "good"}


@dataclass
class PlantedCues:
    """Sequences of random filler tokens with cue tokens planted at known positions.

    Attributes:
        sequences: token ids, one LongTensor ``(length,)`` per sequence, no padding;
            never 0 (pad) or 1 (unk).
        labels: 0 or 1 per sequence, fully determined by the cue token it holds.
        masks: one BoolTensor per sequence, True exactly at the cue positions: the
            ground-truth explanation.
        vocab: pad, unk, the cue tokens (``"bad"`` = 2, ``"good"`` = 3), then the
            fillers ``"w0"``, ``"w1"``, ...
        cue_tokens: class -> its cue token.
    """

    sequences: list[torch.Tensor]
    labels: list[int]
    masks: list[torch.Tensor]
    vocab: Vocabulary
    cue_tokens: dict[int, str]

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def cue_ids(self) -> dict[int, int]:
        """Class -> token id of its cue."""
        return {label: self.vocab.index(tok) for label, tok in self.cue_tokens.items()}

    def to_dataset(self) -> SequenceDataset:
        """Return a :class:`SequenceDataset` of ``(ids, label)`` items."""
        return SequenceDataset(self.sequences, self.labels)


def planted_cues(
    n: int,
    length: int | tuple[int, int] = (8, 20),
    vocab_size: int = 50,
    num_cues: int = 1,
    seed: int = 0,
) -> PlantedCues:
    """Generate sequences whose binary label is given by planted cue tokens.

    Each sequence is filler tokens ``"w0"`` .. ``"w{vocab_size - 1}"`` drawn uniformly,
    with ``num_cues`` copies of its class's cue (``"good"`` for 1, ``"bad"`` for 0)
    at distinct random positions. Cue tokens never appear as filler, so a faithful
    explanation puts its relevance on exactly the masked positions. Exactly
    ``n // 2`` sequences are positive.

    Args:
        n: number of sequences.
        length: a fixed length, or ``(min, max)`` inclusive, drawn uniformly.
        vocab_size: number of distinct filler tokens.
        num_cues: cue tokens per sequence (at most the shortest length).
        seed: seeds a private :class:`random.Random`.

    Returns:
        The sequences, labels, cue masks and vocabulary.

    Example:
        >>> data = planted_cues(4, length=6, vocab_size=10, seed=0)
        >>> ids, mask = data.sequences[0], data.masks[0]
        >>> data.vocab.decode(ids[mask]) == [data.cue_tokens[data.labels[0]]]
        True
    """
    n = check_int("n", n, 0)
    vocab_size = check_int("vocab_size", vocab_size, 1)
    num_cues = check_int("num_cues", num_cues, 1)
    low, high = _check_length(length, 1)
    if low < num_cues:
        raise ValueError(
            f"length must satisfy num_cues <= min <= max, got length={length!r} "
            f"with num_cues={num_cues}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")

    fillers = [f"w{i}" for i in range(vocab_size)]
    vocab = Vocabulary([_CUE_TOKENS[0], _CUE_TOKENS[1], *fillers])
    cue_ids = {label: vocab.index(tok) for label, tok in _CUE_TOKENS.items()}
    first_filler = vocab.index(fillers[0])

    rng = random.Random(seed)
    labels = [1] * (n // 2) + [0] * (n - n // 2)
    rng.shuffle(labels)
    sequences, masks = [], []
    for label in labels:
        size = rng.randint(low, high)
        ids = [first_filler + rng.randrange(vocab_size) for _ in range(size)]
        mask = [False] * size
        for position in rng.sample(range(size), num_cues):
            ids[position] = cue_ids[label]
            mask[position] = True
        sequences.append(torch.tensor(ids, dtype=torch.long))
        masks.append(torch.tensor(mask, dtype=torch.bool))
    return PlantedCues(sequences, labels, masks, vocab, dict(_CUE_TOKENS))
