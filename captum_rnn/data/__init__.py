"""Vocabulary, tokenizer, padding collate, the SequenceDataModule and data sets.

Batches follow one convention everywhere: ``(inputs, lengths, targets)``.

Example:
    >>> from captum_rnn.data import SequenceDataModule, Vocabulary, planted_cues
    >>> data = planted_cues(100)
    >>> dm = SequenceDataModule(data.to_dataset(), batch_size=16)
"""

from ._collate import PadCollate, SequenceDataset, pad_collate
from ._datamodule import SequenceDataModule
from ._sentiment_datamodule import PlantedCuesDataModule, SentimentDataModule, TomitaDataModule
from ._tokenizer import tokenize
from ._vocabulary import Vocabulary
from .datasets import (
    DATE_FIELDS,
    DATE_FORMATS,
    SENTIMENT_SOURCES,
    TOMITA_DESCRIPTIONS,
    ChecksumMismatchError,
    DataUnavailableError,
    DatePairs,
    PlantedCues,
    SaliencySeries,
    SentimentSnippets,
    Snippet,
    TimeSeriesSet,
    date_pairs,
    default_cache_dir,
    fetch_package_file,
    format_date,
    load_japanese_vowels,
    load_sentiment_snippets,
    load_valence_lexicon,
    parse_snippets,
    parse_ts,
    parse_valence_lexicon,
    planted_cues,
    spike_series,
    state_switching,
    tomita,
    tomita_accepts,
    tomita_dataset,
    tomita_vocabulary,
)

__all__ = [
    "DATE_FIELDS",
    "DATE_FORMATS",
    "DatePairs",
    "date_pairs",
    "format_date",
    "SENTIMENT_SOURCES",
    "TOMITA_DESCRIPTIONS",
    "ChecksumMismatchError",
    "DataUnavailableError",
    "PadCollate",
    "PlantedCues",
    "SaliencySeries",
    "SentimentSnippets",
    "SequenceDataModule",
    "SentimentDataModule",
    "TomitaDataModule",
    "PlantedCuesDataModule",
    "SequenceDataset",
    "Snippet",
    "TimeSeriesSet",
    "Vocabulary",
    "default_cache_dir",
    "fetch_package_file",
    "load_japanese_vowels",
    "load_sentiment_snippets",
    "load_valence_lexicon",
    "pad_collate",
    "parse_snippets",
    "parse_ts",
    "parse_valence_lexicon",
    "planted_cues",
    "spike_series",
    "state_switching",
    "tokenize",
    "tomita",
    "tomita_accepts",
    "tomita_dataset",
    "tomita_vocabulary",
]
