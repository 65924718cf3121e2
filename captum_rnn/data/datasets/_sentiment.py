"""Human-rated sentiment snippets and valence lexicon of Hutto and Gilbert (ICWSM 2014).

The data (MIT licence) ship inside the source distribution of ``vaderSentiment==3.3.2``
as ``additional_resources/hutto_ICWSM_2014.tar.gz``; it is fetched with pip into the
user cache (see :func:`fetch_package_file`) and read in memory with :mod:`tarfile`.

Every snippet was rated by about 20 people on a scale from -4 (extremely negative)
to +4 (extremely positive); the files give the mean rating per snippet.
"""

from __future__ import annotations

import io
import math
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .._collate import SequenceDataset
from .._tokenizer import tokenize
from .._vocabulary import Vocabulary
from ._fetch import fetch_package_file

__all__ = [
    "SENTIMENT_SOURCES",
    "SentimentSnippets",
    "Snippet",
    "load_sentiment_snippets",
    "load_valence_lexicon",
    "parse_snippets",
    "parse_valence_lexicon",
]

VADER_REQUIREMENT = "vaderSentiment==3.3.2"
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_INNER_DIR = "hutto_ICWSM_2014"
_LEXICON_FILE = "vader_sentiment_lexicon.txt"

#: source name -> file in the ICWSM 2014 archive (and its number of snippets)
SENTIMENT_SOURCES: dict[str, str] = {
    "movies": "movieReviewSnippets_GroundTruth.txt",  # 10,605 snippets
    "tweets": "tweets_GroundTruth.txt",  # 4,200
    "amazon": "amazonReviewSnippets_GroundTruth.txt",  # 3,708
    "nyt": "nytEditorialSnippets_GroundTruth.txt",  # 5,190
}

_RATING_MIN, _RATING_MAX = -4.0, 4.0


@dataclass(frozen=True)
class Snippet:
    """One rated text.

    Attributes:
        id: the snippet id from the file (e.g. ``"17"`` or ``"3_12"``).
        rating: mean human rating in ``[-4, 4]``.
        text: the text.
    """

    id: str
    rating: float
    text: str


def _decode_lines(data: bytes) -> list[str]:
    """Split bytes into lines, decoding each as UTF-8 or, failing that, latin-1."""
    lines = []
    for raw in data.split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("latin-1"))
    return lines


def _as_lines(source: str | bytes | os.PathLike[str] | Iterable[str], name: str) -> list[str]:
    if isinstance(source, os.PathLike):
        source = Path(source).read_bytes()
    if isinstance(source, bytes):
        return _decode_lines(source)
    if isinstance(source, str):
        # Split on "\n" only: str.splitlines would also break at \x0b, \x1c, \u2028, ...
        return source.split("\n")
    if isinstance(source, Iterable):
        lines = list(source)
        for i, line in enumerate(lines):
            if not isinstance(line, str):
                raise TypeError(f"{name}[{i}] must be a str, got {type(line).__name__}")
        return lines
    raise TypeError(
        f"{name} must be text, bytes, a path or an iterable of lines, got {type(source).__name__}"
    )


def _parse_rating(value: str, lineno: int, what: str) -> float:
    try:
        rating = float(value)
    except ValueError:
        raise ValueError(f"line {lineno}: {what} {value!r} is not a number") from None
    if not math.isfinite(rating) or not _RATING_MIN <= rating <= _RATING_MAX:
        raise ValueError(f"line {lineno}: {what} {rating} is outside [-4, 4]")
    return rating


