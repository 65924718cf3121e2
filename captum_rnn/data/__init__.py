"""Vocabulary, tokenizer, padding collate, the SequenceDataModule and data sets.

Batches follow one convention everywhere: ``(inputs, lengths, targets)``.

Example:
    >>> from captum_rnn.data import SequenceDataModule, Vocabulary, planted_cues
    >>> data = planted_cues(100)
    >>> dm = SequenceDataModule(data.to_dataset(), batch_size=16)
"""

from . import datasets as _datasets
from ._collate import PadCollate, SequenceDataset, pad_collate
from ._datamodule import SequenceDataModule
from ._sentiment_datamodule import PlantedCuesDataModule, SentimentDataModule, TomitaDataModule
from ._tokenizer import tokenize
from ._vocabulary import Vocabulary
from .datasets import *  # noqa: F403  (every data set; its __all__ is ours too)

__all__ = [
    # loading, batching and vocabularies
    "PadCollate",
    "SequenceDataModule",
    "SentimentDataModule",
    "TomitaDataModule",
    "PlantedCuesDataModule",
    "SequenceDataset",
    "Vocabulary",
    "pad_collate",
    "tokenize",
    # the data sets (see captum_rnn.data.datasets)
    *_datasets.__all__,
]
