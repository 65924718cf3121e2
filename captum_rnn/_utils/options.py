"""Options: checks that name the option and its valid range, and storing a constructor's
arguments as its configuration (scikit-learn style)."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_float", "check_int", "store_arguments"]


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


def store_arguments(obj: Any, arguments: dict[str, Any], *, skip: tuple[str, ...] = ()) -> None:
    """Store a constructor's arguments on ``obj`` as attributes of the same names.

    Call it as ``store_arguments(self, locals())`` before the constructor defines any
    local of its own: every argument but ``self``, ``__class__`` (present where the
    constructor calls ``super()``) and ``skip`` becomes an attribute, unchanged.

    Args:
        obj: the object being constructed.
        arguments: ``locals()`` of its ``__init__``.
        skip: arguments not to store (e.g. ones stored after conversion).

    Example:
        >>> class Config:
        ...     def __init__(self, n: int, seed: int = 0) -> None:
        ...         store_arguments(self, locals())
        >>> Config(3).n
        3
    """
    for name, value in arguments.items():
        if name not in ("self", "__class__", *skip):
            setattr(obj, name, value)
