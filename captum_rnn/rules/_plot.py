"""State diagrams of automata drawn with matplotlib alone (no graphviz).

State names, symbols and the title are drawn with ``parse_math=False``: an alphabet
with ``$`` (prices, LaTeX-like tokens) is shown as written, not parsed as mathtext.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# A captum_rnn.rules.DFA. Not imported: _dfa imports this module (DFA.plot), and imports
# flow one way (docs/ARCHITECTURE.md).
DFA = Any

__all__ = ["plot_dfa"]

_RADIUS = 0.3


def _layout(dfa: DFA) -> dict[int, tuple[float, float]]:
    """Columns by breadth-first depth from the start; unreachable states last."""
    depth = {dfa.start: 0}
    queue = deque([dfa.start])
    while queue:
        q = queue.popleft()
        for r in dfa.transitions[q]:
            if r not in depth:
                depth[r] = depth[q] + 1
                queue.append(r)
    last = max(depth.values()) + 1
    for q in dfa.states:
        depth.setdefault(q, last)
    columns: dict[int, list[int]] = {}
    for q in sorted(dfa.states, key=lambda s: (depth[s], s)):
        columns.setdefault(depth[q], []).append(q)
    pos = {}
    for col, members in columns.items():
        for row, q in enumerate(members):
            # alternate a small vertical offset between columns so that straight edges
            # skipping a column do not run through the states in between
            shift = 0.35 * (col % 2) if len(members) == 1 else 0.0
            pos[q] = (1.6 * col, -1.3 * (row - (len(members) - 1) / 2) + shift)
    return pos


def _towards(center: tuple[float, float], target: tuple[float, float]) -> tuple[float, float]:
    """The point on a state's circle in the direction of ``target``."""
    dx, dy = target[0] - center[0], target[1] - center[1]
    norm = math.hypot(dx, dy) or 1.0
    return center[0] + _RADIUS * dx / norm, center[1] + _RADIUS * dy / norm


def plot_dfa(dfa: DFA, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Draw ``dfa``'s state diagram; see :meth:`captum_rnn.rules.DFA.plot`."""
    pos = _layout(dfa)
    if ax is None:
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        width = min(14.0, 2.0 + 1.1 * (max(xs) - min(xs) + 1))
        height = min(10.0, 2.0 + 1.1 * (max(ys) - min(ys) + 1))
        fig = Figure(figsize=(width, height))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure  # type: ignore[assignment]
    names = dfa.state_names
    fontsize = 11 if dfa.num_states <= 12 else 8
    for q, (x, y) in pos.items():
        accepting = q in dfa.accepting
        ax.add_patch(
            Circle(
                (x, y),
                _RADIUS,
                facecolor="#dff0d8" if accepting else "white",
                edgecolor="black",
                lw=1.4,
                zorder=3,
            )
        )
        if accepting:
            ax.add_patch(
                Circle((x, y), _RADIUS * 0.82, fill=False, edgecolor="black", lw=1.0, zorder=4)
            )
        name = names[q] if len(names[q]) <= 6 else str(q)
        ax.text(x, y, name, ha="center", va="center", fontsize=fontsize, zorder=5, parse_math=False)
    sx, sy = pos[dfa.start]
    ax.add_patch(
        FancyArrowPatch(
            (sx - 1.0, sy),
            (sx - _RADIUS, sy),
            arrowstyle="-|>",
            mutation_scale=14,
            lw=1.4,
            color="black",
            zorder=2,
        )
    )
    ax.text(sx - 1.0, sy + 0.08, "start", ha="left", va="bottom", fontsize=fontsize - 2)
    edges = dfa.edges()
    for (p, r), symbols in edges.items():
        label = ",".join(str(s) for s in symbols)
        x0, y0 = pos[p]
        if p == r:
            a0, a1 = math.radians(120), math.radians(60)
            start = (x0 + _RADIUS * math.cos(a0), y0 + _RADIUS * math.sin(a0))
            end = (x0 + _RADIUS * math.cos(a1), y0 + _RADIUS * math.sin(a1))
            ax.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    connectionstyle="arc3,rad=-1.6",
                    arrowstyle="-|>",
                    mutation_scale=12,
                    lw=1.1,
                    color="#333333",
                    zorder=2,
                )
            )
            _edge_label(ax, (x0, y0 + 0.52), label, "bottom", fontsize)
            continue
        x1, y1 = pos[r]
        # bend both edges of a two-way pair, and any edge that is not between neighbours
        two_way = (r, p) in edges
        far = abs(x1 - x0) > 1.7 or (x1 == x0 and abs(y1 - y0) > 1.4)
        rad = 0.25 if two_way or far else 0.0
        dx, dy = x1 - x0, y1 - y0
        # arc3's control point; the curve leaves and enters along the lines to it
        cx, cy = (x0 + x1) / 2 + rad * dy, (y0 + y1) / 2 - rad * dx
        arrow = FancyArrowPatch(
            _towards((x0, y0), (cx, cy)),
            _towards((x1, y1), (cx, cy)),
            connectionstyle=f"arc3,rad={rad}",
            arrowstyle="-|>",
            mutation_scale=12,
            lw=1.1,
            color="#333333",
            shrinkA=0,
            shrinkB=0,
            zorder=2,
        )
        ax.add_patch(arrow)
        # label at the middle of the (possibly bent) arc
        mx, my = (x0 + x1) / 2 + rad * dy / 2, (y0 + y1) / 2 - rad * dx / 2
        _edge_label(ax, (mx, my), label, "center", fontsize)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.2, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 1.1)
    ax.set_aspect("equal")
    ax.axis("off")
    if title is not None:
        ax.set_title(title, parse_math=False)
    return fig


def _edge_label(ax: Any, at: tuple[float, float], label: str, va: str, fontsize: float) -> None:
    """An edge's symbols on a white box (literal text: ``$`` is not mathtext)."""
    ax.text(
        *at,
        label,
        ha="center",
        va=va,
        fontsize=fontsize - 1,
        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.9),
        zorder=6,
        parse_math=False,
    )
