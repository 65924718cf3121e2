"""Data modules that build their own data from a few settings, so YAML can configure them.

:class:`SequenceDataModule` takes a dataset in memory, which a LightningCLI config
cannot give. These subclasses take only numbers and names, build the data (and the
vocabulary) on first use and expose ``vocab_size``, ``vocab``, ``num_classes`` and
``class_names`` for ``link_arguments`` and the callbacks:

* :class:`SentimentDataModule`: the human-rated snippets of Hutto and Gilbert (2014);
* :class:`TomitaDataModule`: strings of a Tomita language, generated;
* :class:`PlantedCuesDataModule`: filler tokens with planted cue tokens, generated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import random_split

from captum_rnn._utils.options import check_int, store_arguments

from ._collate import SequenceDataset, pad_collate
from ._datamodule import SequenceDataModule
from ._tokenizer import tokenize
from ._vocabulary import Vocabulary
from .datasets import (
    SENTIMENT_SOURCES,
    load_sentiment_snippets,
    planted_cues,
    tomita_dataset,
    tomita_vocabulary,
)

__all__ = ["PlantedCuesDataModule", "SentimentDataModule", "TomitaDataModule"]


def _check_optional_int(name: str, value: int | None, minimum: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{name} must be None or an int, got {type(value).__name__}")
    if value is not None and value < minimum:
        raise ValueError(f"{name} must be None or an int >= {minimum}, got {value!r}")


# Stored by SequenceDataModule.__init__ (already checked there).
_LOADER_OPTIONS = ("batch_size", "val_fraction", "test_fraction", "seed", "num_workers")


class _BuiltDataModule(SequenceDataModule):
    """A :class:`SequenceDataModule` whose dataset is made on first use by ``_build``."""

    #: class names, index = class
    class_names: list[str] = ["negative", "positive"]

    def __init__(
        self,
        batch_size: int,
        val_fraction: float,
        test_fraction: float,
        seed: int,
        num_workers: int,
        collate_fn: Callable[[list[Any]], Any] = pad_collate,
    ) -> None:
        # The dataset is empty until built; everything else is checked by the parent.
        super().__init__(
            (),  # type: ignore[arg-type]
            batch_size=batch_size,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            collate_fn=collate_fn,
            num_workers=num_workers,
        )
        self._vocab: Vocabulary | None = None
        self._built = False

    def _build(self) -> tuple[SequenceDataset, Vocabulary]:
        raise NotImplementedError

    def build(self) -> _BuiltDataModule:
        """Make the dataset and the vocabulary now (``setup`` and ``vocab`` call it)."""
        if not self._built:
            self.dataset, self._vocab = self._build()
            self._built = True
        return self

    def setup(self, stage: str | None = None) -> None:
        """Build the data (once), then split it as :class:`SequenceDataModule` does."""
        self.build()
        super().setup(stage)

    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary (the data are built on first access)."""
        self.build()
        assert self._vocab is not None
        return self._vocab

    @property
    def vocab_size(self) -> int:
        """Number of token ids, specials included: the model's ``vocab_size``."""
        return len(self.vocab)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


class SentimentDataModule(_BuiltDataModule):
    """Human-rated sentiment snippets (Hutto and Gilbert, ICWSM 2014) as token ids.

    The snippets are fetched on first use (see
    :func:`~captum_rnn.data.load_sentiment_snippets`), split into train, validation and
    test exactly as :class:`SequenceDataModule` splits (same seed, same split), and
    encoded with a vocabulary built from the **training split only**. Built from
    numbers and names, it suits a LightningCLI config; link ``data.vocab_size`` to
    the model's ``vocab_size``.

    Args:
        source: ``"movies"``, ``"tweets"``, ``"amazon"`` or ``"nyt"``.
        batch_size: items per batch.
        min_freq: keep tokens seen at least this many times in the training split.
        max_size: keep at most this many regular tokens (``None``: all).
        max_length: cut every snippet to its first ``max_length`` tokens (``None``: keep all).
        max_snippets: use a seeded random subset of this many snippets (``None``: all).
        neutral_threshold: drop snippets whose mean rating has ``|rating|`` below this.
        target: ``"label"`` (0 negative / 1 positive) or ``"rating"`` (the mean rating,
            a float for :class:`~captum_rnn.models.RNNRegressor`).
        val_fraction: share held out for validation.
        test_fraction: share held out for testing and prediction.
        seed: seeds the subset, the split and the training shuffle.
        num_workers: DataLoader worker processes.
        cache_dir: the download cache (default ``$CAPTUM_RNN_CACHE`` or
            ``~/.cache/captum_rnn``).

    Raises:
        captum_rnn.data.DataUnavailableError: on first use, when the archive is not
            cached and cannot be downloaded.

    Example:
        >>> dm = SentimentDataModule("movies", batch_size=32, max_length=40)  # doctest: +SKIP
        >>> model = RNNClassifier(2, vocab_size=dm.vocab_size)  # doctest: +SKIP
    """

    def __init__(
        self,
        source: str = "movies",
        batch_size: int = 64,
        min_freq: int = 2,
        max_size: int | None = None,
        max_length: int | None = None,
        max_snippets: int | None = None,
        neutral_threshold: float = 0.5,
        target: str = "label",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(batch_size, val_fraction, test_fraction, seed, num_workers)
        if source not in SENTIMENT_SOURCES:
            raise ValueError(f"source must be one of {sorted(SENTIMENT_SOURCES)}, got {source!r}")
        min_freq = check_int("min_freq", min_freq, 1)
        _check_optional_int("max_size", max_size, 0)
        _check_optional_int("max_length", max_length, 1)
        _check_optional_int("max_snippets", max_snippets, 1)
        if target not in ("label", "rating"):
            raise ValueError(f"target must be 'label' or 'rating', got {target!r}")
        store_arguments(self, locals(), skip=_LOADER_OPTIONS)
        self.save_hyperparameters()

    def prepare_data(self) -> None:
        """Fetch the archive into the cache (once per machine)."""
        load_sentiment_snippets(self.source, self.neutral_threshold, self.cache_dir)

    def _build(self) -> tuple[SequenceDataset, Vocabulary]:
        snippets = load_sentiment_snippets(self.source, self.neutral_threshold, self.cache_dir)
        values: list[Any] = snippets.labels if self.target == "label" else snippets.ratings
        pairs = [
            (tokenize(text), value) for text, value in zip(snippets.texts, values, strict=True)
        ]
        if self.max_snippets is not None and self.max_snippets < len(pairs):
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(self.seed))
            pairs = [pairs[i] for i in order[: self.max_snippets].tolist()]
        pairs = [(tokens[: self.max_length], value) for tokens, value in pairs if tokens]
        if not pairs:
            raise ValueError(f"no {self.source!r} snippet has a token left")
        # Split positions first (random_split depends only on the sizes and the seed,
        # so SequenceDataModule.setup makes this very split), then count tokens in the
        # training part only: held-out words stay unknown, as they would in use.
        self.dataset = range(len(pairs))  # type: ignore[assignment]  # sizes only
        train, _, _ = random_split(
            range(len(pairs)),
            list(self.split_sizes()),
            generator=torch.Generator().manual_seed(self.seed),
        )
        vocab = Vocabulary.build(
            [pairs[i][0] for i in train.indices], min_freq=self.min_freq, max_size=self.max_size
        )
        targets = [float(v) if self.target == "rating" else int(v) for _, v in pairs]
        return SequenceDataset([vocab.encode(tokens) for tokens, _ in pairs], targets), vocab

    @property
    def class_names(self) -> list[str] | None:  # type: ignore[override]
        """``["negative", "positive"]`` for ``target="label"``; ``None`` for ``"rating"``."""
        return ["negative", "positive"] if self.target == "label" else None

    @property
    def num_classes(self) -> int:
        """2 for ``target="label"``; 1 (one regression output) for ``"rating"``."""
        return 2 if self.target == "label" else 1


