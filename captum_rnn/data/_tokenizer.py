"""A small, dependency-free regular-expression word tokenizer that respects graphemes."""

from __future__ import annotations

import itertools
import re
import unicodedata

__all__ = ["tokenize"]

# Characters that extend the character before them and never start a token of their own
# when they follow one: combining marks (Mn, Mc, Me: accents, Indic vowel signs and
# viramas, Arabic harakat, variation selectors, the keycap), the zero-width (non-)joiner,
# emoji skin-tone modifiers (category Sk, so not marks) and emoji tag characters.
_EXTRA_EXTENDERS = "\\u200c\\u200d\\U0001f3fb-\\U0001f3ff\\U000e0020-\\U000e007f"
_REGIONAL_PAIR = "[\\U0001f1e6-\\U0001f1ff]{2}"  # a flag: two regional indicators


# Planes 4-13 are unassigned and 15-16 private use: no marks there, so scanning the
# others (about 40 ms) finds every mark of the Unicode version ``re`` uses.
_PLANES = (range(0x40000), range(0xE0000, 0xF0000))


def _extender_class() -> str:
    """A regex character class of every extender, from the ``unicodedata`` tables."""
    ranges, start = [], None
    category = unicodedata.category
    for plane in _PLANES:
        for code in itertools.chain(plane, [None]):  # None closes a range at the end
            mark = code is not None and category(chr(code))[0] == "M"
            if mark and start is None:
                start = code
            elif not mark and start is not None:
                ranges.append(f"\\U{start:08x}-\\U{(code or plane.stop) - 1:08x}")
                start = None
    return "[" + "".join(ranges) + _EXTRA_EXTENDERS + "]"


def _token_re() -> re.Pattern[str]:
    ext = _extender_class()
    # Every base character carries its extenders (``\w`` and marks are disjoint, so the
    # nested repeats cannot backtrack badly). Order matters: decimal numbers first
    # ("3.5", "1,000"), then words with inner apostrophes or hyphens ("don't",
    # "well-made"), then any other non-space character with its extenders as a token of
    # its own (punctuation, symbols, a flag, an emoji with its modifiers, and emoji
    # joined by zero-width joiners).
    digits = f"(?:\\d{ext}*)+"
    word = f"(?:\\w{ext}*)+"
    symbol = f"(?:{_REGIONAL_PAIR}|[^\\w\\s]){ext}*"
    joined = f"(?:(?<=\\u200d)[^\\w\\s]{ext}*)*"
    return re.compile(f"{digits}(?:[.,]{digits})+|{word}(?:['\\u2019-]{word})*|{symbol}{joined}")


_TOKEN_RE = _token_re()


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into word, number and punctuation tokens.

    The text is normalised to NFC first, so composed and decomposed spellings ("café"
    written with U+00E9 or with "e" + U+0301) give the same tokens. Combining marks stay
    with the character they modify (Hindi, Arabic diacritics, "i̇" from lowercasing
    "İ"), and an emoji keeps its skin tone, variation selector and zero-width-joined
    parts. Words keep inner apostrophes and hyphens, decimal numbers stay whole, and
    every other non-space character (punctuation, symbols) becomes a token of its own.

    Args:
        text: the string to split.
        lowercase: lowercase the text first.

    Returns:
        The list of tokens (non-empty, NFC, without whitespace), in order.

    Raises:
        TypeError: if ``text`` is not a ``str``.

    Example:
        >>> tokenize("Don't panic: a well-made film, 3.5 stars!")
        ["don't", 'panic', ':', 'a', 'well-made', 'film', ',', '3.5', 'stars', '!']
        >>> tokenize("नमस्ते दुनिया 👍🏽")
        ['नमस्ते', 'दुनिया', '👍🏽']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        # lowercasing can leave decomposed sequences ("İ" -> "i" + U+0307)
        text = unicodedata.normalize("NFC", text.lower())
    return _TOKEN_RE.findall(text)
