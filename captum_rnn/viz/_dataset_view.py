"""The figure of a data-set attribution summary: influence share against frequency share.

Built with ``matplotlib.figure.Figure`` (no pyplot state, never shown). Token text is
drawn with ``parse_math=False`` so tokens such as ``$5`` appear as written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from captum_rnn._utils.options import check_int

__all__ = ["plot_dataset_summary"]

_INFLUENCE, _FLAGGED, _FREQUENCY = "#2166ac", "#b2182b", "#bdbdbd"


def _label(token: Any, max_chars: int = 18) -> str:
    text = "".join(ch if ch.isprintable() else " " for ch in str(token))
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def plot_dataset_summary(summary: Any, top: int = 15) -> Figure:
    """Horizontal bars of influence share and frequency share for the ``top`` tokens
    (features) of a :class:`~captum_rnn.metrics.DatasetAttributionSummary`, by
    influence share. Flagged tokens are drawn in red with a red, bold label. For
    continuous input a second panel shows the ``time x features`` mean attribution.

    Args:
        summary: the result of ``captum_rnn.metrics.dataset_attribution_summary``.
        top: how many rows to draw (>= 1).

    Returns:
        The matplotlib Figure.

    Example:
        >>> from captum_rnn import Explanation
        >>> from captum_rnn.metrics import dataset_attribution_summary
        >>> es = [Explanation(["a", "b"], [1.0, 0.1], "ig", target=0, predicted=0)]
        >>> fig = plot_dataset_summary(dataset_attribution_summary(es, min_count=1))
    """
    top = check_int("top", top, 1)
    rows = list(summary.rows[:top])
    continuous = summary.kind == "continuous" and summary.mean_attribution is not None
    height = 0.32 * max(len(rows), 3) + 1.3
    fig = Figure(
        figsize=(10.5 if continuous else 7.0, max(height, 3.2 if continuous else 0.0)),
        layout="constrained",
    )
    if continuous:
        ax, grid_ax = fig.subplots(1, 2, width_ratios=[1, 1.2])
    else:
        ax, grid_ax = fig.add_subplot(), None
    y = np.arange(len(rows))
    influence = [r["influence_share"] for r in rows]
    frequency = [r["frequency_share"] for r in rows]
    colours = [_FLAGGED if r["flagged"] else _INFLUENCE for r in rows]
    ax.barh(y - 0.2, influence, height=0.4, color=colours)
    ax.barh(y + 0.2, frequency, height=0.4, color=_FREQUENCY)
    ax.set_yticks(y, [_label(r["token"]) for r in rows])
    for text, r in zip(ax.get_yticklabels(), rows, strict=True):
        text.set_parse_math(False)
        if r["flagged"]:
            text.set_color(_FLAGGED)
            text.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlabel("share")
    unit = "tokens" if summary.kind == "token" else "features"
    ax.set_title(f"Top {unit} by influence (red: flagged)", fontsize=10)
    handles = [
        Patch(color=_INFLUENCE, label="influence share"),
        Patch(color=_FLAGGED, label="influence share (flagged)"),
        Patch(color=_FREQUENCY, label="frequency share"),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    if not rows:
        ax.text(0.5, 0.5, "no tokens", ha="center", va="center", transform=ax.transAxes)
    if grid_ax is not None:
        values = summary.mean_attribution.detach().cpu().numpy()
        bound = float(np.abs(values).max()) or 1.0
        image = grid_ax.imshow(
            values.T,
            aspect="auto",
            cmap="RdBu",
            norm=TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound),
            interpolation="nearest",
        )
        names = [str(r["token"]) for r in sorted(summary.rows, key=lambda r: r["id"])]
        grid_ax.set_yticks(np.arange(len(names)), [_label(n) for n in names])
        for text in grid_ax.get_yticklabels():
            text.set_parse_math(False)
        grid_ax.set_xlabel("time step")
        grid_ax.set_title("mean attribution (time x feature)", fontsize=10)
        fig.colorbar(image, ax=grid_ax, shrink=0.8)
    return fig
