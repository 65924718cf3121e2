"""Data sets with known ground truth: fetched human ratings and generated languages.

Example:
    >>> from captum_rnn.data.datasets import tomita, tomita_accepts
    >>> strings, labels = tomita(4, 10, max_length=8)
"""

from . import _ecg, _hmm
from ._dates import DATE_FIELDS, DATE_FORMATS, DatePairs, date_pairs, format_date
from ._ecg import *  # noqa: F403  (real ECG: its __all__ is ours too)
from ._fetch import (
    ChecksumMismatchError,
    DataUnavailableError,
    default_cache_dir,
    fetch_package_file,
)
from ._hmm import *  # noqa: F403  (Tonekaboni et al.'s HMM data: its __all__ is ours too)
from ._planted import PlantedCues, planted_cues
from ._sentiment import (
    SENTIMENT_SOURCES,
    SentimentSnippets,
    Snippet,
    load_sentiment_snippets,
    load_valence_lexicon,
    parse_snippets,
    parse_valence_lexicon,
)
from ._switching import SaliencySeries, spike_series, state_switching
from ._tomita import TOMITA_DESCRIPTIONS, tomita, tomita_accepts, tomita_dataset, tomita_vocabulary
from ._vowels import TimeSeriesSet, load_japanese_vowels, parse_ts

__all__ = [
    "DATE_FIELDS",
    "DATE_FORMATS",
    *_ecg.__all__,
    *_hmm.__all__,
    "DatePairs",
    "date_pairs",
    "format_date",
    "SENTIMENT_SOURCES",
    "TOMITA_DESCRIPTIONS",
    "ChecksumMismatchError",
    "DataUnavailableError",
    "PlantedCues",
    "SaliencySeries",
    "SentimentSnippets",
    "Snippet",
    "TimeSeriesSet",
    "default_cache_dir",
    "fetch_package_file",
    "load_japanese_vowels",
    "load_sentiment_snippets",
    "load_valence_lexicon",
    "parse_snippets",
    "parse_ts",
    "parse_valence_lexicon",
    "planted_cues",
    "spike_series",
    "state_switching",
    "tomita",
    "tomita_accepts",
    "tomita_dataset",
    "tomita_vocabulary",
]
