"""Reading the package's JSON files: one place for the safe load and its error messages.

:func:`load_json` parses a file and builds an object from it, turning every way a file
can be wrong (not UTF-8, not JSON, nested too deep, too large, fields of the wrong JSON
type) into a ``ValueError`` that names the file. :func:`require` and :func:`check` are
the schema checks the builders use, so the message also names the field.
:class:`StrictJsonFile` gives a class with ``to_dict`` / ``from_dict`` the matching
``save`` / ``load`` pair.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from captum_rnn._utils.files import atomic_write_text

__all__ = [
    "DEFAULT_MAX_BYTES",
    "StrictJsonFile",
    "check",
    "decode_float",
    "encode_float",
    "load_json",
    "require",
]

T = TypeVar("T")
S = TypeVar("S", bound="StrictJsonFile")

#: Largest file :func:`load_json` reads by default (1 GiB).
DEFAULT_MAX_BYTES = 1 << 30

# What a builder raises on data of the wrong shape: a missing key, indexing a list with a
# string, calling a dict method on a list, a number too large for a float, nesting deeper
# than the interpreter's recursion limit.
_SHAPE_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
)

_MISSING: Any = object()

# Strict JSON has no NaN or infinity; these strings stand for them in number fields.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

_JSON_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def load_json(
    path: str | os.PathLike[str],
    what: str,
    build: Callable[[Any], T],
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> T:
    """Parse the JSON file ``path`` and turn it into an object with ``build``.

    Nothing is unpickled or executed: the file is read as UTF-8 text and parsed as JSON.

    Args:
        path: the file.
        what: what the file should hold, for messages ("vocabulary", "DFA" ...).
        build: makes the object from the parsed data (a ``from_dict``); it raises
            ``ValueError`` (or ``KeyError``, ``TypeError``, ``IndexError``,
            ``AttributeError``, ``OverflowError``) for data of the wrong shape.
        max_bytes: refuse larger files (``None``: no limit).

    Returns:
        What ``build`` returns.

    Raises:
        ValueError: naming the file when it is too large, not UTF-8 JSON, nested too
            deeply, or not a valid ``what``.
        OSError: when the file cannot be read (missing, a directory, no permission).
    """
    name = os.fspath(path)
    with open(path, "rb") as handle:
        # read one byte past the cap: the size on disk can lie (pipes, /proc, growth)
        raw = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(raw) > max_bytes:
        raise ValueError(f"{name!r} is larger than {max_bytes} bytes: not read as a {what} file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{name!r} is not a {what} file: JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, int digits limit
        raise ValueError(f"{name!r} is not a JSON {what} file: {err}") from err
    try:
        return build(data)
    except RecursionError:
        raise ValueError(f"{name!r} is not a valid {what} file: nested too deeply") from None
    except _SHAPE_ERRORS as err:
        raise ValueError(f"{name!r} is not a valid {what} file: {err}") from err


class StrictJsonFile:
    """Mixin: ``save`` / ``load`` for a class with ``to_dict`` and ``from_dict``.

    The file is strict JSON (``allow_nan=False``: ``to_dict`` encodes non-finite numbers
    with :func:`encode_float`), written atomically and read back with :func:`load_json`,
    so nothing is unpickled. A subclass sets ``json_what``, the name its error messages
    give the file ("explanation", "counterfactual" ...).
    """

    json_what: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[S], data: Any) -> S:
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``to_dict()`` to ``path`` as strict JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, allow_nan=False))

    @classmethod
    def load(cls: type[S], path: str | os.PathLike[str]) -> S:
        """Read a file written by :meth:`save` (JSON only, nothing is unpickled).

        Raises:
            ValueError: naming the file (and the field) when it does not hold a saved
                ``json_what``.
        """
        return load_json(path, cls.json_what, cls.from_dict)


def _describe(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)


def _field(where: str, field: str | int) -> str:
    if isinstance(field, int):
        return f"{where}[{field}]"
    return f"{where}.{field}" if where else field


def check(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """Return ``value`` if it has the JSON type ``kind``, else raise ``ValueError``.

    ``bool`` is not taken for ``int`` or ``float`` (JSON tells them apart), and an
    ``int`` is taken for ``float`` (JSON numbers have no kind).

    Args:
        value: parsed JSON.
        kind: a type or tuple of types among ``dict, list, str, bool, int, float,
            type(None)``.
        where: the value's place in the document, for the message (``"scores[3]"``).

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: naming ``where``, the expected and the actual JSON type.
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    elif float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        got = _JSON_NAMES.get(type(value), type(value).__name__)
        raise ValueError(f"{where!r} must be {_describe(kind)}, got {got}")
    return value


def require(
    doc: Any,
    field: str,
    kind: type | tuple[type, ...],
    where: str = "",
    default: Any = _MISSING,
) -> Any:
    """Return ``doc[field]`` after checking that ``doc`` is an object holding a ``kind``.

    Args:
        doc: parsed JSON that should be an object.
        field: the key.
        kind: the JSON type(s) the value must have (see :func:`check`).
        where: ``doc``'s place in the document (``"explanations[2]"``), for messages.
        default: returned when the key is absent; without it the key is required.

    Returns:
        The value.

    Raises:
        ValueError: naming the field, when ``doc`` is not an object, the key is
            missing, or its value has another type.

    Example:
        >>> require({"itos": ["a"]}, "itos", list)
        ['a']
    """
    if not isinstance(doc, dict):
        got = _JSON_NAMES.get(type(doc), type(doc).__name__)
        raise ValueError(f"{where or 'the document'!r} must be a JSON object, got {got}")
    if field not in doc:
        if default is not _MISSING:
            return default
        raise ValueError(f"{_field(where, field)!r} is missing")
    return check(doc[field], kind, _field(where, field))


def encode_float(value: float) -> float | str:
    """A float as strict JSON: finite ones unchanged, else ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"`` (what :func:`decode_float` reads back)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_float(value: Any, where: str) -> float:
    """Read a number field written with :func:`encode_float` (a JSON number or one of
    the three strings) as a float.

    Raises:
        ValueError: naming ``where`` for anything else, or an integer too large for a float.
    """
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    check(value, float, where)
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{where!r} is too large for a float") from None
