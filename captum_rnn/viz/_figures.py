"""Matplotlib figures of attributions: a token heatmap, a time x feature heatmap and an
output x input heatmap (every output step of a tagger or forecaster).

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, never
shown): the caller saves, embeds or displays them. Tokens, names and titles are drawn
with ``parse_math=False``, so a token such as ``$5`` appears as written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "plot_token_attributions",
    "plot_time_feature_attributions",
    "plot_output_input_attributions",
]


def _symmetric_norm(values: np.ndarray) -> TwoSlopeNorm:
    finite = values[np.isfinite(values)]  # NaN and inf cells must not set the scale
    bound = float(np.abs(finite).max()) if finite.size else 0.0
    bound = bound if bound > 0 else 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)


def plot_token_attributions(
    tokens: Sequence[str],
    scores: Sequence[float],
    title: str | None = None,
    ax: Axes | None = None,
    tokens_per_row: int = 12,
) -> Figure:
    """Draw tokens as cells coloured by their score (red negative, blue positive).

    Args:
        tokens: the tokens, padding already removed.
        scores: one score per token.
        title: optional title above the cells.
        ax: draw into this Axes instead of a new Figure.
        tokens_per_row: wrap after this many tokens.

    Returns:
        The Figure drawn into.

    Example:
        >>> fig = plot_token_attributions(["a", "fine", "film"], [0.0, 0.8, -0.1])
    """
    values = np.asarray(scores, dtype=float)
    if len(tokens) != len(values):
        raise ValueError(f"tokens and scores differ in length: {len(tokens)} != {len(values)}")
    rows = max(1, math.ceil(len(tokens) / tokens_per_row))
    cols = min(max(len(tokens), 1), tokens_per_row)
    if ax is None:
        fig = Figure(figsize=(max(4.0, 1.1 * cols), 0.6 * rows + 0.9), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    grid = np.full((rows, cols), np.nan)
    for i, value in enumerate(values):
        grid[i // cols, i % cols] = value
    norm = _symmetric_norm(values)
    image = ax.imshow(grid, cmap="RdBu", norm=norm, aspect="auto")
    for i, token in enumerate(tokens):
        shown = token if len(token) <= 12 else token[:11] + "…"
        strong = abs(values[i]) > 0.6 * max(abs(norm.vmin), norm.vmax)
        ax.text(
            i % cols,
            i // cols,
            shown,
            ha="center",
            va="center",
            fontsize=9,
            color="white" if strong else "black",
            parse_math=False,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10, parse_math=False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="attribution")
    return fig


def plot_time_feature_attributions(
    scores: Sequence[Sequence[float]],
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Heatmap of attributions over time steps (x) and input features (y).

    Args:
        scores: ``(time, features)`` attributions.
        feature_names: optional label per feature.
        title: optional title.
        ax: draw into this Axes instead of a new Figure.

    Returns:
        The Figure drawn into.

    Example:
        >>> fig = plot_time_feature_attributions([[0.1, -0.2], [0.3, 0.0]])
    """
    values = np.asarray(scores, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"scores must be (time, features), got shape {values.shape}")
    if ax is None:
        fig = Figure(
            figsize=(max(4.0, 0.35 * values.shape[0] + 2), 0.3 * values.shape[1] + 1.5),
            layout="constrained",
        )
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = ax.imshow(values.T, cmap="RdBu", norm=_symmetric_norm(values), aspect="auto")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time step")
    ax.set_ylabel("feature")
    if feature_names is not None:
        ax.set_yticks(
            range(len(feature_names)),
            labels=[str(name) for name in feature_names],
            fontsize=7,
            parse_math=False,
        )
    if title:
        ax.set_title(title, fontsize=10, parse_math=False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="attribution")
    return fig


def plot_output_input_attributions(
    scores: Sequence[Sequence[float]] | Sequence[Sequence[Sequence[float]]],
    input_tokens: Sequence[str],
    output_labels: Sequence[str],
    prefix_scores: Sequence[Sequence[float]] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Alignment-style heatmap: one row per output step, one column per input position.

    Args:
        scores: ``(outputs, inputs)`` attributions, or ``(outputs, inputs, features)``
            (summed over features).
        input_tokens: one label per input position (columns).
        output_labels: one label per output step (rows).
        prefix_scores: optional ``(outputs, outputs)`` attributions to the target prefix
            (encoder-decoder models), drawn as extra columns right of a separator line.
        title: optional title.
        ax: draw into this Axes instead of a new Figure.

    Returns:
        The Figure drawn into.

    Example:
        >>> fig = plot_output_input_attributions([[0.5, 0.0], [0.1, 0.9]], ["a", "b"], ["N", "V"])
    """
    values = np.asarray(scores, dtype=float)
    if values.ndim == 3:
        values = values.sum(axis=-1)
    if values.ndim != 2 or values.shape != (len(output_labels), len(input_tokens)):
        raise ValueError(
            f"scores must be (outputs={len(output_labels)}, inputs={len(input_tokens)}), "
            f"got shape {values.shape}"
        )
    columns = [str(t) for t in input_tokens]
    if prefix_scores is not None:
        prefix = np.asarray(prefix_scores, dtype=float)
        if prefix.shape != (len(output_labels), len(output_labels)):
            raise ValueError(f"prefix_scores must be (outputs, outputs), got {prefix.shape}")
        values = np.concatenate([values, prefix], axis=1)
        columns += [str(label) for label in output_labels]
    if ax is None:
        fig = Figure(
            figsize=(max(4.0, 0.3 * len(columns) + 2.2), max(2.0, 0.3 * len(output_labels) + 1.6)),
            layout="constrained",
        )
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = ax.imshow(values, cmap="RdBu", norm=_symmetric_norm(values), aspect="auto")
    shorten = [c if len(c) <= 12 else c[:11] + "…" for c in columns]
    rows = [
        str(label) if len(str(label)) <= 12 else str(label)[:11] + "…" for label in output_labels
    ]
    if len(columns) <= 80:
        ax.set_xticks(
            range(len(columns)), labels=shorten, rotation=90, fontsize=7, parse_math=False
        )
    if len(rows) <= 80:
        ax.set_yticks(range(len(rows)), labels=rows, fontsize=7, parse_math=False)
    if prefix_scores is not None:
        ax.axvline(len(input_tokens) - 0.5, color="black", linewidth=1.0)
    ax.set_xlabel("input" + (" | target prefix" if prefix_scores is not None else ""))
    ax.set_ylabel("output step")
    if title:
        ax.set_title(title, fontsize=10, parse_math=False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="attribution")
    return fig
