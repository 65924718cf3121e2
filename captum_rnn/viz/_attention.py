"""Matplotlib figures of attention: a matrix with token labels, rollout per layer, token rows.

Every function returns a ``matplotlib.figure.Figure`` (built without pyplot, never
shown). Tokens are drawn verbatim: labels are plain text (not HTML) and matplotlib's
mathtext is switched off for them, so ``"$x$"`` or ``"<s>"`` appear as written.
Padding is cut out: only as many positions as there are tokens are drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_attention_matrix", "plot_attention_tokens", "plot_rollout_layers"]

_FUSIONS = ("mean", "max", "min")


def _label(token: Any) -> str:
    text = str(token)
    # Whitespace tokens (characters of a date, say) would be invisible ticks.
    return "\u2423" * max(len(text), 1) if text.strip() == "" else text


def _plain_ticks(ax: Axes) -> None:
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_parse_math(False)


def _array(values: Any, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a tensor or array of numbers: {error}") from None
    return array


def _tokens(tokens: Any, name: str) -> list[str]:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(f"{name} must be a sequence of tokens (a list of str), got {tokens!r:.60}")
    if len(tokens) == 0:
        raise ValueError(f"{name} is empty: nothing to plot")
    return [str(t) for t in tokens]


def _fuse(array: np.ndarray, head: str | int) -> np.ndarray:
    """``(heads, rows, cols)`` -> ``(rows, cols)``: one head by index, or fused."""
    if isinstance(head, str):
        if head not in _FUSIONS:
            raise ValueError(f"head must be an int or one of {_FUSIONS}, got {head!r}")
        return {"mean": array.mean, "max": array.max, "min": array.min}[head](axis=0)
    if isinstance(head, bool) or not isinstance(head, int | np.integer):
        raise TypeError(f"head must be an int or one of {_FUSIONS}, got {head!r}")
    if not -array.shape[0] <= head < array.shape[0]:
        raise ValueError(f"head must be in [0, {array.shape[0]}), got {head}")
    return array[head]


def _new_axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def plot_attention_matrix(
    weights: Any,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    *,
    head: str | int = "mean",
    title: str | None = None,
    ax: Axes | None = None,
    cmap: str = "Greys",
    vmax: float | None = None,
    annotate: bool = False,
) -> Figure:
    """Heatmap of attention: one row per target (query) token, one column per source token.

    Args:
        weights: ``(target, source)``, or ``(heads, target, source)`` (``head`` picks one
            or fuses them), or with a leading batch dimension of 1. Cross-attention of
            :class:`~captum_rnn.models.Seq2SeqAttention` (``translate``'s second output,
            one sequence) or one layer of ``model.attention_maps`` (self-attention: pass
            the same tokens twice).
        source_tokens: the real source (key) tokens; columns past them are padding and
            are cut out.
        target_tokens: the real target (query) tokens; rows past them are cut out.
        head: a head index, or ``"mean"``, ``"max"``, ``"min"`` over heads.
        title: optional title.
        ax: draw into this Axes instead of a new Figure.
        cmap: matplotlib colormap name.
        vmax: top of the colour scale (default the largest weight shown, or 1 if 0).
        annotate: write each weight in its cell.

    Returns:
        The Figure drawn into.

    Raises:
        ValueError: when ``weights`` is not 2-D/3-D or has fewer rows or columns than tokens.

    Example:
        >>> fig = plot_attention_matrix([[0.9, 0.1], [0.2, 0.8]], ["a", "b"], ["x", "y"])
    """
    array = _array(weights, "weights")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:
        array = _fuse(array, head)
    if array.ndim != 2:
        raise ValueError(
            "weights must be (target, source), (heads, target, source) or "
            f"(1, heads, target, source), got shape {array.shape}"
        )
    source, target = (
        _tokens(source_tokens, "source_tokens"),
        _tokens(target_tokens, "target_tokens"),
    )
    if array.shape[0] < len(target) or array.shape[1] < len(source):
        raise ValueError(
            f"weights of shape {array.shape} cannot hold {len(target)} target x "
            f"{len(source)} source tokens"
        )
    array = array[: len(target), : len(source)]
    fig, ax = _new_axes(ax, 0.32 * len(source) + 2.2, 0.32 * len(target) + 1.6)
    top = float(array.max()) if vmax is None else float(vmax)
    image = ax.imshow(array, cmap=cmap, vmin=0.0, vmax=top if top > 0 else 1.0, aspect="auto")
    ax.set_xticks(range(len(source)), [_label(t) for t in source], rotation=90, fontsize=8)
    ax.set_yticks(range(len(target)), [_label(t) for t in target], fontsize=8)
    _plain_ticks(ax)
    ax.set_xlabel("source (key)")
    ax.set_ylabel("target (query)")
    if annotate:
        for (i, j), value in np.ndenumerate(array):
            dark = value > 0.6 * (top if top > 0 else 1.0)
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                color="white" if dark else "black",
            )  # fmt: skip
    if title:
        ax.set_title(title, fontsize=10, parse_math=False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="attention")
    return fig


def plot_rollout_layers(
    attentions: Sequence[Any],
    tokens: Sequence[str],
    *,
    head_fusion: str = "mean",
    residual: bool = True,
    discard_ratio: float = 0.0,
    title: str | None = None,
    cmap: str = "Greys",
    columns: int = 4,
) -> Figure:
    """Cumulative attention rollout after each layer, one panel per layer.

    Panel ``l`` shows ``A_l ... A_1`` (:func:`~captum_rnn.attr.attention_rollout` over
    the first ``l`` layers): row ``i`` is how much each input token reaches position
    ``i`` after layer ``l``. Padding (positions past ``tokens``) is cut out before the
    rollout, so it never receives or passes on relevance.

    Args:
        attentions: per layer, input-side first, ``(heads, T, T)`` or ``(1, heads, T, T)``
            (one sequence of ``model.attention_maps``) or ``(T, T)``.
        tokens: the sequence's real tokens (``len(tokens) <= T``).
        head_fusion: ``"mean"``, ``"max"`` or ``"min"``.
        residual: model the skip connection as ``0.5 A + 0.5 I``.
        discard_ratio: see :func:`~captum_rnn.attr.attention_rollout`.
        title: optional figure title.
        cmap: matplotlib colormap name.
        columns: panels per row.

    Returns:
        The Figure.

    Raises:
        ValueError: no layers, layers of different or non-square shapes, or more tokens
            than positions.

    Example:
        >>> maps = [torch.full((2, 3, 3), 1 / 3)] * 2
        >>> fig = plot_rollout_layers(maps, ["a", "b", "c"])
    """
    from captum_rnn.attr._rollout import attention_rollout

    if isinstance(attentions, torch.Tensor | np.ndarray) or not isinstance(attentions, Sequence):
        raise TypeError("attentions must be a list with one tensor per layer")
    if len(attentions) == 0:
        raise ValueError("attentions is empty: give at least one layer")
    tokens = _tokens(tokens, "tokens")
    layers = []
    for number, layer in enumerate(attentions):
        array = torch.as_tensor(_array(layer, f"attentions[{number}]"))
        if array.dim() == 2:
            array = array[None]
        if array.dim() == 4 and array.shape[0] == 1:
            array = array[0]
        if array.dim() != 3 or array.shape[-1] != array.shape[-2]:
            raise ValueError(
                f"attentions[{number}] must be (heads, T, T), (1, heads, T, T) or (T, T), "
                f"got shape {tuple(array.shape)}"
            )
        if layers and array.shape[-1] != layers[0].shape[-1]:
            raise ValueError(
                f"attentions[{number}] has {array.shape[-1]} positions, layer 0 has "
                f"{layers[0].shape[-1]}"
            )
        layers.append(array[None])
    time = layers[0].shape[-1]
    if len(tokens) > time:
        raise ValueError(
            f"tokens has {len(tokens)} entries but the attention only {time} positions"
        )
    n = len(tokens)
    mask = (torch.arange(time) < n)[None]
    rolled = attention_rollout(
        layers, head_fusion, discard_ratio, residual, mask=mask, all_layers=True
    )[:, 0, :n, :n].numpy()
    count = len(layers)
    cols = max(1, min(int(columns), count))
    rows = math.ceil(count / cols)
    side = 0.28 * n + 1.6
    fig = Figure(figsize=(cols * side + 0.8, rows * side + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = [_label(t) for t in tokens]
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.set_axis_off()
            continue
        image = ax.imshow(rolled[index], cmap=cmap, vmin=0.0, vmax=1.0, aspect="equal")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        _plain_ticks(ax)
        ax.set_title(f"after layer {index + 1}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, parse_math=False)
    fig.colorbar(image, ax=axes, shrink=0.8, label="rollout")
    return fig


def plot_attention_tokens(
    scores: Any,
    tokens: Sequence[str] | Sequence[Sequence[str]],
    *,
    title: str | None = None,
    ax: Axes | None = None,
    cmap: str = "Greys",
    row_labels: Sequence[str] | None = None,
) -> Figure:
    """Token heatmap of attention scores: one row of cells per sequence.

    For any of the ``(batch, time)`` attention attributions (``AttentionWeights``,
    ``AttentionRollout``, ``AttentionFlow``, ``GradientAttentionRollout``) or one row of
    an attention matrix. Non-negative scores use a sequential colour scale from 0;
    scores with negative values use a diverging one centred on 0.

    Args:
        scores: ``(time,)`` for one sequence or ``(batch, time)``.
        tokens: the real tokens of the sequence, or one list per sequence; positions
            past a sequence's tokens are padding and are left blank.
        title: optional title.
        ax: draw into this Axes instead of a new Figure.
        cmap: colormap for non-negative scores.
        row_labels: optional label per sequence (e.g. the method's name).

    Returns:
        The Figure drawn into.

    Raises:
        ValueError: scores not 1-D/2-D, or a sequence with more tokens than scores.

    Example:
        >>> fig = plot_attention_tokens([0.1, 0.7, 0.2], ["a", "fine", "film"])
    """
    array = _array(scores, "scores")
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2:
        raise ValueError(f"scores must be (time,) or (batch, time), got shape {array.shape}")
    if isinstance(tokens, Sequence) and tokens and all(isinstance(t, str) for t in tokens):
        rows_tokens = [list(tokens)]
    else:
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise TypeError("tokens must be a list of str or a list of such lists")
        rows_tokens = [_tokens(t, f"tokens[{i}]") for i, t in enumerate(tokens)]
    if len(rows_tokens) != array.shape[0]:
        raise ValueError(
            f"scores have {array.shape[0]} sequences but tokens has {len(rows_tokens)}"
        )
    for i, row in enumerate(rows_tokens):
        if len(row) == 0:
            raise ValueError(f"tokens[{i}] is empty")
        if len(row) > array.shape[1]:
            raise ValueError(f"tokens[{i}] has {len(row)} entries but scores only {array.shape[1]}")
    if row_labels is not None and len(row_labels) != len(rows_tokens):
        raise ValueError(f"row_labels must have {len(rows_tokens)} entries, got {len(row_labels)}")
    width = max(len(row) for row in rows_tokens)
    grid = np.full((len(rows_tokens), width), np.nan)
    for i, row in enumerate(rows_tokens):
        grid[i, : len(row)] = array[i, : len(row)]
    shown = grid[~np.isnan(grid)]
    if shown.size and shown.min() < 0:
        bound = float(np.abs(shown).max()) or 1.0
        cmap, low, high = "RdBu", -bound, bound
    else:
        low, high = 0.0, (float(shown.max()) if shown.size else 0.0) or 1.0
    fig, ax = _new_axes(ax, max(4.0, 0.75 * width + 1.5), 0.55 * len(rows_tokens) + 1.0)
    image = ax.imshow(grid, cmap=cmap, vmin=low, vmax=high, aspect="auto")
    for i, row in enumerate(rows_tokens):
        for j, token in enumerate(row):
            text = _label(token)
            text = text if len(text) <= 12 else text[:11] + "\u2026"
            strong = abs(grid[i, j]) > 0.6 * max(abs(low), abs(high))
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, parse_math=False,
                color="white" if strong else "black",
            )  # fmt: skip
    ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks(range(len(rows_tokens)), [str(r) for r in row_labels], fontsize=8)
        _plain_ticks(ax)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10, parse_math=False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="attention")
    return fig