def parse_snippets(lines_or_text: str | bytes | os.PathLike[str] | Iterable[str]) -> list[Snippet]:
    """Parse ``id<TAB>mean rating<TAB>text`` lines into snippets.

    Blank lines are skipped; ``\\r\\n`` line ends are accepted; bytes are decoded as
    UTF-8 (latin-1 for a line that is not valid UTF-8).

    Args:
        lines_or_text: the whole file as text or bytes, a path (``os.PathLike``), or
            an iterable of lines.

    Returns:
        The snippets, in file order.

    Raises:
        ValueError: on a malformed line; the message gives its 1-based line number.

    Example:
        >>> parse_snippets("1\\t2.5\\tA fine film.\\r\\n2\\t-1.0\\tDull.\\r\\n")
        [Snippet(id='1', rating=2.5, text='A fine film.'), Snippet(id='2', rating=-1.0, text='Dull.')]
    """
    snippets = []
    for lineno, line in enumerate(_as_lines(lines_or_text, "lines_or_text"), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise ValueError(f"line {lineno}: expected 'id<TAB>rating<TAB>text', got {line[:80]!r}")
        snippet_id, rating, text = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if not snippet_id:
            raise ValueError(f"line {lineno}: empty id")
        if not text:
            raise ValueError(f"line {lineno}: empty text")
        snippets.append(Snippet(snippet_id, _parse_rating(rating, lineno, "rating"), text))
    return snippets


def parse_valence_lexicon(text: str | bytes | os.PathLike[str] | Iterable[str]) -> dict[str, float]:
    """Parse ``token<TAB>mean<TAB>std<TAB>[ratings]`` lines into ``{token: mean}``.

    Bytes are decoded line by line as UTF-8, falling back to latin-1 (the published
    lexicon holds a few latin-1 bytes). A token listed twice keeps its last rating,
    as vaderSentiment itself does.

    Args:
        text: the file as text or bytes, a path (``os.PathLike``), or lines.

    Returns:
        Token -> mean human valence rating in ``[-4, 4]``.

    Raises:
        ValueError: on a malformed line; the message gives its line number.

    Example:
        >>> parse_valence_lexicon(b"good\\t1.9\\t0.9\\t[2, 1]\\r\\n:-\\xde\\t0.9\\t1.0\\t[1, 1]")
        {'good': 1.9, ':-Þ': 0.9}
    """
    lexicon: dict[str, float] = {}
    for lineno, line in enumerate(_as_lines(text, "text"), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].strip():
            raise ValueError(f"line {lineno}: expected 'token<TAB>mean<TAB>...', got {line[:80]!r}")
        lexicon[parts[0].strip()] = _parse_rating(parts[1].strip(), lineno, "mean valence")
    return lexicon


@dataclass
class SentimentSnippets:
    """Rated snippets of one source, with near-neutral ones dropped.

    Attributes:
        texts: the snippet texts.
        ratings: mean human ratings in ``[-4, 4]``.
        labels: 1 where the rating is positive, else 0.
        ids: snippet ids from the file.
        source: ``"movies"``, ``"tweets"``, ``"amazon"``, ``"nyt"`` or a custom name.
        neutral_threshold: snippets with ``|rating| < neutral_threshold`` were dropped.
        num_dropped: how many were dropped; ``len(self) + num_dropped`` is the file's count.
    """

    texts: list[str]
    ratings: list[float]
    labels: list[int]
    ids: list[str]
    source: str
    neutral_threshold: float
    num_dropped: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_snippets(
        cls, snippets: Iterable[Snippet], source: str = "custom", neutral_threshold: float = 0.5
    ) -> SentimentSnippets:
        """Keep snippets with ``|rating| >= neutral_threshold`` and label them.

        Example:
            >>> s = SentimentSnippets.from_snippets([Snippet("1", 2.0, "great"),
            ...                                      Snippet("2", 0.1, "meh")])
            >>> s.labels, s.num_dropped
            ([1], 1)
        """
        threshold = _check_threshold(neutral_threshold)
        kept, dropped = [], 0
        for snippet in snippets:
            if abs(snippet.rating) < threshold:
                dropped += 1
            else:
                kept.append(snippet)
        return cls(
            texts=[s.text for s in kept],
            ratings=[s.rating for s in kept],
            labels=[int(s.rating > 0) for s in kept],
            ids=[s.id for s in kept],
            source=source,
            neutral_threshold=threshold,
            num_dropped=dropped,
        )

    def to_dataset(
        self,
        vocab: Vocabulary,
        tokenizer: Callable[[str], list[str]] = tokenize,
        target: str = "label",
    ) -> SequenceDataset:
        """Encode the texts with ``vocab`` into a :class:`SequenceDataset`.

        Texts that encode to no token at all are left out.

        Args:
            vocab: the vocabulary, e.g. ``Vocabulary.build(snippets.texts, min_freq=2)``.
            tokenizer: splits each text into tokens.
            target: ``"label"`` (0/1 classes) or ``"rating"`` (float regression target).

        Returns:
            Items ``(token ids, target)``.

        Example:
            >>> ds = snippets.to_dataset(Vocabulary.build(snippets.texts))  # doctest: +SKIP
        """
        if target not in ("label", "rating"):
            raise ValueError(f"target must be 'label' or 'rating', got {target!r}")
        values = self.labels if target == "label" else self.ratings
        sequences, targets = [], []
        for text, value in zip(self.texts, values, strict=True):
            ids = vocab.encode(text, tokenizer)
            if ids:
                sequences.append(ids)
                targets.append(value)
        if target == "rating":
            targets = [float(t) for t in targets]
        return SequenceDataset(sequences, targets)


def _check_threshold(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"neutral_threshold must be a number, got {type(value).__name__}")
    if not 0.0 <= float(value) <= _RATING_MAX:
        raise ValueError(f"neutral_threshold must be in [0, 4], got {value!r}")
    return float(value)


def _extract(archive: tarfile.TarFile, name: str) -> bytes:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise ValueError(f"the archive has no member {name!r}") from None
    handle = archive.extractfile(member) if member.isfile() else None
    if handle is None:
        raise ValueError(f"archive member {name!r} is not a regular file")
    with handle:
        return handle.read()


def _read_icwsm_file(name: str, cache_dir: str | os.PathLike[str] | None) -> bytes:
    """Return the bytes of one file of ``hutto_ICWSM_2014.tar.gz`` (fetched if needed)."""
    sdist = fetch_package_file(VADER_REQUIREMENT, VADER_SHA256, binary=False, cache_dir=cache_dir)
    with tarfile.open(sdist, mode="r:gz") as outer:
        inner = _extract(outer, _INNER_ARCHIVE)
    with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as archive:
        return _extract(archive, f"{_INNER_DIR}/{name}")


def load_sentiment_snippets(
    source: str = "movies",
    neutral_threshold: float = 0.5,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SentimentSnippets:
    """Load human-rated sentiment snippets (Hutto and Gilbert, ICWSM 2014).

    Fetches ``vaderSentiment==3.3.2`` (sdist, SHA-256 checked) into the cache on first
    use; later calls read the cached file.

    Args:
        source: ``"movies"`` (10,605 snippets), ``"tweets"`` (4,200), ``"amazon"``
            (3,708) or ``"nyt"`` (5,190).
        neutral_threshold: drop snippets whose mean human rating (scale -4 to +4) has
            ``|rating| < neutral_threshold``; the default 0.5 drops the near-neutral
            band, 0 keeps everything (a rating of exactly 0 is then labelled 0).
        cache_dir: the download cache; default ``$CAPTUM_RNN_CACHE`` or
            ``~/.cache/captum_rnn``.

    Returns:
        The kept snippets with binary labels (1 = positive rating).

    Raises:
        ValueError: for an unknown ``source``.
        DataUnavailableError: when the archive is not cached and cannot be downloaded.

    Example:
        >>> movies = load_sentiment_snippets("movies")  # doctest: +SKIP
        >>> vocab = Vocabulary.build(movies.texts, min_freq=2)  # doctest: +SKIP
        >>> dataset = movies.to_dataset(vocab)  # doctest: +SKIP
    """
    if source not in SENTIMENT_SOURCES:
        raise ValueError(f"source must be one of {sorted(SENTIMENT_SOURCES)}, got {source!r}")
    threshold = _check_threshold(neutral_threshold)
    snippets = parse_snippets(_read_icwsm_file(SENTIMENT_SOURCES[source], cache_dir))
    return SentimentSnippets.from_snippets(snippets, source=source, neutral_threshold=threshold)


def load_valence_lexicon(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, float]:
    """Load the VADER valence lexicon: about 7,500 tokens rated by 10 people each.

    Args:
        cache_dir: the download cache (see :func:`load_sentiment_snippets`).

    Returns:
        Token -> mean valence in ``[-4, 4]`` (lower-case words, emoticons, slang).

    Example:
        >>> load_valence_lexicon()["good"]  # doctest: +SKIP
        1.9
    """
    return parse_valence_lexicon(_read_icwsm_file(_LEXICON_FILE, cache_dir))
