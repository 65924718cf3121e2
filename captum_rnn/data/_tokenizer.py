"""A small, dependency-free regular-expression word tokenizer."""

from __future__ import annotations

import re

__all__ = ["tokenize"]

# Order matters: decimal numbers first ("3.5", "1,000"), then words that may carry
# inner apostrophes or hyphens ("don't", "well-made"), then any other non-space
# character as a token of its own (punctuation, symbols, emoji).
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:['\u2019-]\w+)*|[^\w\s]")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into word, number and punctuation tokens.

    Words keep inner apostrophes and hyphens, decimal numbers stay whole, and every
    other non-space character (punctuation, symbols) becomes a token of its own.

    Args:
        text: the string to split.
        lowercase: lowercase the text first.

    Returns:
        The list of tokens, in order.

    Raises:
        TypeError: if ``text`` is not a ``str``.

    Example:
        >>> tokenize("Don't panic: a well-made film, 3.5 stars!")
        ["don't", 'panic', ':', 'a', 'well-made', 'film', ',', '3.5', 'stars', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if lowercase:
        text = text.lower()
    return _TOKEN_RE.findall(text)
