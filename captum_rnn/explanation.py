"""The result object of ``captum_rnn.explain``: one explained sequence.

An :class:`Explanation` holds a sequence without its padding, one score per position,
and what produced it; a sequence-output explanation (``output_labels`` set: a tagger, a
forecaster, a translation) holds one row of scores per explained output step. It can plot itself, render escaped HTML and save itself as JSON.
:class:`Explanations` is a list of them with the same abilities for a batch.
"""

from __future__ import annotations

import html
import json
import math
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from captum_rnn._utils.files import atomic_write_text
from captum_rnn._utils.jsonio import (
    StrictJsonFile,
    check,
    decode_float,
    encode_float,
    load_json,
    require,
)
from captum_rnn._utils.targets import output_name
from captum_rnn.viz import (
    figure_to_data_uri,
    html_page,
    plot_output_input_attributions,
    plot_time_feature_attributions,
    plot_token_attributions,
    token_spans_html,
)

__all__ = ["Explanation", "Explanations"]

_FORMAT = "captum_rnn.Explanation/1"


@dataclass
class Explanation(StrictJsonFile):
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
        output_labels: set for a sequence-output explanation: the labels of the explained
            output steps (predicted tags, ``"t+1"``..., target tokens). Then ``scores`` is
            ``(n_outputs, T_in)``, ``feature_scores`` ``(n_outputs, T_in, features)``, and
            ``target``, ``predicted``, ``probability``, ``output``, ``delta`` and
            ``n_steps`` are one value per output (or ``None``).
        prefix_scores: encoder-decoder explanations only: ``(n_outputs, n_outputs)``
            attribution of each output to the target prefix (zero on and above the
            diagonal).

    Example:
        >>> e = Explanation(tokens=["a", "good", "film"], scores=[0.0, 1.2, 0.1],
        ...                 method="integrated_gradients", target=1)
        >>> e.top(1)
        [('good', 1.2)]
    """

    json_what = "explanation"

    tokens: list[str]
    scores: list[Any]
    method: str
    target: Any = None
    predicted: Any = None
    probability: Any = None
    output: Any = None
    delta: Any = None
    n_steps: Any = None
    feature_scores: list[Any] | None = None
    feature_names: list[str] | None = None
    label: Any = None
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    output_labels: list[str] | None = None
    prefix_scores: list[list[float]] | None = None

    def __post_init__(self) -> None:
        if self.output_labels is None:
            if self.prefix_scores is not None:
                raise ValueError("prefix_scores needs output_labels (one per output step)")
            if len(self.tokens) != len(self.scores):
                raise ValueError(
                    f"tokens and scores differ in length: {len(self.tokens)} != {len(self.scores)}"
                )
            return
        n_out, n_in = len(self.output_labels), len(self.tokens)
        _check_rows(self.scores, n_out, n_in, "scores")
        if self.feature_scores is not None:
            _check_rows(self.feature_scores, n_out, n_in, "feature_scores")
        if self.prefix_scores is not None:
            _check_rows(self.prefix_scores, n_out, n_out, "prefix_scores")
        for name in _PER_OUTPUT_FIELDS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, list) or len(value) != n_out):
                raise ValueError(
                    f"{name} of a sequence-output explanation must be None or a list of "
                    f"{n_out} values (one per output label), got {value!r}"
                )

    def __len__(self) -> int:
        """The number of input positions (for every kind of explanation)."""
        return len(self.tokens)

    @property
    def is_continuous(self) -> bool:
        """True when the explanation is over time steps x features."""
        return self.feature_scores is not None

    @property
    def is_sequence_output(self) -> bool:
        """True when the explanation has one row of scores per output step."""
        return self.output_labels is not None

    @property
    def n_outputs(self) -> int:
        """How many output steps are explained (1 for a single-output explanation)."""
        return 1 if self.output_labels is None else len(self.output_labels)

    def for_output(self, index: int) -> Explanation:
        """The single-output explanation of output step ``index`` (one row).

        Args:
            index: the row, ``0 <= index < n_outputs`` (negative counts from the end).

        Returns:
            An :class:`Explanation` of that output alone, ``extra["output_label"]`` and
            ``extra["output_index"]`` naming it (its prefix scores, if any, in
            ``extra["prefix_scores"]``).

        Example:
            >>> e = Explanation(tokens=["a", "b"], scores=[[1.0, 0.0], [0.5, 0.5]],
            ...                 method="m", output_labels=["N", "V"])
            >>> e.for_output(1).scores
            [0.5, 0.5]
        """
        if self.output_labels is None:
            raise ValueError("for_output needs a sequence-output explanation (output_labels)")
        n = len(self.output_labels)
        if isinstance(index, bool) or not -n <= operator.index(index) < n:
            raise IndexError(f"output index {index!r} out of range for {n} outputs")
        i = operator.index(index) % n
        extra = dict(self.extra, output_label=self.output_labels[i], output_index=i)
        if self.prefix_scores is not None:
            extra["prefix_scores"] = list(self.prefix_scores[i][:i])
        values = {name: _row(getattr(self, name), i) for name in _PER_OUTPUT_FIELDS}
        return Explanation(
            tokens=list(self.tokens),
            scores=list(self.scores[i]),
            method=self.method,
            feature_scores=None if self.feature_scores is None else list(self.feature_scores[i]),
            feature_names=self.feature_names,
            label=self.label,
            class_names=self.class_names,
            extra=extra,
            **values,
        )

    def top(
        self, k: int = 5, absolute: bool = False, output: int | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` positions with the highest score (or highest ``|score|``).

        NaN scores rank last (below ``-inf``); ties keep the sequence order.

        Args:
            k: how many positions.
            absolute: rank by ``|score|``.
            output: for a sequence-output explanation, which output step's row to rank
                (required there).

        Returns:
            ``[(token, score), ...]`` in decreasing order.
        """
        if self.output_labels is not None:
            if output is None:
                raise ValueError(
                    "top() of a sequence-output explanation needs output=<row index> "
                    f"(0..{len(self.output_labels) - 1})"
                )
            return self.for_output(output).top(k, absolute)
        if output is not None:
            raise ValueError("output= is only for sequence-output explanations")

        def key(i: int) -> tuple[bool, float]:
            value = abs(self.scores[i]) if absolute else self.scores[i]
            is_nan = value != value
            return (not is_nan, 0.0 if is_nan else value)

        order = sorted(range(len(self.scores)), key=key, reverse=True)[:k]
        return [(self.tokens[i], self.scores[i]) for i in order]

    def class_name(self, index: Any) -> str:
        """The name of class ``index`` when ``class_names`` are known, else ``str(index)``."""
        return output_name(self.class_names, index)

    def title(self) -> str:
        """A one-line summary: method, target, prediction, delta."""
        if self.output_labels is not None:
            parts = [self.method, f"{len(self.output_labels)} outputs"]
            deltas = [abs(d) for d in self.delta or () if d is not None and d == d]
            if deltas:
                parts.append(f"max |delta|={max(deltas):.2g}")
            if self.label is not None:
                parts.append(f"label={self.class_name(self.label)}")
            return ", ".join(parts)
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
        """Draw the explanation: a token heatmap, or a time x feature heatmap; for a
        sequence-output explanation an output x input heatmap (features summed, the
        target prefix's columns beside the input's when there are prefix scores).

        Args:
            ax: an optional matplotlib Axes to draw into.

        Returns:
            The matplotlib Figure (never shown).
        """
        if self.output_labels is not None:
            labels = self.output_labels
            if len(set(labels)) < len(labels):  # a tagger's repeated tags: say which step
                steps = self.extra.get("output_steps") or range(len(labels))
                labels = [f"{step}: {label}" for step, label in zip(steps, labels, strict=True)]
            return plot_output_input_attributions(
                self.scores,
                self.tokens,
                labels,
                prefix_scores=self.prefix_scores,
                title=self.title(),
                ax=ax,
            )
        if self.is_continuous:
            return plot_time_feature_attributions(
                self.feature_scores, self.feature_names, title=self.title(), ax=ax
            )
        return plot_token_attributions(self.tokens, self.scores, title=self.title(), ax=ax)

    def to_html(self, figure: bool | None = None) -> str:
        """Render an escaped HTML fragment: the title, shaded tokens, and for continuous
        input an embedded figure (or always with ``figure=True``). A sequence-output
        explanation renders one row of shaded input tokens per output label."""
        parts = [f'<p class="meta">{html.escape(self.title())}</p>']
        if self.output_labels is not None:
            if not self.is_continuous:
                rows = "".join(
                    f'<tr><th class="out">{html.escape(str(label))}</th>'
                    f"<td>{token_spans_html(self.tokens, row)}</td></tr>"
                    for label, row in zip(self.output_labels, self.scores, strict=True)
                )
                parts.append(f'<table class="outputs">{rows}</table>')
        elif not self.is_continuous:
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
        """A strict-JSON dict of every field that :meth:`from_dict` reads back unchanged.

        Non-finite numbers round-trip: in the number fields (``scores``,
        ``feature_scores``, ``probability``, ``output``, ``delta``) they are written as
        ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``; in the free-form ``label`` and
        ``extra`` as ``{"__float__": "NaN"}`` and so on.

        Raises:
            ValueError: naming the field, when ``target``, ``predicted`` or ``n_steps``
                is neither an integer nor ``None`` (the file would not load).
        """
        data = asdict(self)
        data["format"] = _FORMAT
        for name in ("target", "predicted", "n_steps"):
            data[name] = _encode_index(data[name], name, self.output_labels is not None)
        if self.output_labels is None:  # files of single-output explanations are unchanged
            del data["output_labels"], data["prefix_scores"]
        for name in _NUMBER_FIELDS:
            if name in data:
                data[name] = _encode_numbers(data[name])
        data["label"] = _encode_any(data["label"])
        data["extra"] = _encode_any(data["extra"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        """Rebuild an explanation from :meth:`to_dict`'s output (validated).

        ``null`` scores (how files before non-finite numbers round-tripped stored them)
        are read as NaN.

        Raises:
            ValueError: naming the field, when ``data`` is not a saved explanation.
        """
        return cls._from_json(data, "")

    @classmethod
    def _from_json(cls, data: Any, where: str) -> Explanation:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            place = f"{where}: " if where else ""
            raise ValueError(f"{place}not a saved Explanation (expected format {_FORMAT!r})")
        at = f"{where}." if where else ""
        tokens = require(data, "tokens", list, where)
        for i, token in enumerate(tokens):
            check(token, str, f"{at}tokens[{i}]")
        labels = require(data, "output_labels", (list, type(None)), where, None)
        for i, item in enumerate(labels or ()):
            check(item, str, f"{at}output_labels[{i}]")
        rows = 0 if labels is None else 1  # sequence-output fields have one more axis
        scores = _decode_numbers(require(data, "scores", list, where), f"{at}scores", 1 + rows)
        values: dict[str, Any] = {"tokens": tokens, "scores": scores, "output_labels": labels}
        values["method"] = require(data, "method", str, where)
        for name in ("target", "predicted", "n_steps"):
            value = require(data, name, (list if rows else int, type(None)), where, None)
            for i, item in enumerate(value if rows and value is not None else ()):
                check(item, (int, type(None)), f"{at}{name}[{i}]")
            values[name] = value
        for name in ("probability", "output", "delta"):
            kinds = (list, type(None)) if rows else (float, str, type(None))
            value = require(data, name, kinds, where, None)
            if rows and value is not None:
                values[name] = [
                    None if v is None else decode_float(v, f"{at}{name}[{i}]")
                    for i, v in enumerate(value)
                ]
            else:
                values[name] = None if value is None else decode_float(value, at + name)
        feature_rows = require(data, "feature_scores", (list, type(None)), where, None)
        values["feature_scores"] = (
            None
            if feature_rows is None
            else _decode_numbers(feature_rows, f"{at}feature_scores", 2 + rows)
        )
        prefix = require(data, "prefix_scores", (list, type(None)), where, None)
        values["prefix_scores"] = (
            None if prefix is None else _decode_numbers(prefix, f"{at}prefix_scores", 2)
        )
        for name in ("feature_names", "class_names"):
            names = require(data, name, (list, type(None)), where, None)
            for i, item in enumerate(names or ()):
                check(item, str, f"{at}{name}[{i}]")
            values[name] = names
        try:
            values["label"] = _decode_any(data.get("label"))
            values["extra"] = _decode_any(require(data, "extra", dict, where, {}))
        except RecursionError:
            raise ValueError(f"{at}label or {at}extra is nested too deeply") from None
        return cls(**values)


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
        """Write all explanations to one strict JSON file (non-finite numbers round-trip)."""
        payload = {"format": _FORMAT + "s", "explanations": [e.to_dict() for e in self]}
        atomic_write_text(path, json.dumps(payload, indent=1, allow_nan=False))

    @classmethod
    def load(cls, path: str | Path) -> Explanations:
        """Read explanations written by :meth:`save` (JSON only, nothing is unpickled).

        Raises:
            ValueError: naming the file (and the field) when it is not saved explanations.
        """

        def build(data: Any) -> Explanations:
            if not isinstance(data, dict) or data.get("format") != _FORMAT + "s":
                raise ValueError("not a saved Explanations file")
            items = require(data, "explanations", list)
            return cls(Explanation._from_json(d, f"explanations[{i}]") for i, d in enumerate(items))

        return load_json(path, "Explanations", build)


_NUMBER_FIELDS = ("scores", "feature_scores", "probability", "output", "delta", "prefix_scores")
# One value per output step in a sequence-output explanation.
_PER_OUTPUT_FIELDS = ("target", "predicted", "probability", "output", "delta", "n_steps")


def _check_rows(rows: Any, n_rows: int, n_cols: int, name: str) -> None:
    if not isinstance(rows, list | tuple) or len(rows) != n_rows:
        raise ValueError(f"{name} must have one row per output label ({n_rows})")
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) != n_cols:
            raise ValueError(f"{name}[{i}] must have {n_cols} entries (one per column)")


def _row(value: Any, i: int) -> Any:
    return None if value is None else value[i]


def _encode_index(value: Any, name: str, per_output: bool) -> Any:
    """An integer field (or, per output, a list of them) as plain ints for JSON."""
    if value is None:
        return None
    if per_output:
        return [_encode_index(v, f"{name}[{i}]", False) for i, v in enumerate(value)]
    try:
        return operator.index(value)  # numpy and torch integers too
    except TypeError:
        raise ValueError(f"{name} must be an integer or None to be saved, got {value!r}") from None


_FLOAT_TAG = "__float__"  # marks a non-finite float in the free-form fields


def _encode_numbers(value: Any) -> Any:
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, list | tuple):
        return [_encode_numbers(v) for v in value]
    return value


def _decode_numbers(values: list[Any], where: str, depth: int) -> list[Any]:
    """A list (``depth`` 1) or list of lists (2) of numbers; ``null`` reads as NaN."""
    out: list[Any] = []
    for i, value in enumerate(values):
        here = f"{where}[{i}]"
        if depth > 1:
            out.append(_decode_numbers(check(value, list, here), here, depth - 1))
        else:
            out.append(math.nan if value is None else decode_float(value, here))
    return out


def _encode_any(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT_TAG: encode_float(value)}
    if isinstance(value, dict):
        return {k: _encode_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_any(v) for v in value]
    return value


def _decode_any(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {_FLOAT_TAG} and value[_FLOAT_TAG] in ("NaN", "Infinity", "-Infinity"):
            return decode_float(value[_FLOAT_TAG], _FLOAT_TAG)
        return {k: _decode_any(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_any(v) for v in value]
    return value
