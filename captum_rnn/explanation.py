"""The result object of ``captum_rnn.explain``: one explained sequence.

An :class:`Explanation` holds a sequence without its padding, one score per position,
and what produced it. It can plot itself, render escaped HTML and save itself as JSON.
:class:`Explanations` is a list of them with the same abilities for a batch.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from captum_rnn._utils.jsonio import load_json
from captum_rnn.viz import (
    figure_to_data_uri,
    html_page,
    plot_time_feature_attributions,
    plot_token_attributions,
    token_spans_html,
)

__all__ = ["Explanation", "Explanations"]

_FORMAT = "captum_rnn.Explanation/1"


@dataclass
class Explanation:
    """One explained sequence.

    Attributes:
        tokens: the tokens (token models) or step labels ``"t0", "t1", ...`` (continuous
            models), padding removed.
        scores: one attribution per position (summed over the embedding or feature axis).
        method: the attribution method's name.
        target: the output index explained.
        predicted: the predicted class (``None`` for regression).
        probability: the predicted class's probability (``None`` for regression).
        output: the model's output for ``target`` (a logit, or the regression value).
        delta: integrated gradients' convergence delta (``None`` for other methods).
        n_steps: integration steps used (``None`` for other methods).
        feature_scores: ``(time, features)`` attributions for continuous input.
        feature_names: optional names of the features.
        label: the true label when the caller gave one.
        class_names: optional names of the classes, used in titles.
        extra: free-form JSON-serialisable details.

    Example:
        >>> e = Explanation(tokens=["a", "good", "film"], scores=[0.0, 1.2, 0.1],
        ...                 method="integrated_gradients", target=1)
        >>> e.top(1)
        [('good', 1.2)]
    """

    tokens: list[str]
    scores: list[float]
    method: str
    target: int | None = None
    predicted: int | None = None
    probability: float | None = None
    output: float | None = None
    delta: float | None = None
    n_steps: int | None = None
    feature_scores: list[list[float]] | None = None
    feature_names: list[str] | None = None
    label: Any = None
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.scores):
            raise ValueError(
                f"tokens and scores differ in length: {len(self.tokens)} != {len(self.scores)}"
            )

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def is_continuous(self) -> bool:
        """True when the explanation is over time steps x features."""
        return self.feature_scores is not None

    def top(self, k: int = 5, absolute: bool = False) -> list[tuple[str, float]]:
        """The ``k`` positions with the highest score (or highest ``|score|``).

        Returns:
            ``[(token, score), ...]`` in decreasing order.
        """
        key = (lambda i: abs(self.scores[i])) if absolute else (lambda i: self.scores[i])
        order = sorted(range(len(self.scores)), key=key, reverse=True)[:k]
        return [(self.tokens[i], self.scores[i]) for i in order]

    def class_name(self, index: Any) -> str:
        """The name of class ``index`` when ``class_names`` are known, else ``str(index)``."""
        names = self.class_names
        if names is not None and isinstance(index, int) and 0 <= index < len(names):
            return names[index]
        return str(index)

    def title(self) -> str:
        """A one-line summary: method, target, prediction, delta."""
        parts = [self.method, f"target={self.class_name(self.target)}"]
        if self.predicted is not None:
            prob = f" (p={self.probability:.2f})" if self.probability is not None else ""
            parts.append(f"predicted={self.class_name(self.predicted)}{prob}")
        elif self.output is not None:
            parts.append(f"output={self.output:.3f}")
        if self.label is not None:
            parts.append(f"label={self.class_name(self.label)}")
        if self.delta is not None:
            parts.append(f"delta={self.delta:.2g}")
        return ", ".join(parts)

    # ------------------------------------------------------------------ figures and HTML
    def plot(self, ax: Any = None) -> Figure:
        """Draw the explanation: a token heatmap, or a time x feature heatmap.

        Args:
            ax: an optional matplotlib Axes to draw into.

        Returns:
            The matplotlib Figure (never shown).
        """
        if self.is_continuous:
            return plot_time_feature_attributions(
                self.feature_scores, self.feature_names, title=self.title(), ax=ax
            )
        return plot_token_attributions(self.tokens, self.scores, title=self.title(), ax=ax)

    def to_html(self, figure: bool | None = None) -> str:
        """Render an escaped HTML fragment: the title, shaded tokens, and for continuous
        input an embedded figure (or always with ``figure=True``)."""
        parts = [f'<p class="meta">{html.escape(self.title())}</p>']
        if not self.is_continuous:
            parts.append(token_spans_html(self.tokens, self.scores))
        if figure or (figure is None and self.is_continuous):
            fig = self.plot()
            parts.append(
                f'<img alt="{html.escape(self.method, quote=True)} attributions" '
                f'src="{figure_to_data_uri(fig)}">'
            )
        return "<section>" + "".join(parts) + "</section>"

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (non-finite floats become ``None``)."""
        data = asdict(self)
        data["format"] = _FORMAT
        return _finite(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        """Rebuild an explanation from :meth:`to_dict`'s output (validated)."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a saved Explanation (expected format {_FORMAT!r})")
        names = {f.name for f in fields(cls)}
        missing = {"tokens", "scores", "method"} - data.keys()
        if missing:
            raise ValueError(f"saved Explanation lacks {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: str | Path) -> None:
        """Write the explanation as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Explanation:
        """Read an explanation written by :meth:`save` (JSON only, nothing is unpickled)."""
        return load_json(path, "explanation", cls.from_dict)


class Explanations(list):
    """A list of :class:`Explanation` (what ``explain`` returns) with batch helpers."""

    def plot(self) -> Figure:
        """One row per explanation in a single Figure."""
        if not self:
            raise ValueError("there are no explanations to plot")
        fig = Figure(figsize=(10, 1.6 * len(self) + 0.5), layout="constrained")
        axes = fig.subplots(len(self), 1, squeeze=False)[:, 0]
        for explanation, ax in zip(self, axes, strict=True):
            explanation.plot(ax=ax)
        return fig

    def to_html(self, title: str = "captum-rnn explanations") -> str:
        """A standalone, escaped HTML page with every explanation."""
        return html_page(title, "\n".join(e.to_html() for e in self))

    def save(self, path: str | Path) -> None:
        """Write all explanations to one JSON file."""
        payload = {"format": _FORMAT + "s", "explanations": [e.to_dict() for e in self]}
        Path(path).write_text(json.dumps(payload, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Explanations:
        """Read explanations written by :meth:`save` (JSON only, nothing is unpickled)."""

        def build(data: Any) -> Explanations:
            if not isinstance(data, dict) or data.get("format") != _FORMAT + "s":
                raise ValueError("not a saved Explanations file")
            return cls(Explanation.from_dict(d) for d in data["explanations"])

        return load_json(path, "Explanations", build)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
