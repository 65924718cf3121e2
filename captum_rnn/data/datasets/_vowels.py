"""Japanese Vowels: 9 speakers, 12 LPC cepstrum coefficients per frame, 7 to 29 frames.

Kudo, Toyama and Shimbo (1999), from the UCI archive. The two files ship in the wheel
``aeon==1.6.0`` in the sktime ``.ts`` text format; they are read straight out of the
wheel (a zip file) without installing or importing aeon.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import torch

from .._collate import SequenceDataset
from ._fetch import fetch_package_file

__all__ = ["TimeSeriesSet", "load_japanese_vowels", "parse_ts"]

AEON_REQUIREMENT = "aeon==1.6.0"
AEON_SHA256 = "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409"
_MEMBER = "aeon/datasets/data/JapaneseVowels/JapaneseVowels_{split}.ts"


@dataclass
class TimeSeriesSet:
    """Variable-length multivariate series with class labels.

    Attributes:
        series: one FloatTensor ``(time, features)`` per example.
        labels: class index per example (``0 .. len(class_names) - 1``).
        class_names: the labels as written in the file.
        name: the problem name.
    """

    series: list[torch.Tensor]
    labels: list[int]
    class_names: list[str]
    name: str = ""

    def __len__(self) -> int:
        return len(self.series)

    @property
    def num_features(self) -> int:
        """Features per time step."""
        return int(self.series[0].shape[1]) if self.series else 0

    def to_dataset(self) -> SequenceDataset:
        """A :class:`SequenceDataset` of ``(series, label)`` items (pad with ``pad_collate``)."""
        return SequenceDataset(self.series, self.labels)


def parse_ts(text: str) -> TimeSeriesSet:
    """Parse a classification problem in the sktime ``.ts`` text format.

    Header lines start with ``@`` (``@classLabel true a b c`` lists the classes), comments
    with ``#``. After ``@data`` each line holds one example: the dimensions separated by
    ``:``, the values of a dimension by ``,``, and the class label last.

    Args:
        text: the file's content.

    Returns:
        A :class:`TimeSeriesSet` with one ``(time, dimensions)`` tensor per example.

    Raises:
        ValueError: on a malformed file (the message names the line).

    Example:
        >>> s = parse_ts("@classLabel true a b\\n@data\\n1,2:3,4:b\\n")
        >>> s.series[0].tolist(), s.labels
        ([[1.0, 3.0], [2.0, 4.0]], [1])
    """
    class_names: list[str] | None = None
    name = ""
    in_data = False
    series, labels = [], []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            lower = line.lower()
            if lower.startswith("@problemname"):
                name = line.split(maxsplit=1)[1] if " " in line else ""
            elif lower.startswith("@classlabel"):
                parts = line.split()
                if len(parts) < 3 or parts[1].lower() != "true":
                    raise ValueError(f"line {lineno}: expected '@classLabel true <labels>'")
                class_names = parts[2:]
            elif lower.startswith("@data"):
                in_data = True
            continue
        if class_names is None:
            raise ValueError(f"line {lineno}: data before an '@classLabel true ...' header")
        *dims, label = line.split(":")
        if not dims:
            raise ValueError(f"line {lineno}: expected dimensions and a class label")
        if label not in class_names:
            raise ValueError(f"line {lineno}: unknown class label {label!r}")
        try:
            columns = [[float(v) for v in d.split(",")] for d in dims]
        except ValueError as error:
            raise ValueError(f"line {lineno}: {error}") from None
        if len({len(c) for c in columns}) != 1:
            raise ValueError(f"line {lineno}: dimensions have different lengths")
        series.append(torch.tensor(columns, dtype=torch.float32).T.contiguous())
        labels.append(class_names.index(label))
    if not in_data:
        raise ValueError("no '@data' section found")
    return TimeSeriesSet(series, labels, class_names or [], name)


def load_japanese_vowels(
    split: str = "train", cache_dir: str | os.PathLike[str] | None = None
) -> TimeSeriesSet:
    """Load the Japanese Vowels speaker-recognition data (270 train, 370 test examples).

    Args:
        split: ``"train"`` or ``"test"``.
        cache_dir: the download cache (default ``$CAPTUM_RNN_CACHE`` or ``~/.cache/captum_rnn``).

    Returns:
        Series ``(time, 12)`` with speaker labels 0..8.

    Raises:
        DataUnavailableError: when the wheel is not cached and cannot be downloaded.

    Example:
        >>> train = load_japanese_vowels("train")  # doctest: +SKIP
        >>> len(train), train.num_features  # doctest: +SKIP
        (270, 12)
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    wheel = fetch_package_file(AEON_REQUIREMENT, AEON_SHA256, binary=True, cache_dir=cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(_MEMBER.format(split=split.upper())).decode("utf-8")
    return parse_ts(text)
