"""Reading the package's JSON files: one place for the safe load and its error message."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def load_json(path: str | os.PathLike[str], what: str, build: Callable[[Any], T]) -> T:
    """Parse the JSON file ``path`` and turn it into an object with ``build``.

    Nothing is unpickled or executed: the file is read as UTF-8 text and parsed as JSON.

    Args:
        path: the file.
        what: what the file should hold, for messages ("vocabulary", "DFA" ...).
        build: makes the object from the parsed data (a ``from_dict``); it raises
            ``ValueError`` (or ``KeyError``/``TypeError``) for data of the wrong shape.

    Returns:
        What ``build`` returns.

    Raises:
        ValueError: naming the file when it is not JSON or not a valid ``what``.
    """
    name = os.fspath(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{name!r} is not a JSON {what} file: {err}") from err
    try:
        return build(data)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{name!r} is not a valid {what} file: {err}") from err
