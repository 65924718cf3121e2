"""Deprecation aliases for names that moved in the 0.2 layout (kept for one release)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

__all__ = ["moved"]


def moved(name: str, new_module: str, old_module: str) -> Any:
    """Return ``new_module.name`` with a ``DeprecationWarning`` that names the new home.

    The import is made by name at call time, so an alias never adds an import edge
    to the layout (``docs/ARCHITECTURE.md``): old paths keep working for one release.
    """
    public = new_module.split("._")[0]
    warnings.warn(
        f"{old_module}.{name} moved to {public}.{name}; the old name goes away in 0.3",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(new_module), name)
