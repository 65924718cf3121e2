"""Send figures, tables and scalars to whatever loggers a Lightning trainer has.

Each logger gets what it shows best:

* TensorBoard: ``add_figure`` and the table as markdown through ``add_text``;
* Weights & Biases: ``log_image`` and ``log_table``;
* MLflow: ``log_figure`` and ``log_dict`` as run artifacts;
* CSV and any other logger: PNG and JSON files under the logger's folder
  (``<log_dir>/<tag>/step=<step>/<name>.png`` and ``.json``).

Scalars go to every logger through ``log_metrics``. Lightning's ``DummyLogger`` (what
``fast_dev_run`` installs) receives nothing. Call these on rank zero only; none of them
touches a property that broadcasts across processes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from captum_rnn._utils.files import atomic_write_text

__all__ = [
    "LogPayload",
    "has_media_loggers",
    "logger_folder",
    "send",
    "send_media",
    "send_scalars",
]


@dataclass
class LogPayload:
    """One logging event.

    Attributes:
        tag: a prefix such as ``"explanations"``; names below are joined to it with ``/``.
        step: the step to log at.
        figures: ``{name: Figure}``, or ``{name: callable returning a Figure}`` to build
            it only when (and where) it is sent.
        tables: ``{name: (columns, rows)}``; rows are lists of plain values.
        documents: ``{name: JSON-serialisable dict}`` (full explanations and settings).
        scalars: ``{full metric name: float}``.
    """

    tag: str
    step: int
    figures: dict[str, Figure | Callable[[], Figure]] = field(default_factory=dict)
    tables: dict[str, tuple[list[str], list[list[Any]]]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=\-]+", "_", name).strip("._") or "item"


def _is(logger: Any, class_name: str) -> bool:
    """``isinstance`` against a Lightning logger class, by name, without importing it."""
    return any(cls.__name__ == class_name for cls in type(logger).__mro__)


def has_media_loggers(trainer: Any) -> bool:
    """True when the trainer has a logger that will receive figures and tables."""
    return any(not _is(logger, "DummyLogger") for logger in trainer.loggers)


def logger_folder(logger: Any, fallback: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder a logger writes into: ``log_dir``, else ``save_dir``, else ``fallback``."""
    for attribute in ("log_dir", "save_dir"):
        try:
            value = getattr(logger, attribute, None)
        except Exception:  # a logger that cannot say (e.g. not started): try the next
            value = None
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
    return Path(fallback) if fallback is not None else None


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def figure_to_array(fig: Figure, dpi: int = 100) -> np.ndarray:
    """Render a Figure to an RGB ``uint8`` array ``(height, width, 3)``."""
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _table_document(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": [list(r) for r in rows]}


def _to_tensorboard(logger: Any, payload: LogPayload) -> None:
    experiment = logger.experiment
    for name, fig in payload.figures.items():
        experiment.add_figure(f"{payload.tag}/{name}", fig, global_step=payload.step, close=False)
    for name, (columns, rows) in payload.tables.items():
        experiment.add_text(f"{payload.tag}/{name}", _markdown(columns, rows), payload.step)


def _to_wandb(logger: Any, payload: LogPayload) -> None:
    for name, fig in payload.figures.items():
        logger.log_image(
            key=f"{payload.tag}/{name}", images=[figure_to_array(fig)], step=payload.step
        )
    for name, (columns, rows) in payload.tables.items():
        logger.log_table(
            key=f"{payload.tag}/{name}",
            columns=list(columns),
            data=[list(r) for r in rows],
            step=payload.step,
        )


def _to_mlflow(logger: Any, payload: LogPayload) -> None:
    client, run_id = logger.experiment, logger.run_id
    folder = f"{payload.tag}/step={payload.step:07d}"
    for name, fig in payload.figures.items():
        client.log_figure(run_id, fig, f"{folder}/{_safe(name)}.png")
    for name, (columns, rows) in payload.tables.items():
        client.log_dict(run_id, _table_document(columns, rows), f"{folder}/{_safe(name)}.json")
    for name, document in payload.documents.items():
        client.log_dict(run_id, document, f"{folder}/{_safe(name)}.json")


def _to_files(folder: Path, payload: LogPayload) -> None:
    target = folder.joinpath(
        *(_safe(p) for p in payload.tag.split("/")), f"step={payload.step:07d}"
    )
    target.mkdir(parents=True, exist_ok=True)
    for name, fig in payload.figures.items():
        fig.savefig(target / f"{_safe(name)}.png", dpi=100)
    for name, (columns, rows) in payload.tables.items():
        _write_json(target / f"{_safe(name)}.json", _table_document(columns, rows))
    for name, document in payload.documents.items():
        _write_json(target / f"{_safe(name)}.json", document)


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(document, indent=1, default=_json_default), fsync=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def send_scalars(loggers: Sequence[Any], payload: LogPayload) -> None:
    """Log the payload's scalars to every logger (``log_metrics``)."""
    if not payload.scalars:
        return
    for logger in loggers:
        if not _is(logger, "DummyLogger"):
            logger.log_metrics(dict(payload.scalars), step=payload.step)


def send_media(
    loggers: Sequence[Any], payload: LogPayload, fallback_dir: str | None = None
) -> list[str]:
    """Log figures, tables and documents, each logger in the way it shows them best.

    Figures given as callables are built here, once (so the caller may run this on a
    worker thread and keep the drawing off the training loop).

    Returns:
        What was done, one line per logger (for messages and tests).
    """
    if not (payload.figures or payload.tables or payload.documents):
        return []
    receivers = [logger for logger in loggers if not _is(logger, "DummyLogger")]
    if not receivers:
        return []
    payload.figures = {
        name: fig if isinstance(fig, Figure) else fig() for name, fig in payload.figures.items()
    }
    done = []
    try:
        for logger in receivers:
            if _is(logger, "TensorBoardLogger"):
                _to_tensorboard(logger, payload)
                done.append(f"tensorboard:{type(logger).__name__}")
            elif _is(logger, "WandbLogger"):
                _to_wandb(logger, payload)
                done.append(f"wandb:{type(logger).__name__}")
            elif _is(logger, "MLFlowLogger"):
                _to_mlflow(logger, payload)
                done.append(f"mlflow:{type(logger).__name__}")
            else:
                folder = logger_folder(logger, fallback_dir)
                if folder is None:
                    continue
                _to_files(folder, payload)
                done.append(f"files:{folder}")
    finally:
        for fig in payload.figures.values():
            fig.clear()
    return done


def send(loggers: Sequence[Any], payload: LogPayload, fallback_dir: str | None = None) -> list[str]:
    """Log ``payload`` to each logger: scalars, then figures, tables and documents.

    Args:
        loggers: ``trainer.loggers``.
        payload: what to log.
        fallback_dir: folder for file output when a logger has none.

    Returns:
        What was done, one line per logger (for messages and tests).
    """
    send_scalars(loggers, payload)
    return send_media(loggers, payload, fallback_dir)
