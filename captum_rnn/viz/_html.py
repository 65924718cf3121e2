"""HTML for explanations: every token and every string is escaped.

The page needs nothing else when opened in a browser: styles are inline and
figures are embedded as base64 PNG.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence

from matplotlib.figure import Figure

__all__ = ["token_spans_html", "figure_to_data_uri", "html_page"]


def _colour(score: float, bound: float) -> str:
    if not math.isfinite(score):  # NaN or inf: unshaded, the title still shows it
        return "rgba(0,0,0,0.000)"
    strength = min(abs(score) / bound, 1.0) if bound > 0 else 0.0
    # Blue for positive, red for negative, as in the figures (RdBu).
    rgb = (33, 102, 172) if score >= 0 else (178, 24, 43)
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{0.85 * strength:.3f})"


def token_spans_html(tokens: Sequence[str], scores: Sequence[float]) -> str:
    """Render tokens as escaped ``<span>`` elements shaded by their scores.

    Args:
        tokens: the tokens (any text: it is escaped).
        scores: one score per token.

    Returns:
        An HTML fragment (a ``<div>``).

    Example:
        >>> token_spans_html(["<b>"], [1.0]).count("&lt;b&gt;")
        1
    """
    if len(tokens) != len(scores):
        raise ValueError(f"tokens and scores differ in length: {len(tokens)} != {len(scores)}")
    bound = max((abs(float(s)) for s in scores if math.isfinite(float(s))), default=0.0)
    spans = []
    for token, score in zip(tokens, scores, strict=True):
        spans.append(
            f'<span class="tok" style="background:{_colour(float(score), bound)}" '
            f'title="{html.escape(f"{float(score):+.4f}", quote=True)}">'
            f"{html.escape(str(token))}</span>"
        )
    return '<div class="tokens">' + " ".join(spans) + "</div>"


def figure_to_data_uri(fig: Figure, dpi: int = 100) -> str:
    """Encode a Figure as a ``data:image/png;base64,...`` URI for an ``<img>`` tag."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1000px;color:#222}
.tokens{line-height:2.1em;margin:.3em 0 1em 0}
.tok{padding:.15em .3em;border-radius:.25em}
.meta{color:#555;font-size:.9em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
section{border-bottom:1px solid #eee;padding-bottom:1em}
"""


def html_page(title: str, body: str) -> str:
    """Wrap an already-escaped HTML ``body`` in a standalone page with ``title`` (escaped)."""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
