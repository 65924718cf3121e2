"""Human-readable dates paired with their ISO form: translation with a known alignment.

Each source is a date written in one of many formats ("tuesday 3rd of march 1998",
"3/3/98", "March 3, 1998", ...); its target is the ISO date "1998-03-03". For every
source the character spans that produce the year, month and day are returned, so
an explanation of an output field can be checked against where that field is written.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from captum_rnn._utils.options import check_int

from .._collate import SequenceDataset
from .._vocabulary import Vocabulary

__all__ = ["DATE_FIELDS", "DATE_FORMATS", "DatePairs", "date_pairs", "format_date"]

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

#: Format name -> pieces: literal text, or a field code in braces. Codes: ``{D}`` day,
#: ``{DD}`` zero-padded day, ``{Do}`` ordinal day ("3rd"), ``{M}``/``{MM}`` month
#: number, ``{MON}`` month abbreviation, ``{MONTH}`` month name, ``{YY}``/``{YYYY}``
#: year, ``{W}``/``{WW}`` weekday name / abbreviation. Numeric formats use "/" for
#: month-first and "." for day-first only, so no source is ambiguous.
DATE_FORMATS: dict[str, tuple[str, ...]] = {
    "weekday_ordinal_of_month": ("{W}", " ", "{Do}", " of ", "{MONTH}", " ", "{YYYY}"),
    "us_short": ("{M}", "/", "{D}", "/", "{YY}"),
    "month_day_year": ("{MONTH}", " ", "{D}", ", ", "{YYYY}"),
    "day_mon_year": ("{D}", " ", "{MON}", " ", "{YYYY}"),
    "dotted": ("{DD}", ".", "{MM}", ".", "{YYYY}"),
    "year_first": ("{YYYY}", "/", "{MM}", "/", "{DD}"),
    "mon_day_year": ("{MON}", " ", "{D}", " ", "{YYYY}"),
    "day_month_year": ("{D}", " ", "{MONTH}", " ", "{YYYY}"),
    "weekday_month_day_year": ("{WW}", ", ", "{MONTH}", " ", "{D}", ", ", "{YYYY}"),
    "dd_mon_yy": ("{DD}", "-", "{MON}", "-", "{YY}"),
    "month_ordinal_year": ("{MONTH}", " ", "{Do}", ", ", "{YYYY}"),
    "us_long": ("{MM}", "/", "{DD}", "/", "{YYYY}"),
    "the_ordinal_of_month": ("the ", "{Do}", " of ", "{MONTH}", " ", "{YYYY}"),
    "dotted_short": ("{D}", ".", "{M}", ".", "{YY}"),
}

#: ISO output field -> its ``[start, end)`` character positions in "YYYY-MM-DD".
DATE_FIELDS: dict[str, tuple[int, int]] = {"year": (0, 4), "month": (5, 7), "day": (8, 10)}

_CODE_FIELD = {
    "D": "day",
    "DD": "day",
    "Do": "day",
    "M": "month",
    "MM": "month",
    "MON": "month",
    "MONTH": "month",
    "YY": "year",
    "YYYY": "year",
}
_SOURCE_CHARS = "abcdefghijklmnopqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "0123456789" + " ,./-"
_TARGET_CHARS = "0123456789-"
BOS, EOS = "<s>", "</s>"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _render(code: str, date: datetime.date, case: str) -> str:
    month, weekday = _MONTHS[date.month - 1], _WEEKDAYS[date.weekday()]
    text = {
        "D": str(date.day),
        "DD": f"{date.day:02d}",
        "Do": _ordinal(date.day),
        "M": str(date.month),
        "MM": f"{date.month:02d}",
        "MON": month[:3],
        "MONTH": month,
        "YY": f"{date.year % 100:02d}",
        "YYYY": str(date.year),
        "W": weekday,
        "WW": weekday[:3],
    }[code]
    if code in ("MON", "MONTH", "W", "WW") and case == "title":
        text = text.capitalize()
    return text


def format_date(
    date: datetime.date, format_name: str, case: str = "lower"
) -> tuple[str, dict[str, tuple[int, int]]]:
    """Write ``date`` in a named format; return the text and each field's character span.

    Args:
        date: the date.
        format_name: a key of :data:`DATE_FORMATS`.
        case: ``"lower"``, ``"title"`` (names capitalised) or ``"upper"``.

    Returns:
        ``(text, spans)`` with ``spans[field] = (start, end)`` for year, month and day.

    Example:
        >>> format_date(datetime.date(1998, 3, 3), "weekday_ordinal_of_month")
        ('tuesday 3rd of march 1998', {'day': (8, 11), 'month': (15, 20), 'year': (21, 25)})
    """
    if format_name not in DATE_FORMATS:
        raise ValueError(f"format_name must be one of {sorted(DATE_FORMATS)}, got {format_name!r}")
    if case not in ("lower", "title", "upper"):
        raise ValueError(f"case must be 'lower', 'title' or 'upper', got {case!r}")
    text, spans = "", {}
    for piece in DATE_FORMATS[format_name]:
        if piece.startswith("{"):
            code = piece[1:-1]
            rendered = _render(code, date, case)
            if code in _CODE_FIELD:
                spans[_CODE_FIELD[code]] = (len(text), len(text) + len(rendered))
            text += rendered
        else:
            text += piece
    if case == "upper":
        text = text.upper()
    return text, spans


@dataclass
class DatePairs:
    """Dates in human formats (sources) with their ISO form (targets) and alignments.

    Attributes:
        sources: the human-readable dates.
        targets: the ISO dates ``"YYYY-MM-DD"``.
        spans: per source, ``{"year"|"month"|"day": (start, end)}`` character spans.
        formats: per source, the :data:`DATE_FORMATS` name used.
        source_vocab: characters of the sources (pad 0, unk 1).
        target_vocab: ``<s>``, ``</s>``, digits and ``-`` (pad 0, unk 1).
    """

    sources: list[str]
    targets: list[str]
    spans: list[dict[str, tuple[int, int]]]
    formats: list[str]
    source_vocab: Vocabulary
    target_vocab: Vocabulary

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def bos_index(self) -> int:
        """Index of the start token ``<s>`` in ``target_vocab``."""
        return self.target_vocab.index(BOS)

    @property
    def eos_index(self) -> int:
        """Index of the end token ``</s>`` in ``target_vocab``."""
        return self.target_vocab.index(EOS)

    def encode_source(self, text: str) -> torch.Tensor:
        """Character ids of ``text``, a LongTensor ``(len(text),)``."""
        return torch.tensor(self.source_vocab.encode(list(text)), dtype=torch.long)

    def encode_target(self, iso: str) -> torch.Tensor:
        """``<s>`` + character ids of ``iso`` + ``</s>``."""
        ids = [self.bos_index, *self.target_vocab.encode(list(iso)), self.eos_index]
        return torch.tensor(ids, dtype=torch.long)

    def decode_target(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of predicted target ids, stopping at ``</s>``; ``<s>`` and padding skipped."""
        out = []
        for i in torch.as_tensor(ids).tolist():
            if i == self.eos_index:
                break
            if i in (self.bos_index, 0):
                continue
            out.append(self.target_vocab.token(i))
        return "".join(out)

    def span_mask(self, index: int, field: str) -> torch.Tensor:
        """Boolean ``(len(sources[index]),)``: True on the characters that write ``field``."""
        if field not in DATE_FIELDS:
            raise ValueError(f"field must be one of {sorted(DATE_FIELDS)}, got {field!r}")
        start, end = self.spans[index][field]
        mask = torch.zeros(len(self.sources[index]), dtype=torch.bool)
        mask[start:end] = True
        return mask

    @staticmethod
    def output_steps(field: str) -> range:
        """Decoder steps (0-based, after ``<s>``) that write ``field`` of the ISO date."""
        if field not in DATE_FIELDS:
            raise ValueError(f"field must be one of {sorted(DATE_FIELDS)}, got {field!r}")
        return range(*DATE_FIELDS[field])

    def to_dataset(self) -> SequenceDataset:
        """A :class:`SequenceDataset` of ``(source ids, target ids)``; targets all have
        length 12 (``<s>``, 10 characters, ``</s>``), so batches stack them."""
        return SequenceDataset(
            [self.encode_source(s) for s in self.sources],
            [self.encode_target(t) for t in self.targets],
        )


