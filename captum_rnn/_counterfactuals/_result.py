"""The counterfactual result: what changed, whether the model's class flipped (verified),
and how to look at it (figure, escaped HTML) and keep it (JSON, never pickle)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from captum_rnn._utils.jsonio import StrictJsonFile, check, require

__all__ = ["Counterfactual"]

_FORMAT = "captum_rnn.counterfactual/1"
_KINDS = ("tokens", "series")


def _edit_text(edit: tuple[int, int | None, int | None], names: Any) -> str:
    pos, old, new = edit
    if old is None:
        return f"insert {names(new)} before {pos}"
    if new is None:
        return f"delete {names(old)} at {pos}"
    return f"{pos}: {names(old)} -> {names(new)}"


@dataclass
class Counterfactual(StrictJsonFile):
    """One counterfactual: the edited sequence, what was edited and what the model said.

    Attributes:
        original: the input without padding: token ids ``(T,)`` or features ``(T, F)``.
        counterfactual: the edited input (ids, possibly of another length with
            insertions/deletions, or features ``(T, F)``).
        edits: token edits ``(position, old_id, new_id)`` in the original's positions;
            ``old_id`` is ``None`` for an insertion before ``position``, ``new_id`` is
            ``None`` for a deletion. Empty for series.
        flipped: the model's class on ``counterfactual`` differs from its class on
            ``original`` (and equals ``target`` when one was asked for), found by running
            the model, never assumed.
        prediction: the model's class on ``counterfactual``.
        minimal: ``True`` when every smaller edit count was checked on the model
            exhaustively (no fewer edits flip it), ``None`` when not proven.
        original_prediction: the model's class on ``original``.
        target: the class asked for (``None``: any other class).
        changed: series: ``(T, F)`` boolean mask of the changed cells; ``None`` for tokens.
        method: how it was found (``"automaton"``, ``"search"``, ``"native_guide"``,
            ``"comte"``, ``"window"``).
        tokens: display names of ``original``'s tokens (from ``vocab``), else ``None``.
        counterfactual_tokens: display names of ``counterfactual``'s tokens, else ``None``.
        feature_names: series: one name per feature, else ``None``.
        class_names: one name per class (titles and HTML), else ``None``.
        forward_passes: sequences the model ran on to find it (verification included).
    """

    json_what = "counterfactual"

    original: Tensor
    counterfactual: Tensor
    edits: list[tuple[int, int | None, int | None]] = field(default_factory=list)
    flipped: bool = False
    prediction: int = -1
    minimal: bool | None = None
    original_prediction: int = -1
    target: int | None = None
    changed: Tensor | None = None
    method: str = "search"
    tokens: list[str] | None = None
    counterfactual_tokens: list[str] | None = None
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    forward_passes: int = 0

    # ------------------------------------------------------------------ views
    @property
    def kind(self) -> str:
        """``"tokens"`` for token ids, ``"series"`` for continuous features."""
        return "series" if self.original.dtype.is_floating_point else "tokens"

    @property
    def size(self) -> int:
        """How much changed: the number of edits (tokens) or of changed cells (series)."""
        if self.changed is not None:
            return int(self.changed.sum())
        return len(self.edits)

    @property
    def changed_fraction(self) -> float:
        """Series: the share of the original's cells that changed; tokens: edits / length."""
        return self.size / max(1, self.original.numel())

    def _names(self, ids: Tensor, names: list[str] | None) -> list[str]:
        return list(names) if names is not None else [str(int(i)) for i in ids]

    def _token_name(self) -> Any:
        table = {}
        for ids, names in (
            (self.original, self.tokens),
            (self.counterfactual, self.counterfactual_tokens),
        ):
            for i, name in zip(ids.tolist(), self._names(ids, names), strict=True):
                table[int(i)] = name
        return lambda i: table.get(int(i), str(i))

    def title(self) -> str:
        """One line: the class change, the edit count and whether it is proven minimal."""
        verdict = "flipped" if self.flipped else "not flipped"
        what = "edit" if self.kind == "tokens" else "cell"
        what += ("" if self.size == 1 else "s") + ("" if self.kind == "tokens" else " changed")
        proof = {True: ", minimal", None: "", False: ", not minimal"}[self.minimal]
        before, after = (
            (self.class_names[self.original_prediction], self.class_names[self.prediction])
            if self.class_names and 0 <= self.original_prediction < len(self.class_names)
            and 0 <= self.prediction < len(self.class_names)
            else (f"class {self.original_prediction}", f"class {self.prediction}")
        )  # fmt: skip
        return f"{before} -> {after} ({verdict}); {self.size} {what}{proof} [{self.method}]"

    def __str__(self) -> str:
        if self.kind == "series":
            return self.title()
        name = self._token_name()
        edits = "; ".join(_edit_text(e, name) for e in self.edits)
        return f"{self.title()}: {edits}" if edits else self.title()

    # ------------------------------------------------------------------ figure
    def plot(self, ax: Axes | None = None) -> Figure:
        """Draw the counterfactual: tokens with the edited ones marked, or the series
        with the changed cells shaded and the changed values drawn over the original.

        Args:
            ax: an axes to draw into (default: a new figure).

        Returns:
            The matplotlib ``Figure``.
        """
        from matplotlib.figure import Figure as _Figure

        if ax is None:
            fig = _Figure(figsize=(8, 3 if self.kind == "series" else 1.8))
            ax = fig.add_subplot()
        fig = ax.figure
        ax.set_title(self.title(), fontsize=9)
        if self.kind == "tokens":
            self._plot_tokens(ax)
        else:
            self._plot_series(ax)
        return fig

    def _plot_tokens(self, ax: Axes) -> None:
        rows = [
            (
                self._names(self.original, self.tokens),
                {e[0] for e in self.edits if e[1] is not None},
            ),
            (
                self._names(self.counterfactual, self.counterfactual_tokens),
                set(_edited_positions(self.edits)),
            ),
        ]
        for y, (names, marked) in zip((1, 0), rows, strict=True):
            for x, name in enumerate(names):
                colour = "#b2182b" if x in marked else "#222222"
                ax.text(x, y, name, ha="center", va="center", color=colour, usetex=False,
                        fontsize=9, fontweight="bold" if x in marked else "normal",
                        parse_math=False)  # fmt: skip
        width = max(len(rows[0][0]), len(rows[1][0]))
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(-0.6, 1.6)
        ax.set_yticks([0, 1], ["counterfactual", "original"])
        ax.set_xticks([])

    def _plot_series(self, ax: Axes) -> None:
        original = self.original.double().numpy()
        edited = self.counterfactual.double().numpy()
        changed = self.changed.numpy() if self.changed is not None else original != edited
        steps = range(original.shape[0])
        for f in range(original.shape[1]):
            (line,) = ax.plot(steps, original[:, f], lw=0.8, alpha=0.5)
            if changed[:, f].any():
                ax.plot(steps, edited[:, f], lw=1.2, ls="--", color=line.get_color())
                where = changed[:, f].nonzero()[0]
                ax.scatter(where, edited[where, f], s=12, color=line.get_color(), zorder=3)
        ax.set_xlabel("time step")
        ax.set_ylabel("value (dashed: counterfactual)")

    # ------------------------------------------------------------------ HTML
    def to_html(self) -> str:
        """An escaped HTML fragment: the title, and the tokens with the edits marked (or,
        for a series, the changed cells listed and the figure embedded)."""
        parts = [f'<p class="meta">{html.escape(self.title())}</p>']
        if self.kind == "tokens":
            for label, ids, names, marked in (
                ("original", self.original, self.tokens, {e[0] for e in self.edits if e[1] is not None}),
                ("counterfactual", self.counterfactual, self.counterfactual_tokens,
                 set(_edited_positions(self.edits))),
            ):  # fmt: skip
                spans = " ".join(
                    f"<mark>{html.escape(n)}</mark>" if i in marked else html.escape(n)
                    for i, n in enumerate(self._names(ids, names))
                )
                parts.append(f"<div><b>{label}</b>: {spans}</div>")
        else:
            from captum_rnn.viz import figure_to_data_uri

            names = self.feature_names or [f"f{j}" for j in range(self.original.shape[1])]
            cells = self.changed.nonzero().tolist() if self.changed is not None else []
            listed = ", ".join(
                html.escape(f"t{t}/{names[f]}: {float(self.original[t, f]):.3g} -> "
                            f"{float(self.counterfactual[t, f]):.3g}")
                for t, f in cells[:50]
            )  # fmt: skip
            more = f" (and {len(cells) - 50} more)" if len(cells) > 50 else ""
            parts.append(f"<div>{listed}{html.escape(more)}</div>")
            parts.append(f'<img alt="counterfactual" src="{figure_to_data_uri(self.plot())}">')
        return "<section>" + "".join(parts) + "</section>"

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON dict that :meth:`from_dict` reads back unchanged.

        Raises:
            ValueError: when a series holds a non-finite value (the file would lie).
        """
        values = [self.original.tolist(), self.counterfactual.tolist()]
        if self.kind == "series" and not all(
            math.isfinite(v) for row in values for step in row for v in step
        ):
            raise ValueError("a counterfactual with NaN or infinite values cannot be saved")
        return {
            "format": _FORMAT,
            "kind": self.kind,
            "original": values[0],
            "counterfactual": values[1],
            "edits": [list(e) for e in self.edits],
            "changed": None if self.changed is None else self.changed.int().tolist(),
            "flipped": bool(self.flipped),
            "prediction": int(self.prediction),
            "minimal": self.minimal,
            "original_prediction": int(self.original_prediction),
            "target": self.target,
            "method": self.method,
            "tokens": self.tokens,
            "counterfactual_tokens": self.counterfactual_tokens,
            "feature_names": self.feature_names,
            "class_names": self.class_names,
            "forward_passes": int(self.forward_passes),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Counterfactual:
        """Rebuild a counterfactual from :meth:`to_dict`'s output (validated).

        Raises:
            ValueError: naming the field when ``data`` is not a saved counterfactual.
        """
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a saved Counterfactual (expected format {_FORMAT!r})")
        kind = require(data, "kind", str, "")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        dtype = torch.long if kind == "tokens" else torch.float32
        tensors = {}
        for name in ("original", "counterfactual"):
            value = torch.tensor(require(data, name, list, ""), dtype=dtype)
            if value.dim() != (1 if kind == "tokens" else 2):
                raise ValueError(
                    f"{name} has shape {tuple(value.shape)} for a {kind} counterfactual"
                )
            tensors[name] = value
        edits = []
        for i, edit in enumerate(require(data, "edits", list, "")):
            check(edit, list, f"edits[{i}]")
            if len(edit) != 3:
                raise ValueError(f"edits[{i}] must be [position, old_id, new_id]")
            pos, old, new = edit
            check(pos, int, f"edits[{i}][0]")
            check(old, (int, type(None)), f"edits[{i}][1]")
            check(new, (int, type(None)), f"edits[{i}][2]")
            edits.append((pos, old, new))
        changed = require(data, "changed", (list, type(None)), "")
        if changed is not None:
            changed = torch.tensor(changed, dtype=torch.bool)
            if changed.shape != tensors["original"].shape:
                raise ValueError("changed must have the original's shape")
        names = {}
        for name in ("tokens", "counterfactual_tokens", "feature_names", "class_names"):
            value = require(data, name, (list, type(None)), "", None)
            for i, item in enumerate(value or ()):
                check(item, str, f"{name}[{i}]")
            names[name] = value
        return cls(
            original=tensors["original"],
            counterfactual=tensors["counterfactual"],
            edits=edits,
            flipped=require(data, "flipped", bool, ""),
            prediction=require(data, "prediction", int, ""),
            minimal=require(data, "minimal", (bool, type(None)), ""),
            original_prediction=require(data, "original_prediction", int, ""),
            target=require(data, "target", (int, type(None)), "", None),
            changed=changed,
            method=require(data, "method", str, ""),
            forward_passes=require(data, "forward_passes", int, "", 0),
            **names,
        )


def _edited_positions(edits: list[tuple[int, int | None, int | None]]) -> list[int]:
    """Positions in the edited sequence that hold a substituted or inserted token."""
    shift, marked = 0, []
    for pos, old, new in sorted(edits, key=lambda e: (e[0], e[1] is not None)):
        if old is None:
            marked.append(pos + shift)
            shift += 1
        elif new is None:
            shift -= 1
        else:
            marked.append(pos + shift)
    return marked
