"""Deprecated path: the demo's HTML report moved to :mod:`captum_rnn.demo.report` in 0.2."""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("Report", "write_report"):
        from captum_rnn._utils.deprecation import moved

        return moved(name, "captum_rnn.demo.report", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
