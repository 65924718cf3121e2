"""A LightningDataModule that splits one sequence dataset reproducibly."""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset, random_split

from captum_rnn._utils.options import check_int, store_arguments

from ._collate import pad_collate

__all__ = ["SequenceDataModule"]


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), got {type(value).__name__}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


class SequenceDataModule(pl.LightningDataModule):
    """Train/validation/test split of one dataset, with padding collate and a fixed seed.

    ``setup()`` splits ``dataset`` with :func:`torch.utils.data.random_split` and a
    generator seeded with ``seed``, so the split is the same on every run and every
    process; the training loader shuffles with its own seeded generator. Batches are
    whatever ``collate_fn`` returns: by default ``(inputs, lengths, targets)``.
    The predict loader serves the test split.

    Args:
        dataset: a map-style dataset with ``len()``, e.g. :class:`SequenceDataset`.
        batch_size: items per batch.
        val_fraction: share of items held out for validation, in ``[0, 1)``.
        test_fraction: share held out for testing (and prediction), in ``[0, 1)``.
        seed: seeds the split and the training shuffle.
        collate_fn: turns a list of items into a batch.
        num_workers: DataLoader worker processes.

    Example:
        >>> dm = SequenceDataModule(SequenceDataset([[2, 3]] * 10, [0, 1] * 5), batch_size=4)
        >>> dm.setup()
        >>> len(dm.train_set), len(dm.val_set), len(dm.test_set)
        (8, 1, 1)
        >>> inputs, lengths, targets = next(iter(dm.train_dataloader()))
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        collate_fn: Callable[[list[Any]], Any] = pad_collate,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(dataset, Sized):
            raise TypeError("dataset must be a map-style dataset with len()")
        batch_size = check_int("batch_size", batch_size, 1)
        num_workers = check_int("num_workers", num_workers, 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        val_fraction = _check_fraction("val_fraction", val_fraction)
        test_fraction = _check_fraction("test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(
                "val_fraction + test_fraction must be < 1, got "
                f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
            )
        if not callable(collate_fn):
            raise TypeError("collate_fn must be callable")
        store_arguments(self, locals())
        self.train_set: Subset | None = None
        self.val_set: Subset | None = None
        self.test_set: Subset | None = None

    def split_sizes(self) -> tuple[int, int, int]:
        """Return ``(train, val, test)`` sizes: val and test rounded, train the rest."""
        n = len(self.dataset)  # type: ignore[arg-type]
        n_val = round(n * self.val_fraction)
        n_test = round(n * self.test_fraction)
        return n - n_val - n_test, n_val, n_test

    def setup(self, stage: str | None = None) -> None:
        """Split the dataset (once; later calls keep the same split)."""
        if self.train_set is not None:
            return
        n_train, n_val, n_test = self.split_sizes()
        if n_train < 1:
            raise ValueError(
                f"the dataset of {len(self.dataset)} items leaves no training items with "  # type: ignore[arg-type]
                f"val_fraction={self.val_fraction} and test_fraction={self.test_fraction}"
            )
        generator = torch.Generator().manual_seed(self.seed)
        self.train_set, self.val_set, self.test_set = random_split(
            self.dataset, [n_train, n_val, n_test], generator=generator
        )

    def _loader(self, subset: Subset | None, shuffle: bool) -> DataLoader:
        assert subset is not None  # setup() has run
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            subset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of the training split (seeded)."""
        self.setup()
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Batches of the validation split, in order."""
        self.setup()
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Batches of the test split, in order."""
        self.setup()
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Batches of the test split, in order (for ``trainer.predict``)."""
        self.setup()
        return self._loader(self.test_set, shuffle=False)