def date_pairs(
    n: int,
    seed: int = 0,
    formats: Sequence[str] | None = None,
    years: tuple[int, int] = (1950, 2049),
    cases: Sequence[str] = ("lower", "title", "upper"),
) -> DatePairs:
    """Generate ``n`` random dates written in human formats, with ISO targets and spans.

    Two-digit years stand for ``years``' century window (50 -> 1950, 49 -> 2049 by
    default), so every source has exactly one reading.

    Args:
        n: number of pairs.
        seed: seeds a private :class:`random.Random`.
        formats: names from :data:`DATE_FORMATS` to draw from (default all).
        years: inclusive range of years; must span at most 100 years when two-digit
            year formats are used.
        cases: letter cases to draw from: ``"lower"``, ``"title"``, ``"upper"``.

    Returns:
        A :class:`DatePairs`.

    Example:
        >>> data = date_pairs(3, seed=0)
        >>> len(data), data.targets[0][4], sorted(data.spans[0])
        (3, '-', ['day', 'month', 'year'])
    """
    n = check_int("n", n, 0)
    names = list(DATE_FORMATS) if formats is None else list(formats)
    if not names:
        raise ValueError("formats must name at least one format")
    for name in names:
        if name not in DATE_FORMATS:
            raise ValueError(f"formats must be names from {sorted(DATE_FORMATS)}, got {name!r}")
    low, high = years
    if not 1 <= low <= high <= 9999:
        raise ValueError(f"years must be (low, high) with 1 <= low <= high <= 9999, got {years}")
    short = any("{YY}" in DATE_FORMATS[name] for name in names)
    if short and high - low >= 100:
        raise ValueError(
            f"years {years} span more than 100 years: two-digit years would be ambiguous"
        )
    cases = list(cases)
    if not cases or any(c not in ("lower", "title", "upper") for c in cases):
        raise ValueError(f"cases must be drawn from 'lower', 'title', 'upper', got {cases}")
    rng = random.Random(seed)
    first, last = datetime.date(low, 1, 1).toordinal(), datetime.date(high, 12, 31).toordinal()
    sources, targets, spans, used = [], [], [], []
    for _ in range(n):
        date = datetime.date.fromordinal(rng.randint(first, last))
        name = rng.choice(names)
        text, span = format_date(date, name, rng.choice(cases))
        sources.append(text)
        targets.append(date.isoformat())
        spans.append(span)
        used.append(name)
    return DatePairs(
        sources=sources,
        targets=targets,
        spans=spans,
        formats=used,
        source_vocab=Vocabulary(list(_SOURCE_CHARS)),
        target_vocab=Vocabulary([BOS, EOS, *_TARGET_CHARS]),
    )
