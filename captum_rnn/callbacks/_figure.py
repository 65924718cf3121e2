"""A compact figure of a probe set's explanations, cheap enough to draw every epoch.

One row per sequence: the tokens as one line of monospaced text over a heatmap whose
cells sit exactly under each token's characters (blue pushes toward the explained
class, red against it; each row scaled by its own largest |score|). Drawing one text
per row instead of one per token makes the figure about ten times cheaper than a
per-token plot, which matters when it is drawn after every epoch. Continuous input
gets a plain time-step heatmap. Tokens, class names and the title are drawn with
``parse_math=False``: a ``$`` in them must not break the logger (and the fit) in mathtext.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from captum_rnn.viz import plot_output_input_attributions

__all__ = ["probe_figure"]

_FONT = "DejaVu Sans Mono"  # ships with matplotlib; every glyph advances 1233/2048 em
_ELLIPSIS = "\u2026"
_DPI = 100  # the loggers draw and save figures at 100 dpi


@functools.cache
def _char_width(fontsize: float, dpi: int = _DPI) -> float:
    """Inches per character of the monospaced font as Agg draws it at ``dpi``.

    Agg rounds every glyph advance to whole pixels (1233/2048 em at 8 pt and 100 dpi
    is 6.69 px, drawn as 7), so the nominal advance drifts off the heatmap cells by
    one character every twenty; measuring keeps the cells under their tokens.
    """
    fig = Figure(dpi=dpi)
    count = 200
    text = fig.text(0, 0, "x" * count, family=_FONT, fontsize=fontsize)
    width = text.get_window_extent(FigureCanvasAgg(fig).get_renderer()).width
    return width / count / dpi


def _label(e: Any, index: int) -> str:
    parts = [f"{index}: {e.class_name(e.target)}"]
    if e.probability is not None and e.predicted is not None:
        parts.append(f"p({e.class_name(e.predicted)})={e.probability:.2f}")
    if e.delta is not None:
        parts.append(f"\u0394={e.delta:.1g}")
    return " ".join(parts)


def probe_figure(
    explanations: Sequence[Any],
    title: str | None = None,
    max_tokens: int = 60,
    token_chars: int = 12,
    fontsize: float = 8.0,
) -> Figure:
    """Draw explanations as rows of tokens over a heatmap of their scores.

    Args:
        explanations: :class:`~captum_rnn.Explanation` objects (one row each).
        title: optional title.
        max_tokens: show at most this many tokens per row (the rest is marked ``…``).
        token_chars: cut longer tokens to this many characters.
        fontsize: text size in points.

    Returns:
        A matplotlib Figure (never shown).

    Example:
        >>> from captum_rnn import Explanation
        >>> fig = probe_figure([Explanation(["a", "fine", "film"], [0.0, 0.9, -0.1], "ig", 1)])
    """
    if not explanations:
        raise ValueError("explanations is empty: nothing to draw")
    if any(e.is_sequence_output for e in explanations):
        return _output_input_figure(explanations, title)
    n = len(explanations)
    continuous = explanations[0].feature_scores is not None
    lines, spans = [], []
    for e in explanations:
        scores = np.asarray(e.scores, dtype=float)
        bound = float(np.abs(scores).max()) if scores.size else 0.0
        scores = scores / bound if bound > 0 else scores
        line, row = "", []
        for j, (token, score) in enumerate(zip(e.tokens, scores, strict=True)):
            if j == max_tokens:
                line += _ELLIPSIS
                break
            token = str(token).replace("\n", " ")
            if len(token) > token_chars:
                token = token[: token_chars - 1] + _ELLIPSIS
            row.append((len(line), len(line) + max(len(token), 1), score))
            line += token + " "
        lines.append(line.rstrip())
        spans.append(row)
    if continuous:
        width = max(len(e.scores) for e in explanations)
        grid = np.full((n, width), np.nan)
        for i, row in enumerate(spans):
            for j, (_, _, score) in enumerate(row):
                grid[i, j] = score
    else:
        width = max(max(len(line) for line in lines), 1)
        grid = np.full((n, width), np.nan)
        for i, row in enumerate(spans):
            for start, stop, score in row:
                grid[i, start:stop] = score

    char = _char_width(float(fontsize))  # inches per character
    row_height, left, right, top, bottom = 0.3, 2.4, 0.2, 0.45 if title else 0.15, 0.15
    body = width * char if not continuous else min(max(0.15 * width, 3.0), 14.0)
    fig_w, fig_h = left + body + right, top + n * row_height + bottom
    fig = Figure(figsize=(fig_w, fig_h), dpi=_DPI)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, body / fig_w, n * row_height / fig_h))
    ax.imshow(
        grid,
        cmap="RdBu",
        vmin=-1.6,  # never fully saturated: the text on top stays readable
        vmax=1.6,
        aspect="auto",
        interpolation="nearest",
        extent=(0, width, n, 0),
    )
    if not continuous:
        for i, line in enumerate(lines):
            ax.text(
                0,
                i + 0.5,
                line,
                family=_FONT,
                fontsize=fontsize,
                va="center",
                ha="left",
                parse_math=False,
            )
    ax.set_xlim(0, width)
    ax.set_ylim(n, 0)
    ax.set_yticks(
        np.arange(n) + 0.5,
        [_label(e, i) for i, e in enumerate(explanations)],
        parse_math=False,
    )
    ax.tick_params(axis="y", labelsize=fontsize, length=0)
    ax.set_xticks([])
    if title:
        ax.set_title(title, fontsize=fontsize + 1, loc="left", parse_math=False)
    return fig


def _output_input_figure(explanations: Sequence[Any], title: str | None) -> Figure:
    """Explanations of every output step: one output x input heatmap per sequence,
    side by side."""
    n = len(explanations)
    width = sum(max(3.0, 0.22 * len(e.tokens) + 1.8) for e in explanations)
    height = max(2.4, 0.22 * max(e.n_outputs for e in explanations) + 1.8)
    fig = Figure(figsize=(min(width, 40.0), height), dpi=_DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for i, (ax, e) in enumerate(zip(axes, explanations, strict=True)):
        plot_output_input_attributions(
            e.scores, e.tokens, e.output_labels, prefix_scores=e.prefix_scores,
            title=str(i), ax=ax,
        )  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10, parse_math=False)
    return fig
