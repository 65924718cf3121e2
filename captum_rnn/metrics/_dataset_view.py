"""A data-set view of attributions, for finding shortcuts and bias.

One explanation says why the model decided one case; a shortcut (a token that decides
the class whatever the rest says, a feature the model leans on far more than on any
other) shows only when attributions are aggregated over a data set.
:func:`dataset_attribution_summary` aggregates them per token (or, for continuous input,
per feature and per time step) and per class, and flags what looks like a shortcut.

Definitions (token input; every count is over real positions only, padding never
counts):

- ``frequency_share`` = occurrences of the token / all real positions;
- ``influence_share`` = the token's summed ``|attribution|`` / the data set's summed
  ``|attribution|``;
- ``ratio`` = ``influence_share / frequency_share``: how many times more influence one
  occurrence has than the average position (1 = in proportion);
- ``purity`` = among the sequences holding the token, the share of its most common class
  (``dominant_class``; classes are the predicted classes by default, or the labels);
- ``flip_rate`` (only with ``model=``) = among the sequences holding the token, the share
  whose predicted class changes when all its occurrences are deleted.

A token (with at least ``min_count`` occurrences in at least ``min_count`` sequences) is
flagged

- **out of proportion** when ``ratio >= ratio_threshold`` (default 3);
- **carries a class on its own** when its presence alone predicts one class and the
  model leans on it: ``purity >= purity_threshold`` (default 0.9) and above that class's
  share of the data set, and ``ratio >= ratio_threshold``; or, when a model is given,
  when deleting it flips at least ``flip_threshold`` (default 0.5) of the predictions.

For continuous input the rows are features (``frequency_share = 1 / features``; purity
does not apply; with a model, ``flip_rate`` replaces the feature by ``baseline`` at every
real step), and the summary also holds ``(time, features)`` grids per class.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from captum_rnn._utils.options import check_int
from captum_rnn._utils.state import preserve_state
from captum_rnn._utils.targets import output_name
from captum_rnn.metrics._base import _adapt, _prepare

__all__ = ["DatasetAttributionSummary", "dataset_attribution_summary"]

_BY = ("predicted", "label", "target")


@dataclass
class DatasetAttributionSummary:
    """Attributions aggregated over a data set, per token (or feature) and per class.

    Attributes:
        kind: ``"token"`` or ``"continuous"``.
        rows: one dict per token (feature), by decreasing ``influence_share``, with keys
            ``token``, ``id`` (token id or feature index, ``None`` when unknown),
            ``count``, ``sequences``, ``mean_attribution``, ``mean_abs_attribution``,
            ``influence_share``, ``frequency_share``, ``ratio``, ``class_sequences``
            (class -> sequences holding it), ``class_mean_attribution`` (class -> mean
            attribution), ``dominant_class``, ``purity``, ``flip_rate``,
            ``out_of_proportion``, ``carries_class``, ``flagged`` and ``reasons``.
        classes: the classes seen, sorted (empty without classes).
        class_counts: class -> number of sequences.
        n_sequences: sequences aggregated.
        n_positions: real positions aggregated (steps for continuous input).
        settings: the thresholds used.
        class_names: optional display names of integer classes.
        step_counts: continuous only: ``(time,)`` sequences real at each step.
        mean_attribution: continuous only: ``(time, features)`` mean attribution.
        mean_abs_attribution: continuous only: ``(time, features)`` mean ``|attribution|``.
        influence_share: continuous only: ``(time, features)`` share of the summed
            ``|attribution|`` (sums to 1).
        class_mean_attribution: continuous only: ``(classes, time, features)`` mean
            attribution per class (NaN where no sequence of the class is that long).
    """

    kind: str
    rows: list[dict[str, Any]]
    classes: list[Any]
    class_counts: dict[Any, int]
    n_sequences: int
    n_positions: int
    settings: dict[str, Any]
    class_names: list[str] | None = None
    step_counts: Tensor | None = None
    mean_attribution: Tensor | None = None
    mean_abs_attribution: Tensor | None = None
    influence_share: Tensor | None = None
    class_mean_attribution: Tensor | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[dict[str, Any]]:
        """The rows flagged as out of proportion or carrying a class on their own."""
        return [r for r in self.rows if r["flagged"]]

    def row(self, token: Any) -> dict[str, Any]:
        """The row of ``token`` (its text, or its id / feature index).

        Raises:
            KeyError: when the token was not seen.
        """
        for r in self.rows:
            if r["token"] == token or (r["id"] is not None and r["id"] == token):
                return r
        raise KeyError(f"token {token!r} is not in the summary")

    def class_name(self, cls: Any) -> str:
        """The display name of class ``cls``."""
        return output_name(self.class_names, cls)

    def definitions(self) -> str:
        """One paragraph that says what the columns and flags mean (plain text)."""
        s = self.settings
        unit = "token" if self.kind == "token" else "feature"
        text = (
            f"influence share: the {unit}'s share of all |attribution|; frequency share: its "
            f"share of all real positions; ratio = influence / frequency share. Flagged when "
            f"seen at least {s['min_count']} times and ratio >= {s['ratio_threshold']:g} "
            f"(out of proportion)"
        )
        if self.kind == "token":
            text += (
                f", or when it carries a class on its own: purity (share of the sequences "
                f"holding it that have its dominant {s['by']} class) >= "
                f"{s['purity_threshold']:g} and above that class's base rate, with ratio >= "
                f"{s['ratio_threshold']:g}"
            )
        if s["model"]:
            text += (
                f"; or when deleting it flips >= {s['flip_threshold']:g} of the predictions"
                if self.kind == "token"
                else f"; carries a class when replacing it by the baseline flips >= "
                f"{s['flip_threshold']:g} of the predictions"
            )
        return text + (
            ". Padding is never counted. A flag is a prompt to look, not a verdict: a word "
            "such as 'excellent' may rightly carry a class; an id, a name or a formatting "
            "token should not."
        )

    # ------------------------------------------------------------------ rendering
    def _table(self, top: int | None, flagged_only: bool) -> list[dict[str, Any]]:
        rows = self.flagged if flagged_only else self.rows
        return rows if top is None else rows[:top]

    def _headers(self) -> list[str]:
        unit = "token" if self.kind == "token" else "feature"
        heads = [unit, "count", "mean attr.", "influence share", "frequency share", "ratio"]
        if self.kind == "token":
            heads += ["dominant class", "purity"]
        if self.settings["model"]:
            heads.append("flip rate")
        return heads + ["flag"]

    def _cells(self, r: dict[str, Any]) -> list[str]:
        cells = [
            str(r["token"]),
            str(r["count"]),
            _fmt(r["mean_attribution"]),
            _fmt(r["influence_share"]),
            _fmt(r["frequency_share"]),
            _fmt(r["ratio"]),
        ]
        if self.kind == "token":
            dominant = r["dominant_class"]
            cells += ["" if dominant is None else self.class_name(dominant), _fmt(r["purity"])]
        if self.settings["model"]:
            cells.append(_fmt(r["flip_rate"]))
        cells.append("; ".join(r["reasons"]))
        return cells

    def to_markdown(self, top: int | None = 20, flagged_only: bool = False) -> str:
        """The ``top`` rows (by influence share) as a Markdown table, then the flagged
        tokens and the definitions."""
        heads = self._headers()
        lines = [
            "| " + " | ".join(heads) + " |",
            "|---|" + "|".join("---:" for _ in heads[1:-1]) + "|---|",
        ]
        for r in self._table(top, flagged_only):
            cells = [c.replace("|", "\\|").replace("\n", " ") for c in self._cells(r)]
            lines.append("| " + " | ".join(cells) + " |")
        flagged = ", ".join(str(r["token"]).replace("|", "\\|") for r in self.flagged)
        lines += ["", f"**Flagged:** {flagged or 'none'}.", "", self.definitions()]
        return "\n".join(lines)

    def to_html(
        self, top: int | None = 20, flagged_only: bool = False, figure: bool = False
    ) -> str:
        """An escaped HTML fragment: the table (flagged rows in bold), the flagged tokens,
        the definitions and, with ``figure=True``, the plot embedded as a PNG.

        Every token and class name is escaped, so data cannot inject markup.
        """
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self._headers())
        body = []
        for r in self._table(top, flagged_only):
            style = ' style="font-weight:bold;color:#b2182b"' if r["flagged"] else ""
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in self._cells(r))
            body.append(f"<tr{style}>{cells}</tr>")
        flagged = ", ".join(html.escape(str(r["token"])) for r in self.flagged)
        parts = [
            '<div class="dataset-view">',
            f'<p class="note">{html.escape(self._summary_line())}</p>',
            f'<table class="benchmark"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>",
            f"<p><strong>Flagged:</strong> {flagged or 'none'}.</p>",
            f'<p class="note">{html.escape(self.definitions())}</p>',
        ]
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in self.notes]
        if figure:
            from captum_rnn.viz import figure_to_data_uri

            uri = figure_to_data_uri(self.plot())
            parts.append(
                '<figure><img alt="influence share against frequency share" '
                f'src="{html.escape(uri, quote=True)}"></figure>'
            )
        parts.append("</div>")
        return "".join(parts)

    def _summary_line(self) -> str:
        counts = ", ".join(f"{self.class_name(c)}: {n}" for c, n in self.class_counts.items())
        unit = "tokens" if self.kind == "token" else "steps"
        text = f"{self.n_sequences} sequences, {self.n_positions} {unit}"
        return text + (f"; sequences per class: {counts}" if counts else "")

    def plot(self, top: int = 15) -> Figure:
        """Bars of influence share against frequency share for the ``top`` tokens
        (features), flagged ones highlighted; see
        :func:`captum_rnn.viz.plot_dataset_summary`."""
        from captum_rnn.viz._dataset_view import plot_dataset_summary

        return plot_dataset_summary(self, top=top)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (rows, classes, settings; grids as nested lists;
        non-finite floats become ``None``)."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "rows": [
                {
                    **r,
                    "class_sequences": {str(k): v for k, v in r["class_sequences"].items()},
                    "class_mean_attribution": {
                        str(k): v for k, v in r["class_mean_attribution"].items()
                    },
                }
                for r in self.rows
            ],
            "classes": [_plain(c) for c in self.classes],
            "class_counts": {str(k): v for k, v in self.class_counts.items()},
            "n_sequences": self.n_sequences,
            "n_positions": self.n_positions,
            "settings": self.settings,
            "notes": list(self.notes),
        }
        for name in ("step_counts", "mean_attribution", "mean_abs_attribution", "influence_share"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value.tolist()
        if self.class_mean_attribution is not None:
            data["class_mean_attribution"] = self.class_mean_attribution.tolist()
        return _finite(data)

    def __repr__(self) -> str:
        flagged = [str(r["token"]) for r in self.flagged]
        return (
            f"DatasetAttributionSummary(kind={self.kind!r}, rows={len(self.rows)}, "
            f"sequences={self.n_sequences}, flagged={flagged})"
        )


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return _plain(value)


def _sorted_classes(values: Sequence[Any]) -> list[Any]:
    unique = set(values)
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=str)


# ---------------------------------------------------------------------- input handling
@dataclass
class _Data:
    """What the aggregation needs, on the CPU.

    Token input: ``keys`` are per-sequence lists of token keys, ``scores`` per-sequence
    float64 tensors. Continuous input: ``grid`` is ``(B, T, F)`` and ``lengths`` ``(B,)``.
    """

    kind: str
    scores: list[Tensor] | None = None
    keys: list[list[Any]] | None = None
    ids: list[Tensor] | None = None
    names: dict[Any, str] | None = None
    grid: Tensor | None = None
    lengths: Tensor | None = None
    inputs: Tensor | None = None
    feature_names: list[str] | None = None


def _explanation_classes(explanations: Sequence[Any], by: str) -> list[Any] | None:
    out = []
    for i, e in enumerate(explanations):
        if by == "predicted":
            value = e.predicted if e.predicted is not None else e.target
        elif by == "label":
            value = e.label
            if value is None:
                raise ValueError(
                    f"by='label' but explanations[{i}] has no label: pass labels= to explain"
                )
        else:
            value = e.target
        out.append(_plain(value))
    if all(v is None for v in out):
        return None
    if any(v is None for v in out):
        raise ValueError(f"some explanations have no {by} class")
    return out


def _from_explanations(
    explanations: Sequence[Any], inputs: Any, vocab: Any, feature_names: Any
) -> _Data:
    if not explanations:
        raise ValueError("explanations_or_attributions is empty")
    continuous = [getattr(e, "feature_scores", None) is not None for e in explanations]
    if any(continuous) and not all(continuous):
        raise ValueError("explanations mix continuous and token explanations")
    if all(continuous):
        grids = [torch.as_tensor(e.feature_scores, dtype=torch.float64) for e in explanations]
        features = grids[0].shape[1]
        for i, g in enumerate(grids):
            if g.dim() != 2 or g.shape[1] != features:
                raise ValueError(
                    f"explanations[{i}].feature_scores must be (time, {features}), "
                    f"got {tuple(g.shape)}"
                )
        lengths = torch.tensor([g.shape[0] for g in grids])
        grid = torch.zeros(len(grids), int(lengths.max()), features, dtype=torch.float64)
        for i, g in enumerate(grids):
            grid[i, : g.shape[0]] = g
        names = feature_names or explanations[0].feature_names
        return _Data(
            "continuous",
            grid=grid,
            lengths=lengths,
            inputs=None if inputs is None else torch.as_tensor(inputs),
            feature_names=list(names) if names is not None else None,
        )
    keys = [list(e.tokens) for e in explanations]
    scores = [torch.as_tensor(e.scores, dtype=torch.float64).reshape(-1) for e in explanations]
    ids = None
    if inputs is not None:
        x = torch.as_tensor(inputs)
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.dtype.is_floating_point or x.shape[0] != len(keys):
            raise ValueError(
                f"inputs must be token ids ({len(keys)}, time) matching the explanations, "
                f"got shape {tuple(x.shape)}"
            )
        ids = []
        for i, k in enumerate(keys):
            if x.shape[1] < len(k):
                raise ValueError(f"inputs[{i}] is shorter than explanations[{i}]")
            ids.append(x[i, : len(k)].cpu().long())
    elif vocab is not None:
        ids = [torch.tensor([vocab.index(t) for t in k], dtype=torch.long) for k in keys]
    elif all(t.isdigit() for k in keys for t in k):
        # explain() without vocab names tokens by their ids.
        ids = [torch.tensor([int(t) for t in k], dtype=torch.long) for k in keys]
    if ids is not None:
        # Group by id (the text is only a label) so that ids decoding to one text differ.
        names = {}
        for k, row in zip(keys, ids, strict=True):
            for tok, i in zip(k, row.tolist(), strict=True):
                names.setdefault(i, tok)
        keys = [row.tolist() for row in ids]
        return _Data("token", scores=scores, keys=keys, ids=ids, names=names)
    return _Data("token", scores=scores, keys=keys)


def _from_tensors(
    attributions: Any,
    inputs: Any,
    lengths: Any,
    vocab: Any,
    padding_idx: int | None,
    feature_names: Any,
) -> _Data:
    attributions = torch.as_tensor(attributions).detach().cpu()
    if not attributions.dtype.is_floating_point:
        raise TypeError(f"attributions must be a float tensor, got dtype {attributions.dtype}")
    token = inputs is not None and not torch.as_tensor(inputs).dtype.is_floating_point
    if token:
        ids = torch.as_tensor(inputs).detach().cpu().long()
        if ids.dim() == 1:
            ids = ids[None]
        if attributions.dim() == 1:
            attributions = attributions[None]
        if ids.dim() != 2:
            raise ValueError(f"inputs must be token ids (batch, time), got {tuple(ids.shape)}")
        if attributions.dim() == 3:
            attributions = attributions.sum(dim=-1)
        if attributions.dim() != 2 or attributions.shape[0] != ids.shape[0]:
            raise ValueError(
                f"attributions must be ({ids.shape[0]}, time) or ({ids.shape[0]}, time, dim) "
                f"for token inputs {tuple(ids.shape)}, got {tuple(attributions.shape)}"
            )
        pad = padding_idx
        if pad is None and vocab is not None:
            pad = getattr(vocab, "pad_index", None)
        if lengths is None:
            if pad is None:
                raise ValueError(
                    "cannot tell the padding of the token ids: pass padding_idx=, model=, "
                    "a vocab= with a pad_index, or lengths= (captum-rnn never assumes 0)"
                )
            steps = torch.arange(1, ids.shape[1] + 1)
            lengths = ((ids != pad) * steps).amax(dim=1)
        lengths = _check_lengths(lengths, ids.shape[0], ids.shape[1])
        width = int(attributions.shape[1])
        if width < ids.shape[1]:
            for i, n in enumerate(lengths.tolist()):
                real = ids[i, :n] != pad if pad is not None else torch.ones(n, dtype=torch.bool)
                span = int(real.nonzero()[-1]) + 1 if bool(real.any()) else 0
                if span > width:
                    raise ValueError(
                        f"attributions for sequence {i} have {width} positions but sequence "
                        f"{i} has {int(real.sum())} real tokens spanning {span} positions: "
                        "attributions must cover every real token (they are not zero-padded)"
                    )
            attributions = torch.nn.functional.pad(attributions, (0, ids.shape[1] - width))
        keys, scores, rows = [], [], []
        for i, n in enumerate(lengths.tolist()):
            row, s = ids[i, :n], attributions[i, :n].double()
            # a padding id is never evidence, wherever it sits
            real = row != pad if pad is not None else torch.ones_like(row, dtype=torch.bool)
            if not bool(torch.isfinite(s[real]).all()):
                raise ValueError(f"attributions[{i}] contain NaN or infinite values")
            rows.append(row[real])
            keys.append(row[real].tolist())
            scores.append(s[real])
        names = {}
        for row in rows:
            for i in row.unique().tolist():
                names.setdefault(i, vocab.token(i) if vocab is not None else str(i))
        return _Data("token", scores=scores, keys=keys, ids=rows, names=names)
    if inputs is None and attributions.dim() == 2:
        raise ValueError(
            "attributions are (batch, time): pass the token ids as inputs; continuous "
            "attributions must be (batch, time, features)"
        )
    if attributions.dim() != 3:
        raise ValueError(
            f"attributions must be (batch, time, features) for continuous input, "
            f"got shape {tuple(attributions.shape)}"
        )
    if lengths is None:
        lengths = torch.full((attributions.shape[0],), attributions.shape[1])
    lengths = _check_lengths(lengths, attributions.shape[0], attributions.shape[1])
    grid = attributions.double().clone()
    real = torch.arange(grid.shape[1])[None, :] < lengths[:, None]
    if not bool(torch.isfinite(grid[real]).all()):
        raise ValueError("attributions contain NaN or infinite values at real steps")
    grid[~real] = 0.0
    x = None
    if inputs is not None:
        x = torch.as_tensor(inputs).detach()
        if x.shape != attributions.shape:
            raise ValueError(
                f"inputs must have the attributions' shape {tuple(attributions.shape)}, "
                f"got {tuple(x.shape)}"
            )
    return _Data(
        "continuous",
        grid=grid,
        lengths=lengths,
        inputs=x,
        feature_names=list(feature_names) if feature_names is not None else None,
    )


def _check_lengths(lengths: Any, batch: int, time: int) -> Tensor:
    lengths = torch.as_tensor(lengths).detach().cpu()
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > time):
        raise ValueError(f"lengths must be in [1, {time}], got {lengths.tolist()}")
    return lengths.long()


def _check_classes(classes: Any, n: int) -> list[Any] | None:
    if classes is None:
        return None
    if isinstance(classes, Tensor):
        classes = classes.detach().cpu().reshape(-1).tolist()
    classes = [_plain(c) for c in classes]
    if len(classes) != n:
        raise ValueError(f"classes must have {n} entries (one per sequence), got {len(classes)}")
    return classes


def _check_threshold(name: str, value: Any, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return float(value)


# ---------------------------------------------------------------------- the model checks
def _predictions(model: nn.Module, x: Tensor, lengths: Tensor, batch_size: int) -> Tensor:
    """Predicted classes of a batch-first batch (``model``: a ``SequenceModel``)."""
    out = []
    with torch.no_grad(), preserve_state(model):
        for s in range(0, x.shape[0], batch_size):
            out.append(model(x[s : s + batch_size], lengths[s : s + batch_size]).argmax(-1))
    return torch.cat(out).cpu()


def _token_flip_rates(
    model: nn.Module, ids: list[Tensor], candidates: list[int], batch_size: int
) -> dict[int, float]:
    """Share of the sequences holding each candidate id whose prediction changes when
    every occurrence of it is deleted (the sequence gets shorter)."""
    pad = model.pad_id
    batch = _prepare(model, list(ids))
    device = batch.x.device
    before = _predictions(model, batch.x, batch.lengths, batch_size)
    jobs = []  # (candidate, row)
    for c in candidates:
        rows = [i for i, row in enumerate(ids) if bool((row == c).any())]
        jobs += [(c, i) for i in rows]
    changed: dict[int, list[bool]] = {c: [] for c in candidates}
    for s in range(0, len(jobs), batch_size):
        chunk = jobs[s : s + batch_size]
        seqs = []
        for c, i in chunk:
            kept = ids[i][ids[i] != c]
            seqs.append(kept if kept.numel() else torch.tensor([pad]))
        x = nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=pad).to(device)
        lengths = torch.tensor([len(q) for q in seqs], device=device)
        after = _predictions(model, x, lengths, batch_size)
        for (c, i), p in zip(chunk, after.tolist(), strict=True):
            changed[c].append(p != int(before[i]))
    return {c: sum(v) / len(v) for c, v in changed.items() if v}


def _feature_flip_rates(
    model: nn.Module, x: Tensor, lengths: Tensor, baseline: float, batch_size: int
) -> list[float]:
    batch = _prepare(model, model.to_native(x), lengths)  # x is batch-first here
    before = _predictions(model, batch.x, batch.lengths, batch_size)
    rates = []
    for f in range(batch.x.shape[2]):
        changed = batch.x.clone()
        changed[..., f] = torch.where(batch.mask, baseline, changed[..., f])
        after = _predictions(model, changed, batch.lengths, batch_size)
        rates.append(float((after != before).double().mean()))
    return rates


# ---------------------------------------------------------------------- aggregation
def _flags(row: dict[str, Any], settings: dict[str, Any], base_rates: dict[Any, float]) -> None:
    enough = row["count"] >= settings["min_count"] and row["sequences"] >= settings["min_count"]
    reasons = []
    row["out_of_proportion"] = bool(enough and row["ratio"] >= settings["ratio_threshold"])
    if row["out_of_proportion"]:
        reasons.append(f"influence {row['ratio']:.1f}x its frequency")
    carries = False
    dominant, purity = row["dominant_class"], row["purity"]
    if (
        enough
        and dominant is not None
        and purity >= settings["purity_threshold"]
        and purity > base_rates.get(dominant, 0.0)
        and row["ratio"] >= settings["ratio_threshold"]
    ):
        carries = True
        reasons.append(f"presence predicts class {dominant} ({purity:.0%})")
    flip = row["flip_rate"]
    if enough and flip is not None and flip >= settings["flip_threshold"]:
        carries = True
        reasons.append(f"removing it flips {flip:.0%} of predictions")
    row["carries_class"] = carries
    row["flagged"] = row["out_of_proportion"] or carries
    row["reasons"] = reasons


def _token_rows(data: _Data, classes: list[Any] | None) -> tuple[list[dict[str, Any]], int]:
    scores, keys = data.scores, data.keys
    total_abs = float(sum(float(s.abs().sum()) for s in scores))
    total = sum(len(k) for k in keys)
    stats: dict[Any, dict[str, Any]] = {}
    for i, (k, s) in enumerate(zip(keys, scores, strict=True)):
        if len(k) != len(s):
            raise ValueError(f"sequence {i} has {len(k)} tokens but {len(s)} attributions")
        cls = classes[i] if classes is not None else None
        for key, value in zip(k, s.tolist(), strict=True):
            st = stats.setdefault(
                key, {"sum": 0.0, "abs": 0.0, "count": 0, "seqs": set(), "csum": {}, "ccount": {}}
            )
            st["sum"] += value
            st["abs"] += abs(value)
            st["count"] += 1
            st["seqs"].add(i)
            if cls is not None:
                st["csum"][cls] = st["csum"].get(cls, 0.0) + value
                st["ccount"][cls] = st["ccount"].get(cls, 0) + 1
    rows = []
    for key, st in stats.items():
        count = st["count"]
        influence = st["abs"] / total_abs if total_abs > 0 else 0.0
        frequency = count / total
        class_sequences: dict[Any, int] = {}
        if classes is not None:
            for i in st["seqs"]:
                class_sequences[classes[i]] = class_sequences.get(classes[i], 0) + 1
        dominant, purity = None, math.nan
        if class_sequences:
            dominant = max(sorted(class_sequences, key=str), key=lambda c: class_sequences[c])
            purity = class_sequences[dominant] / len(st["seqs"])
        name = data.names.get(key, str(key)) if data.names is not None else str(key)
        rows.append(
            {
                "token": name,
                "id": key if data.names is not None else None,
                "count": count,
                "sequences": len(st["seqs"]),
                "mean_attribution": st["sum"] / count,
                "mean_abs_attribution": st["abs"] / count,
                "influence_share": influence,
                "frequency_share": frequency,
                "ratio": influence / frequency if frequency > 0 else math.nan,
                "class_sequences": dict(sorted(class_sequences.items(), key=lambda kv: str(kv[0]))),
                "class_mean_attribution": {
                    c: st["csum"][c] / st["ccount"][c] for c in sorted(st["csum"], key=str)
                },
                "dominant_class": dominant,
                "purity": purity,
                "flip_rate": None,
            }
        )
    return rows, total


def _continuous_rows(
    data: _Data, classes: list[Any] | None, class_list: list[Any]
) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    grid, lengths = data.grid, data.lengths
    n, time, features = grid.shape
    real = torch.arange(time)[None, :] < lengths[:, None]
    step_counts = real.sum(dim=0)
    denom = step_counts.clamp_min(1).double()[:, None]
    absolute = grid.abs()
    total_abs = float(absolute.sum())
    grids = {
        "step_counts": step_counts,
        "mean_attribution": grid.sum(dim=0) / denom,
        "mean_abs_attribution": absolute.sum(dim=0) / denom,
        "influence_share": absolute.sum(dim=0) / total_abs
        if total_abs > 0
        else torch.zeros(time, features, dtype=torch.float64),
    }
    per_class = torch.full((len(class_list), time, features), math.nan, dtype=torch.float64)
    if classes is not None:
        for j, c in enumerate(class_list):
            rows = torch.tensor([cls == c for cls in classes])
            counts = real[rows].sum(dim=0).double()[:, None]
            per_class[j] = torch.where(
                counts > 0, grid[rows].sum(dim=0) / counts.clamp_min(1), math.nan
            )
    grids["class_mean_attribution"] = per_class
    steps = int(real.sum())
    names = data.feature_names or [f"f{j}" for j in range(features)]
    if len(names) != features:
        raise ValueError(f"feature_names must have {features} names, got {len(names)}")
    rows = []
    for f in range(features):
        values = grid[..., f][real]
        influence = float(absolute[..., f].sum()) / total_abs if total_abs > 0 else 0.0
        class_mean = {}
        class_sequences = {}
        if classes is not None:
            for c in class_list:
                sel = torch.tensor([cls == c for cls in classes])
                v = grid[sel][..., f][real[sel]]
                class_mean[c] = float(v.mean()) if v.numel() else math.nan
                class_sequences[c] = int(sel.sum())
        rows.append(
            {
                "token": str(names[f]),
                "id": f,
                "count": steps,
                "sequences": n,
                "mean_attribution": float(values.mean()),
                "mean_abs_attribution": float(values.abs().mean()),
                "influence_share": influence,
                "frequency_share": 1.0 / features,
                "ratio": influence * features,
                "class_sequences": class_sequences,
                "class_mean_attribution": class_mean,
                "dominant_class": None,
                "purity": math.nan,
                "flip_rate": None,
            }
        )
    return rows, grids


def dataset_attribution_summary(
    explanations_or_attributions: Any,
    inputs: Any = None,
    *,
    lengths: Any = None,
    classes: Any = None,
    by: str = "predicted",
    vocab: Any = None,
    model: nn.Module | None = None,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    padding_idx: int | None = None,
    ratio_threshold: float = 3.0,
    purity_threshold: float = 0.9,
    flip_threshold: float = 0.5,
    min_count: int = 5,
    max_flip_checks: int = 20,
    baseline: float = 0.0,
    batch_size: int = 256,
    **hints: Any,
) -> DatasetAttributionSummary:
    """Aggregate attributions over a data set per token (or feature) and per class, and
    flag tokens whose influence is out of proportion to their frequency or that carry a
    class on their own (definitions in :mod:`captum_rnn.metrics._dataset_view` and in
    :meth:`DatasetAttributionSummary.definitions`).

    Args:
        explanations_or_attributions: ``Explanations`` from ``captum_rnn.explain`` (token
            or continuous), or an attribution tensor: ``(batch, time)`` or
            ``(batch, time, dim)`` (summed) with token ids as ``inputs``, or
            ``(batch, time, features)`` for continuous input.
        inputs: token ids ``(batch, time)`` (needed with a 2-D attribution tensor; with
            ``Explanations`` they identify tokens for the flip test), or the continuous
            input ``(batch, time, features)`` (needed for the flip test); with ``model``
            in the model's own layout (``(time, batch)`` for a time-major model).
        lengths: true lengths; inferred from the padding id for token ids, else every
            step is real.
        classes: one class per sequence to group by (predicted classes or labels); with
            ``Explanations`` the default comes from ``by``; with tensors the default is
            the model's predicted class when a model is given, else no classes.
        by: with ``Explanations``: ``"predicted"`` (the model's shortcuts; the default),
            ``"label"`` (biases of the data) or ``"target"`` (the class explained).
        vocab: turns token ids into text (and ``Explanations`` tokens back into ids).
        model: optional; enables the flip test (one batched pass per checked token).
        feature_names: names of continuous features.
        class_names: display names of integer classes.
        padding_idx: the padding token id (default: the model's ``pad_id``, the
            vocabulary's ``pad_index``; otherwise pass it or ``lengths``: 0 is never
            assumed).
        ratio_threshold: influence/frequency ratio that counts as out of proportion.
        purity_threshold: class purity of a token's sequences that counts as "carries a
            class on its own".
        flip_threshold: share of flipped predictions that counts as carrying a class.
        min_count: minimum occurrences and sequences for a token to be flagged at all.
        max_flip_checks: the flip test runs on this many tokens, by influence share.
        baseline: continuous flip test: the value a removed feature is set to.
        batch_size: sequences per forward pass in the flip test.
        hints: ``pad_id``, ``batch_first``, ``output``, ... for :func:`captum_rnn.adapt`
            (with ``model``).

    Returns:
        A :class:`DatasetAttributionSummary`: ``rows`` (by influence share),
        ``flagged``, ``to_markdown()``, ``to_html()``, ``plot()``.

    Raises:
        TypeError/ValueError: naming the argument that does not fit.

    Example:
        >>> from captum_rnn import Explanation
        >>> es = [Explanation(["cue", "a", "b"], [2.0, 0.1, -0.1], "ig", target=1, predicted=1),
        ...       Explanation(["a", "b", "c"], [0.1, 0.1, 0.2], "ig", target=0, predicted=0)]
        >>> summary = dataset_attribution_summary(es, min_count=1)
        >>> summary.rows[0]["token"], summary.rows[0]["flagged"]
        ('cue', True)
    """
    if by not in _BY:
        raise ValueError(f"by must be one of {_BY}, got {by!r}")
    settings = {
        "by": by,
        "ratio_threshold": _check_threshold("ratio_threshold", ratio_threshold, 0.0, None),
        "purity_threshold": _check_threshold("purity_threshold", purity_threshold, 0.0, 1.0),
        "flip_threshold": _check_threshold("flip_threshold", flip_threshold, 0.0, 1.0),
        "min_count": min_count,
        "model": model is not None,
    }
    min_count = check_int("min_count", min_count, 1)
    max_flip_checks = check_int("max_flip_checks", max_flip_checks, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model is not None:
        model, _ = _adapt(model, **hints)
        if padding_idx is None and model.is_token_model:
            padding_idx = model.pad_id
        if isinstance(inputs, Tensor) and inputs.dim() >= 2:
            inputs = model.to_batch_first(inputs)  # the model's own layout in
    elif hints:
        raise TypeError(f"model hints {sorted(hints)} need model=")

    source = explanations_or_attributions
    if isinstance(source, Tensor):
        data = _from_tensors(source, inputs, lengths, vocab, padding_idx, feature_names)
        n = len(data.keys) if data.kind == "token" else data.grid.shape[0]
        classes = _check_classes(classes, n)
    elif (
        isinstance(source, Sequence)
        and not isinstance(source, str)
        and source
        and all(hasattr(e, "tokens") and hasattr(e, "scores") for e in source)
    ):
        if lengths is not None:
            raise ValueError("lengths must be None with Explanations (they hold no padding)")
        data = _from_explanations(source, inputs, vocab, feature_names)
        n = len(source)
        classes = _check_classes(classes, n) if classes is not None else None
        if classes is None:
            classes = _explanation_classes(source, by)
        if class_names is None:
            class_names = getattr(source[0], "class_names", None)
    else:
        raise TypeError(
            "explanations_or_attributions must be Explanations from captum_rnn.explain or "
            f"an attribution tensor, got {type(source).__name__}"
        )
    if n == 0:
        raise ValueError("explanations_or_attributions holds no sequences")

    notes: list[str] = []
    if classes is None and model is not None and isinstance(source, Tensor):
        if data.kind == "token":
            batch = _prepare(model, list(data.ids))
            classes = _predictions(model, batch.x, batch.lengths, batch_size).tolist()
        elif data.inputs is not None:
            batch = _prepare(model, model.to_native(data.inputs), data.lengths)
            classes = _predictions(model, batch.x, batch.lengths, batch_size).tolist()
    class_list = _sorted_classes(classes) if classes is not None else []
    class_counts = {c: sum(1 for v in classes if v == c) for c in class_list} if classes else {}
    base_rates = {c: k / n for c, k in class_counts.items()}

    grids: dict[str, Tensor] = {}
    if data.kind == "token":
        rows, positions = _token_rows(data, classes)
        if model is not None:
            if data.ids is None:
                notes.append(
                    "Flip test skipped: the tokens could not be turned back into ids "
                    "(pass vocab= or inputs=)."
                )
            else:
                eligible = [
                    r
                    for r in sorted(rows, key=lambda r: -r["influence_share"])
                    if r["count"] >= settings["min_count"]
                    and r["sequences"] >= settings["min_count"]
                ][:max_flip_checks]
                rates = _token_flip_rates(model, data.ids, [r["id"] for r in eligible], batch_size)
                for r in eligible:
                    r["flip_rate"] = rates.get(r["id"])
    else:
        rows, grids = _continuous_rows(data, classes, class_list)
        positions = int(data.lengths.sum())
        if model is not None:
            if data.inputs is None:
                notes.append("Flip test skipped: pass the continuous input as inputs=.")
            else:
                rates = _feature_flip_rates(model, data.inputs, data.lengths, baseline, batch_size)
                for r, rate in zip(rows, rates, strict=True):
                    r["flip_rate"] = rate
    for r in rows:
        _flags(r, settings, base_rates)
    rows.sort(key=lambda r: (-r["influence_share"], str(r["token"])))
    return DatasetAttributionSummary(
        kind=data.kind,
        rows=rows,
        classes=class_list,
        class_counts=class_counts,
        n_sequences=n,
        n_positions=positions,
        settings=settings,
        class_names=list(class_names) if class_names is not None else None,
        notes=notes,
        **grids,
    )
