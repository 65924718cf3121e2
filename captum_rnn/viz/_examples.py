"""Figures for example-based explanations: neighbours, prototypes, criticisms, gates.

Examples are drawn as text (a string or a list of tokens) or, for continuous
sequences, as a small ``time x features`` heatmap. Figures are built with
``matplotlib.figure.Figure`` (no pyplot state, never shown); text is drawn with
``parse_math=False`` so tokens such as ``$5`` are shown as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure, SubFigure

__all__ = [
    "plot_examples",
    "plot_gate_activations",
    "plot_neighbors",
    "plot_prototypes_and_criticisms",
    "plot_unit_token_responses",
]

_AGREE, _DISAGREE, _NEUTRAL = "#1a7f37", "#c62828", "#333333"
_SIGMOID_GATES = {"input", "forget", "output", "reset", "update"}


def _is_text(example: Any) -> bool:
    if isinstance(example, str):
        return True
    return isinstance(example, (list, tuple)) and all(isinstance(t, str) for t in example)


def _clean(text: str, max_chars: int) -> str:
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _as_text(example: Any, max_chars: int) -> str:
    text = example if isinstance(example, str) else " ".join(example)
    return _clean(text, max_chars)


def _as_array(example: Any, name: str) -> np.ndarray:
    if hasattr(example, "detach"):
        example = example.detach().cpu().numpy()
    values = np.asarray(example, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.size == 0:
        raise ValueError(
            f"{name} must be text, a list of tokens or a (time, features) array, "
            f"got shape {values.shape}"
        )
    return values


def _name(label: Any, class_names: Sequence[str] | dict[Any, str] | None) -> str:
    if label is None:
        return "?"
    if hasattr(label, "item"):
        label = label.item()
    if class_names is not None:
        try:
            return str(class_names[label])
        except (IndexError, KeyError, TypeError):
            pass
    return f"{label:.3g}" if isinstance(label, float) else str(label)


def _draw_row(
    ax: Axes,
    example: Any,
    header: str,
    colour: str,
    max_chars: int,
    name: str,
    norm: Normalize | None = None,
) -> None:
    if _is_text(example):
        ax.set_axis_off()
        ax.text(
            0.0,
            0.98,
            header,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=8.5,
            fontweight="bold",
            color=colour,
            parse_math=False,
        )
        ax.text(
            0.0,
            0.30,
            _as_text(example, max_chars),
            transform=ax.transAxes,
            va="center",
            ha="left",
            fontsize=10,
            parse_math=False,
        )
    else:
        values = _as_array(example, name)
        ax.imshow(values.T, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(header, fontsize=8.5, loc="left", color=colour, parse_math=False)


def _shared_norm(examples: Sequence[Any]) -> Normalize | None:
    arrays = [_as_array(e, "example") for e in examples if not _is_text(e)]
    if not arrays:
        return None
    bound = max(float(np.abs(a).max()) for a in arrays) or 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)


def _rows_figure(
    count: int,
    text: bool,
    width: float,
    parent: Figure | SubFigure | None = None,
    rows: int | None = None,
) -> tuple[Figure | SubFigure, list[Axes]]:
    rows = max(count, rows or 0)
    height = (0.62 if text else 1.25) * rows + 0.6
    fig = parent if parent is not None else Figure(figsize=(width, height), layout="constrained")
    axes = list(fig.subplots(rows, 1, squeeze=False)[:, 0])
    for ax in axes[count:]:  # keep row heights equal across side-by-side panels
        ax.set_axis_off()
    return fig, axes[:count]


def _check_lengths(n: int, **values: Sequence[Any] | None) -> None:
    for key, value in values.items():
        if value is not None and len(value) != n:
            raise ValueError(f"{key} must have one entry per example ({n}), got {len(value)}")


def plot_neighbors(
    query: Any,
    neighbors: Sequence[Any],
    labels: Sequence[Any] | None = None,
    scores: Sequence[float] | None = None,
    query_prediction: Any = None,
    query_label: Any = None,
    indices: Sequence[int] | None = None,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    score_name: str = "similarity",
    title: str | None = None,
    max_chars: int = 110,
    width: float = 9.0,
) -> Figure:
    """A panel with the query, its predicted label and its nearest training examples.

    Neighbours whose label equals the query's prediction are headed in green, others
    in red.

    Args:
        query: text, a list of tokens, or a ``(time, features)`` array.
        neighbors: the nearest training examples, nearest first (same kinds).
        labels: their training labels.
        scores: their similarity (or distance) to the query.
        query_prediction: the model's prediction for the query.
        query_label: the query's true label, if known.
        indices: their indices in the training set.
        class_names: names for class ids (a list or dict).
        score_name: what the score is (``"similarity"``, ``"distance"``).
        title: optional figure title.
        max_chars: truncate longer texts.
        width: figure width in inches.

    Returns:
        The Figure.

    Example:
        >>> fig = plot_neighbors("a fine film", ["a good film", "a dull film"], labels=[1, 0],
        ...                      scores=[0.93, 0.71], query_prediction=1)
    """
    neighbors = list(neighbors)
    if not neighbors:
        raise ValueError("neighbors must hold at least one example")
    _check_lengths(len(neighbors), labels=labels, scores=scores, indices=indices)
    examples = [query, *neighbors]
    text = all(_is_text(e) for e in examples)
    norm = _shared_norm(examples)
    fig, axes = _rows_figure(len(examples), text, width)
    header = "query"
    if query_prediction is not None:
        header += f" · predicted {_name(query_prediction, class_names)}"
    if query_label is not None:
        header += f" · label {_name(query_label, class_names)}"
    _draw_row(axes[0], query, header, _NEUTRAL, max_chars, "query", norm)
    for i, example in enumerate(neighbors):
        parts = [f"#{i + 1}"]
        if indices is not None:
            parts.append(f"train[{int(indices[i])}]")
        colour = _NEUTRAL
        if labels is not None:
            parts.append(f"label {_name(labels[i], class_names)}")
            if query_prediction is not None:
                same = _name(labels[i], None) == _name(query_prediction, None)
                colour = _AGREE if same else _DISAGREE
        if scores is not None:
            parts.append(f"{score_name} {float(scores[i]):.3f}")
        _draw_row(
            axes[i + 1], example, " · ".join(parts), colour, max_chars, f"neighbors[{i}]", norm
        )
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)
    return fig


def plot_examples(
    examples: Sequence[Any],
    labels: Sequence[Any] | None = None,
    scores: Sequence[float] | None = None,
    indices: Sequence[int] | None = None,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    title: str | None = "prototypes",
    score_name: str = "score",
    max_chars: int = 110,
    width: float = 9.0,
    figure: Figure | SubFigure | None = None,
    rows: int | None = None,
) -> Figure:
    """A panel of training examples (prototypes or criticisms) with their labels.

    Args:
        examples: texts, token lists or ``(time, features)`` arrays.
        labels: their labels.
        scores: optional score per example (e.g. the MMD witness value).
        indices: their indices in the training set.
        class_names: names for class ids.
        title: panel title.
        score_name: what the score is.
        max_chars: truncate longer texts.
        width: figure width in inches.
        figure: draw into this (sub)figure instead of a new one.
        rows: reserve at least this many rows (to align panels side by side).

    Returns:
        The Figure.

    Example:
        >>> fig = plot_examples(["great", "awful"], labels=[1, 0], class_names=["neg", "pos"])
    """
    examples = list(examples)
    if not examples:
        raise ValueError("examples must hold at least one example")
    _check_lengths(len(examples), labels=labels, scores=scores, indices=indices)
    text = all(_is_text(e) for e in examples)
    fig, axes = _rows_figure(len(examples), text, width, figure, rows)
    norm = _shared_norm(examples)
    for i, example in enumerate(examples):
        parts = [f"#{i + 1}"]
        if indices is not None:
            parts.append(f"train[{int(indices[i])}]")
        if labels is not None:
            parts.append(f"label {_name(labels[i], class_names)}")
        if scores is not None:
            parts.append(f"{score_name} {float(scores[i]):.3f}")
        _draw_row(axes[i], example, " · ".join(parts), _NEUTRAL, max_chars, f"examples[{i}]", norm)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)
    return fig if isinstance(fig, Figure) else fig.figure  # type: ignore[return-value]


def plot_prototypes_and_criticisms(
    prototypes: Sequence[Any],
    prototype_labels: Sequence[Any] | None,
    criticisms: Sequence[Any],
    criticism_labels: Sequence[Any] | None = None,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    prototype_indices: Sequence[int] | None = None,
    criticism_indices: Sequence[int] | None = None,
    max_chars: int = 60,
    width: float = 13.0,
) -> Figure:
    """Prototypes (left) and criticisms (right) side by side.

    Example:
        >>> fig = plot_prototypes_and_criticisms(["good", "bad"], [1, 0], ["odd one"], [1])
    """
    prototypes, criticisms = list(prototypes), list(criticisms)
    rows = max(len(prototypes), len(criticisms), 1)
    text = all(_is_text(e) for e in prototypes + criticisms)
    fig = Figure(figsize=(width, (0.62 if text else 1.25) * rows + 0.9), layout="constrained")
    left, right = fig.subfigures(1, 2)
    for examples, labels, indices, title, panel in (
        (prototypes, prototype_labels, prototype_indices, "prototypes", left),
        (criticisms, criticism_labels, criticism_indices, "criticisms", right),
    ):
        plot_examples(
            examples,
            labels,
            indices=indices,
            class_names=class_names,
            title=title,
            max_chars=max_chars,
            figure=panel,
            rows=rows,
        )
    return fig


def plot_gate_activations(
    trace: Any,
    index: int = 0,
    layer: int = -1,
    direction: int = 0,
    gates: Sequence[str] | None = None,
    tokens: Sequence[str] | None = None,
    units: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """Heatmaps of gate activations (units x time) for one sequence of a :class:`RecurrentTrace`.

    Sigmoid gates are drawn on ``[0, 1]``; the candidate, cell state and hidden state on
    a symmetric scale around 0. Only the sequence's real steps are shown.

    Args:
        trace: from :func:`captum_rnn.attr.recurrent_states`.
        index: which sequence of the batch.
        layer: which stacked layer.
        direction: 0 (forward) or 1 (backward, for bidirectional modules).
        gates: which gates (default all, then ``"hidden"``).
        tokens: labels for the time steps (length of the sequence).
        units: which hidden units (default all).
        title: optional figure title.

    Returns:
        The Figure.

    Example:
        >>> import torch
        >>> from captum_rnn.attr import recurrent_states
        >>> trace = recurrent_states(torch.nn.LSTM(3, 4, batch_first=True), torch.randn(1, 5, 3))
        >>> fig = plot_gate_activations(trace)
    """
    names = list(gates) if gates is not None else [*trace.gates, "hidden"]
    for name in names:
        if name != "hidden" and name not in trace.gates:
            raise ValueError(f"gates: {name!r} is not one of {sorted(trace.gates) + ['hidden']}")
    batch = trace.hidden.shape[1]
    if not 0 <= index < batch:
        raise ValueError(f"index must be in [0, {batch}), got {index}")
    length = int(trace.lengths[index]) if trace.lengths is not None else trace.hidden.shape[2]
    if tokens is not None and len(tokens) != length:
        raise ValueError(f"tokens must have one entry per real step ({length}), got {len(tokens)}")
    slot = trace._slot(layer, direction)
    fig = Figure(
        figsize=(max(5.0, 0.45 * length + 2.5), 1.9 * len(names) + 0.5), layout="constrained"
    )
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        source = trace.hidden if name == "hidden" else trace.gates[name]
        values = source[slot, index, :length].detach().cpu().numpy().T  # (units, time)
        if units is not None:
            values = values[list(units)]
        if name in _SIGMOID_GATES:
            image = ax.imshow(
                values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest"
            )
        else:
            bound = float(np.abs(values).max()) or 1.0
            image = ax.imshow(
                values,
                aspect="auto",
                cmap="RdBu_r",
                interpolation="nearest",
                norm=TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound),
            )
        ax.set_ylabel("unit", fontsize=8)
        ax.set_title(
            f"{name} ({trace.cell}, layer {layer}, direction {direction})",
            fontsize=9,
            loc="left",
            parse_math=False,
        )
        if tokens is not None:
            ax.set_xticks(
                range(length),
                labels=[_clean(str(t), 12) for t in tokens],
                rotation=60,
                fontsize=7,
                parse_math=False,
            )
        else:
            ax.tick_params(axis="x", labelsize=7)
            ax.set_xlabel("time step", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)
    return fig


def plot_unit_token_responses(
    responses: Any,
    units: Sequence[int],
    vocab: Any = None,
    n: int = 8,
    min_count: int = 5,
) -> Figure:
    """Bar charts of the tokens that raise each hidden unit the most.

    Args:
        responses: from :func:`captum_rnn.attr.unit_token_responses`.
        units: which units to show.
        vocab: a :class:`~captum_rnn.data.Vocabulary` (or anything with ``token(id)``)
            to name the tokens; ids are shown otherwise.
        n: tokens per unit.
        min_count: ignore rarer tokens.

    Returns:
        The Figure.
    """
    units = list(units)
    if not units:
        raise ValueError("units must name at least one unit")
    fig = Figure(figsize=(3.2 * len(units), 0.3 * n + 1.2), layout="constrained")
    axes = fig.subplots(1, len(units), squeeze=False)[0]
    for ax, unit in zip(axes, units, strict=True):
        top = responses.top_tokens(unit, n=n, min_count=min_count)
        names = [_clean(vocab.token(t) if vocab is not None else str(t), 14) for t, _ in top]
        ax.barh(range(len(top)), [e for _, e in top], color="#3b6ea8")
        ax.set_yticks(range(len(top)), labels=names, fontsize=8, parse_math=False)
        ax.invert_yaxis()
        ax.set_title(f"unit {unit}", fontsize=9)
        ax.set_xlabel("standardised response", fontsize=8)
    return fig
