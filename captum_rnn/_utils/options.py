"""Checks for numeric options: a clear ValueError naming the option and its valid range."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_float", "check_int"]


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int after checking ``low <= value <= high``.

    Raises:
        ValueError: for a bool, a non-integer (``2.5``) or a value out of range.

    Example:
        >>> check_int("n_steps", 50, 2)
        50
    """
    span = f"[{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {span}, got {value}")
    return int(value)


def check_float(
    name: str, value: Any, low: float | None = None, high: float | None = None
) -> float:
    """Return ``value`` as a finite float after checking ``low <= value <= high``.

    Raises:
        ValueError: for a bool, a non-number, NaN, an infinity or a value out of range.

    Example:
        >>> check_float("rtol", 0.05, 0.0)
        0.05
    """
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}], got {value!r}")
    value = float(value)
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}], got {value}")
    return value