class TomitaDataModule(_BuiltDataModule):
    """Class-balanced strings of a Tomita language (see :func:`~captum_rnn.data.tomita`).

    Tokens ``"0"`` and ``"1"`` are ids 2 and 3 (:func:`~captum_rnn.data.tomita_vocabulary`),
    so ``vocab_size`` is 4. Label 1 means the string is in the language.

    Args:
        grammar: 1 to 7.
        n: number of strings, before the split.
        min_length: shortest string (at least 1).
        max_length: longest string.
        balanced: exactly half the strings in the language.
        batch_size, val_fraction, test_fraction, seed, num_workers: as for
            :class:`SequenceDataModule`; ``seed`` also seeds the generator.

    Example:
        >>> dm = TomitaDataModule(grammar=4, n=64, max_length=10, batch_size=16)
        >>> dm.setup()
        >>> dm.vocab_size, len(dm.train_set)
        (4, 52)
    """

    class_names = ["rejected", "accepted"]

    def __init__(
        self,
        grammar: int = 4,
        n: int = 2000,
        min_length: int = 1,
        max_length: int = 20,
        balanced: bool = True,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, val_fraction, test_fraction, seed, num_workers)
        store_arguments(self, locals(), skip=_LOADER_OPTIONS)
        # Fail now, not at the first epoch: generate one small sample.
        tomita_dataset(grammar, min(n, 2), min_length, max_length, balanced, seed)
        self.save_hyperparameters()

    def _build(self) -> tuple[SequenceDataset, Vocabulary]:
        dataset = tomita_dataset(
            self.grammar, self.n, self.min_length, self.max_length, self.balanced, self.seed
        )
        return dataset, tomita_vocabulary()


class PlantedCuesDataModule(_BuiltDataModule):
    """Random filler tokens with planted cue tokens (see :func:`~captum_rnn.data.planted_cues`).

    The label is carried only by the cue tokens (``"good"`` or ``"bad"``), so a faithful
    explanation points at them; ``cue_masks`` holds the true positions per dataset index.

    Args:
        n: number of sequences, before the split.
        min_length: shortest sequence.
        max_length: longest sequence.
        num_fillers: number of distinct filler tokens (``vocab_size`` of
            :func:`planted_cues`; this module's ``vocab_size`` adds the 4 other tokens).
        num_cues: cue tokens per sequence.
        batch_size, val_fraction, test_fraction, seed, num_workers: as for
            :class:`SequenceDataModule`; ``seed`` also seeds the generator.

    Example:
        >>> dm = PlantedCuesDataModule(n=40, num_fillers=10)
        >>> dm.vocab_size
        14
    """

    def __init__(
        self,
        n: int = 1000,
        min_length: int = 8,
        max_length: int = 20,
        num_fillers: int = 50,
        num_cues: int = 1,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, val_fraction, test_fraction, seed, num_workers)
        store_arguments(self, locals(), skip=_LOADER_OPTIONS)
        planted_cues(min(n, 2), (min_length, max_length), num_fillers, num_cues, seed)
        self.cue_masks: list[torch.Tensor] = []
        self.save_hyperparameters()

    def _build(self) -> tuple[SequenceDataset, Vocabulary]:
        data = planted_cues(
            self.n, (self.min_length, self.max_length), self.num_fillers, self.num_cues, self.seed
        )
        self.cue_masks = data.masks
        return data.to_dataset(), data.vocab
