"""``captum_rnn.benchmark``: which attribution method should I use for this model?

Runs every applicable attribution method on the same sequences, times it, scores it
with faithfulness, plausibility and sanity metrics, and recommends the fastest method
whose faithfulness is within a tolerance of the best. A random attribution is scored
alongside as the chance reference. Multivariate continuous input is explained per cell
(time step x feature): the perturbation metrics replace each method's top cells by 0
(not whole steps, which cannot tell a step's features apart), a ground truth of salient
cells ``(batch, time, features)`` is scored per cell (AUPRC, AUROC) and the
recommendation must agree with it too.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from captum_rnn._utils.options import check_float
from captum_rnn._utils.state import seeded
from captum_rnn.metrics._base import (
    _adapt,
    _Batch,
    _call_explainer,
    _device,
    _method_explainer,
    _nanmean,
    _native,
    _prepare,
    _resolve_target,
)
from captum_rnn.metrics._benchmark_outputs import output_step_rows
from captum_rnn.metrics._faithfulness import leave_one_out
from captum_rnn.metrics._registry import (
    METRICS,
    MetricContext,
    available_metrics,
    explain_cells,
    get_metric,
)
from captum_rnn.metrics._sanity import (
    _copy_model,
    explanation_similarity,
    label_randomized_copy,
    randomize_parameters,
)
from captum_rnn.models.protocol import adapt

__all__ = ["BenchmarkResult", "applicable_methods", "benchmark"]

#: Faithfulness metrics that are table columns of their own (from the registry).
FAITHFULNESS = tuple(
    m.name for m in METRICS.values() if m.family == "faithfulness" and m.name != "faithfulness"
)
PLAUSIBILITY = tuple(
    m.name for m in METRICS.values() if m.family == "plausibility" and m.needs == ("rationale",)
)
#: Metrics computed when ``metrics=None`` (plausibility ones need a rationale or a
#: lexicon; ``sensitivity_max`` and ``data_randomization`` are opt-in: they cost
#: ten more explanations per method and a training run).
DEFAULT_METRICS = tuple(m.name for m in METRICS.values() if m.default)
RANDOM = "random"


def applicable_methods(model: nn.Module) -> list[str]:
    """Registered attribution methods (aliases left out) that declare themselves
    applicable to ``model``. Methods without such a declaration are listed; the
    benchmark then tries them and skips, with the reason, those that fail.

    Returns:
        Method names, sorted.
    """
    from captum_rnn.attr import available_methods, get_method

    names = []
    for name in available_methods():
        cls = get_method(name)
        if cls.name != name:  # an alias such as "ig"
            continue
        check = getattr(cls, "applies_to", None) or getattr(cls, "is_applicable", None)
        if callable(check):
            try:
                if not check(model):
                    continue
            except Exception:  # noqa: BLE001 - a failing check means "not applicable"
                continue
        names.append(name)
    return names


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value != 0 and (abs(value) >= 10 ** (digits + 1) or abs(value) < 10**-(digits)):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    return str(value)


class BenchmarkResult(list):
    """The benchmark table: a list of rows, one dict per method, plus the verdict.

    Each row has ``method``, ``seconds`` (attribution time for all sequences),
    ``ms_per_sequence``, ``reference`` (True for the random attribution) and one entry
    per metric (mean over sequences; NaN where undefined).

    Attributes:
        metrics: the metric columns, in order.
        recommendation: the recommended method's name, or ``None``.
        reason: why it is recommended (or why none is).
        primary: the faithfulness column used to rank methods.
        tolerance: share of the best method's gain over random a method may lose.
        skipped: method -> why it was not benchmarked.
        attributions: method -> per-token scores ``(batch, time)`` on CPU.
        cells: method -> per-cell attributions ``(batch, time, features)`` on CPU, for
            multivariate continuous input or a rationale of cells (empty otherwise):
            what the faithfulness metrics and the ground truth rank there.
        n_sequences: how many sequences were scored.
        lexicon: method -> ``LexiconAgreement`` (words, counts) when a lexicon was given.
        details: settings used (sanity threshold, removal).
    """

    def __init__(
        self,
        rows: Sequence[dict[str, Any]] = (),
        *,
        metrics: Sequence[str] = (),
        recommendation: str | None = None,
        reason: str = "",
        primary: str = "faithfulness",
        tolerance: float = 0.1,
        skipped: Mapping[str, str] | None = None,
        attributions: Mapping[str, Tensor] | None = None,
        n_sequences: int = 0,
        details: Mapping[str, Any] | None = None,
        lexicon: Mapping[str, Any] | None = None,
        cells: Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__(rows)
        self.metrics = list(metrics)
        self.recommendation = recommendation
        self.reason = reason
        self.primary = primary
        self.tolerance = tolerance
        self.skipped = dict(skipped or {})
        self.attributions = dict(attributions or {})
        self.n_sequences = n_sequences
        self.details = dict(details or {})
        self.lexicon = dict(lexicon or {})
        self.cells = dict(cells or {})

    def row(self, method: str) -> dict[str, Any]:
        """The row of ``method``."""
        for r in self:
            if r["method"] == method:
                return r
        raise KeyError(f"no row for method {method!r}; rows: {[r['method'] for r in self]}")

    @property
    def methods(self) -> list[str]:
        """Benchmarked methods, the random reference excluded."""
        return [r["method"] for r in self if not r.get("reference")]

    def _columns(self) -> list[tuple[str, str]]:
        cols = [("method", "method"), ("ms_per_sequence", "ms / sequence")]
        for name in self.metrics:
            cols.append((name, f"{name} {get_metric(name).arrow()}"))
        return cols

    def _cells(self, row: dict[str, Any]) -> list[str]:
        name = row["method"] + (" (chance)" if row.get("reference") else "")
        if row["method"] == self.recommendation:
            name += " (recommended)"
        out = [name, _fmt(row.get("ms_per_sequence"), 2) if not row.get("reference") else "-"]
        out += [_fmt(row.get(m)) for m in self.metrics]
        return out

    def to_markdown(self, include_recommendation: bool = True) -> str:
        """The table in Markdown (arrows say which direction is better), then the
        recommendation and its reason."""
        cols = self._columns()
        lines = [
            "| " + " | ".join(title for _, title in cols) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|",
        ]
        for row in self:
            cells = [c.replace("|", "\\|") for c in self._cells(row)]
            lines.append("| " + " | ".join(cells) + " |")
        text = "\n".join(lines)
        if include_recommendation:
            text += "\n\n" + (
                f"**Recommendation: {self.recommendation}.** {self.reason}"
                if self.recommendation
                else f"**No recommendation.** {self.reason}"
            )
            if self.skipped:
                text += "\n\nSkipped: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items())
        return text

    def to_html(self) -> str:
        """The table and the recommendation as an escaped HTML fragment."""
        cols = self._columns()
        head = "".join(f"<th>{html.escape(title)}</th>" for _, title in cols)
        body = []
        for row in self:
            style = ' style="font-weight:bold"' if row["method"] == self.recommendation else ""
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in self._cells(row))
            body.append(f"<tr{style}>{cells}</tr>")
        verdict = (
            f"<p><strong>Recommendation: {html.escape(self.recommendation)}.</strong> "
            f"{html.escape(self.reason)}</p>"
            if self.recommendation
            else f"<p><strong>No recommendation.</strong> {html.escape(self.reason)}</p>"
        )
        skipped = ""
        if self.skipped:
            items = "".join(
                f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in self.skipped.items()
            )
            skipped = f"<p>Skipped methods:</p><ul>{items}</ul>"
        return (
            '<div style="overflow-x:auto"><table class="benchmark">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
            f"{verdict}{skipped}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable rows, recommendation and reason (NaN becomes ``None``)."""

        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and math.isnan(v) else v

        return {
            "rows": [{k: clean(v) for k, v in r.items()} for r in self],
            "metrics": self.metrics,
            "recommendation": self.recommendation,
            "reason": self.reason,
            "primary": self.primary,
            "tolerance": self.tolerance,
            "skipped": self.skipped,
            "n_sequences": self.n_sequences,
        }

    def plot(self) -> Figure:
        """One bar chart per metric (and the time per sequence); returns the Figure.

        The recommended method is drawn in a darker colour, the random reference in grey;
        each title's arrow says which direction is better.
        """
        columns = ["ms_per_sequence", *self.metrics]
        ncols = min(4, len(columns))
        nrows = math.ceil(len(columns) / ncols)
        height = 0.35 * max(len(self), 2) + 1.2
        fig = Figure(figsize=(3.4 * ncols, height * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        names = [r["method"] for r in self]
        colours = [
            "#9e9e9e"
            if r.get("reference")
            else ("#1f4e9c" if r["method"] == self.recommendation else "#7aa6e0")
            for r in self
        ]
        for index, (ax, column) in enumerate(zip(axes, columns, strict=False)):
            values = [float("nan") if r.get(column) is None else float(r.get(column)) for r in self]
            if column == "ms_per_sequence":
                values = [
                    math.nan if r.get("reference") else v for r, v in zip(self, values, strict=True)
                ]
                title = "ms / sequence \u2193"
            else:
                title = f"{column} {get_metric(column).arrow()}"
            ax.barh(range(len(names)), [0.0 if math.isnan(v) else v for v in values], color=colours)
            ax.set_yticks(
                range(len(names)),
                names if index % ncols == 0 else [""] * len(names),
                parse_math=False,
            )
            ax.invert_yaxis()
            ax.set_title(title, fontsize="medium", parse_math=False)
            ax.axvline(0, color="black", linewidth=0.6)
            ax.tick_params(labelsize="small")
        for ax in axes[len(columns) :]:
            ax.set_visible(False)
        fig.suptitle(
            f"Explainer benchmark on {self.n_sequences} sequences"
            + (f": {self.recommendation} recommended" if self.recommendation else ""),
            parse_math=False,
        )
        return fig

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return (
            f"BenchmarkResult({len(self)} rows, metrics={self.metrics}, "
            f"recommendation={self.recommendation!r})"
        )


# ---------------------------------------------------------------------- data
def _unpack_data(data: Any) -> tuple[Any, Any, Any, Any, Any]:
    """-> (inputs, lengths, labels, rationale, vocab)."""
    if hasattr(data, "masks") and hasattr(data, "sequences"):  # PlantedCues
        return list(data.sequences), None, list(data.labels), list(data.masks), data.vocab
    if hasattr(data, "sequences") and hasattr(data, "targets"):  # SequenceDataset
        return list(data.sequences), None, data.targets, None, None
    if isinstance(data, Tensor):
        return data, None, None, None, None
    if isinstance(data, tuple) and len(data) in (2, 3) and isinstance(data[0], Tensor):
        if len(data) == 3:
            return data[0], data[1], data[2], None, None
        return data[0], data[1], None, None, None
    if isinstance(data, dict):
        if "inputs" not in data:
            raise TypeError(
                f"data is a dict with keys {sorted(map(str, data))}: benchmark reads 'inputs' "
                "(and 'lengths', 'targets', 'rationale' if given); for a tokenizer's batch "
                "pass {'inputs': batch['input_ids'], 'targets': batch['labels']}"
            )
        return data["inputs"], data.get("lengths"), data.get("targets"), data.get("rationale"), None
    if isinstance(data, Sequence) and data and not isinstance(data, str):
        return list(data), None, None, None, None
    raise TypeError(
        "data must be token ids or continuous input (a tensor), (inputs, lengths[, targets]), "
        "a list of sequences, a SequenceDataset or PlantedCues; "
        f"got {type(data).__name__}"
    )


def _rationale_mask(rationale: Any, batch: _Batch) -> Tensor:
    """The rationale as a bool mask over the batch's real steps: ``(batch, time)``, or
    ``(batch, time, features)`` when it marks cells of continuous input."""
    features = None if batch.is_token else int(batch.x.shape[2])
    expected = "(batch, time)" + ("" if features is None else f" or (batch, time, {features})")
    if isinstance(rationale, Tensor):
        r = rationale.bool().cpu()
        cells = features is not None and r.dim() == 3 and r.shape[2] == features
        if (
            r.dim() != 2 + cells
            or r.shape[0] != batch.size
            or r.shape[1] < int(batch.lengths.max())
        ):
            raise ValueError(f"rationale must be {expected} like the inputs, got {tuple(r.shape)}")
        mask = torch.zeros(batch.size, batch.time, *r.shape[2:], dtype=torch.bool)
        width = min(r.shape[1], batch.time)
        mask[:, :width] = r[:, :width]
    else:
        rows = [torch.as_tensor(row).bool() for row in rationale]
        if len(rows) != batch.size:
            raise ValueError(f"rationale must have {batch.size} masks, got {len(rows)}")
        cells = features is not None and rows[0].dim() == 2
        mask = torch.zeros(
            batch.size, batch.time, *((features,) if cells else ()), dtype=torch.bool
        )
        for i, row in enumerate(rows):
            n = int(batch.lengths[i])
            shape = (n, features) if cells else (n,)
            if tuple(row.shape) != shape and not (not cells and row.numel() == n):
                raise ValueError(
                    f"rationale[{i}] has shape {tuple(row.shape)} for a sequence of {n} steps; "
                    f"expected {shape} (every rationale {expected})"
                )
            mask[i, :n] = row.reshape(shape)
    real = batch.mask.cpu()
    return mask & (real[..., None] if mask.dim() == 3 else real)


# ---------------------------------------------------------------------- the benchmark
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _explain_in_chunks(
    explainer: Callable,
    model: nn.Module,
    batch: _Batch,
    target: Tensor,
    chunk: int,
    cells: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Per-step scores ``(batch, time)`` and, with ``cells``, per-cell attributions
    ``(batch, time, features)`` (a method that scores steps only gives each feature of a
    step its step's score: it does not tell them apart)."""
    parts, cell_parts = [], []
    for s in range(0, batch.size, chunk):
        part = batch.rows(slice(s, s + chunk))
        if cells:
            scores, found = explain_cells(explainer, model, part, target[s : s + chunk])
            cell_parts.append(found)
        else:
            scores = _call_explainer(explainer, model, part, target[s : s + chunk])
        parts.append(scores)
    return torch.cat(parts), (torch.cat(cell_parts) if cells else None)


def _random_explainer(seed: int, cells: bool = False) -> Callable:
    def random(model: nn.Module, x: Tensor, lengths: Tensor, target: Tensor) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        shape = x.shape[:3] if cells else x.shape[:2]
        scores = torch.rand(shape, generator=g, dtype=torch.float64)
        mask = torch.arange(x.shape[1])[None, :] < lengths.cpu()[:, None]
        return (scores * (mask[..., None] if cells else mask)).to(x.device)

    random.__name__ = RANDOM
    return random


def _resolve_methods(
    model: nn.Module,
    methods: Any,
    method_kwargs: Mapping[str, dict[str, Any]],
    cells: bool = False,
) -> list[tuple[str, Callable]]:
    from captum_rnn.attr import get_method

    if methods is None:
        names: list[Any] = applicable_methods(model.module)
    elif isinstance(methods, str) or callable(methods):
        names = [methods]
    else:
        names = list(methods)
    if not names:
        raise ValueError("methods is empty: pass at least one method")
    resolved = []
    for item in names:
        if isinstance(item, str):
            if item == RANDOM:
                raise ValueError("'random' is always benchmarked as the chance reference")
            get_method(item)  # raises a clear ValueError for an unknown name
            options = method_kwargs.get(item, {})
            resolved.append((item, _method_explainer(item, cells=cells, **options)))
        elif callable(item):
            resolved.append((getattr(item, "__name__", repr(item)), item))
        else:
            raise TypeError(f"methods must hold method names or callables, got {item!r}")
    return resolved


def _resolve_metrics(
    metrics: Any, has_rationale: bool, has_lexicon: bool, has_train: bool
) -> list[str]:
    have = {
        "rationale": has_rationale,
        "lexicon": has_lexicon,
        "train_data": has_train,
        "explainer": True,
    }
    if metrics is None:
        chosen = [m.name for m in METRICS.values() if m.default]
        chosen += [
            m.name
            for m in METRICS.values()
            if not m.default
            and m.needs
            and set(m.needs) - {"explainer"}
            and all(have[n] for n in m.needs)
        ]
    else:
        chosen = [metrics] if isinstance(metrics, str) else list(metrics)
    for name in chosen:
        if name not in METRICS:
            raise ValueError(f"metrics must be taken from {available_metrics()}, got {name!r}")
        for need in METRICS[name].needs:
            if have[need]:
                continue
            if need == "rationale":
                raise ValueError(
                    f"metric {name!r} needs a rationale: pass rationale= or PlantedCues data"
                )
            if need == "lexicon":
                raise ValueError(f"metric {name!r} needs lexicon= and vocab= (a token model)")
            raise ValueError(f"metric {name!r} needs train_data=")
    ordered = [m for m in METRICS if m in chosen]
    if (
        "comprehensiveness" in ordered
        and "sufficiency" in ordered
        and "faithfulness" not in ordered
    ):
        ordered.insert(0, "faithfulness")
    return ordered


def benchmark(
    model: nn.Module,
    data: Any,
    methods: Sequence[Any] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    target: Any = None,
    rationale: Any = None,
    lexicon: Mapping[str, float] | None = None,
    vocab: Any = None,
    positive_class: int = 1,
    train_data: Any = None,
    method_kwargs: Mapping[str, dict[str, Any]] | None = None,
    tolerance: float = 0.1,
    truth_tolerance: float = 0.05,
    sanity_threshold: float = 0.5,
    removal: str | None = None,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    output: str | None = None,
    outputs: Any = None,
    lengths: Any = None,
    **hints: Any,
) -> BenchmarkResult:
    """Benchmark attribution methods on a model: speed, faithfulness, plausibility, sanity.

    Every method is run on the same sequences (explaining ``target``, by default the
    predicted class), timed, and scored with each metric (mean over sequences). A
    random attribution is scored as the chance reference. The recommendation is the
    fastest method whose faithfulness (comprehensiveness minus sufficiency) is within
    ``tolerance`` of the best method's gain over random, among methods that pass the
    parameter-randomisation check (when it is computed): their explanations change when
    the weights are randomised, by less than ``sanity_threshold`` of rank similarity or
    by more than two random draws of the weights differ from each other (recurrent
    models share recency whatever their weights). With a ground truth of salient cells
    the recommended method must also be within ``truth_tolerance`` of the best
    method's ``auprc`` against it. On multivariate continuous input every metric ranks
    each method's per-cell attributions (``result.cells``): comprehensiveness,
    sufficiency and the deletion/insertion curves replace the top (step, feature) cells
    by 0, ``loo_kendall`` compares each cell's attribution with the drop of replacing that
    cell alone (drops computed once, one forward pass per real cell) and ``infidelity``
    perturbs single cells, so a method that only scores steps is compared on how it
    ranks cells.

    Args:
        model: the user's model (any ``nn.Module`` or ``LightningModule`` over
            sequences; it goes through :func:`captum_rnn.adapt`).
        data: token ids ``(batch, time)``, continuous input ``(batch, time, features)``,
            ``(inputs, lengths[, targets])``, a list of sequences, a
            ``SequenceDataset`` or ``PlantedCues`` (whose masks are used as rationale).
        methods: names from ``captum_rnn.attr.available_methods()`` or callables
            ``(model, inputs, lengths, target) -> scores``; ``None`` discovers every
            registered method applicable to the model (aliases left out).
        metrics: names from ``captum_rnn.metrics.available_metrics()``; ``None`` gives the
            faithfulness metrics and the randomisation check, plus the plausibility
            metrics when a rationale or lexicon is given and the data-label check
            when ``train_data`` is given. ``sensitivity_max`` is opt-in.
        target: output explained: int, one per sequence, or ``None`` (predicted class).
        rationale: 0/1 masks of the tokens that should matter (plausibility):
            ``(batch, time)`` or one mask per sequence; for continuous input also the
            true salient cells ``(batch, time, features)`` (or one ``(length, features)``
            mask per sequence). Cells are then scored per cell: every method's
            attributions of each (step, feature) ranked by absolute value (``auprc``,
            ``auroc``, ``token_f1``, ``token_iou`` over the real cells), the random
            reference drawn per cell.
        lexicon: word -> human valence, for ``lexicon_spearman`` (with ``vocab``).
        vocab: a ``Vocabulary`` turning ids into words (taken from ``PlantedCues``).
        positive_class: the class the lexicon's positive valence corresponds to.
        train_data: training data for the data-label randomisation check.
        method_kwargs: per-method options, e.g. ``{"lime": {"n_samples": 100}}``.
        tolerance: a method is "as faithful" when it keeps at least ``1 - tolerance``
            of the best method's faithfulness gain over the random attribution.
        truth_tolerance: with a ground truth of salient cells, how much ``auprc`` below
            the best method's the recommended method may score.
        sanity_threshold: randomisation similarity below which a method passes (it
            also passes below its ``randomization_floor``, the similarity of its
            explanations of two randomised copies, reported in each row).
        removal: ``"delete"`` or ``"replace"`` for the perturbation metrics; ``None``
            deletes tokens and steps and, on multivariate continuous input (scored per
            cell), replaces each method's top cells by 0 (the reference the gradient
            methods integrate from). ``"delete"`` on such input deletes whole steps
            ranked by each method's summed cells (the former behaviour).
        batch_size: sequences explained per call (bounds memory for IG, LIME ...).
        seed: seeds sampling methods, noise and the random reference.
        progress: show a progress bar (tqdm) while it runs.
        output: what the model returns (``"logits"``, ``"probs"``, ``"log_probs"``,
            ``"regression"``; inferred when ``None``); classifiers are scored by their
            probabilities.
        outputs: for a tagger or forecaster, the output steps to explain (``"all"``, a
            list or a slice, as ``explain`` takes them): every method explains each of
            them, and each output's explanation is scored on that output
            (comprehensiveness, sufficiency, their difference ``faithfulness``, and with
            ``rationale`` of shape ``(batch, output steps, time)`` the average precision
            of each output's row). A tagger is scored with ``removal="replace"``
            (deleting tokens would move its outputs) unless told otherwise.
        lengths: true lengths of padded continuous ``data`` given as a tensor (as
            ``explain`` and the metrics take them; the same as ``data=(inputs, lengths)``).
        hints: ``pad_id``, ``batch_first``, ``embedding``, ``num_classes``,
            ``lengths_arg``, ``mask_arg`` for :func:`captum_rnn.adapt`.

    Returns:
        A :class:`BenchmarkResult` (a list of rows with ``to_markdown()``, ``plot()``,
        ``recommendation`` and ``reason``).

    Example:
        >>> from captum_rnn.data import planted_cues
        >>> from captum_rnn.models import RNNClassifier
        >>> data = planted_cues(16, length=(5, 8), vocab_size=10)
        >>> model = RNNClassifier(2, vocab_size=len(data.vocab), hidden_size=8)  # doctest: +SKIP
        >>> result = benchmark(model, data, methods=["saliency", "integrated_gradients"])  # doctest: +SKIP
        >>> print(result.to_markdown())  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    truth_tolerance = check_float("truth_tolerance", truth_tolerance, 0.0)
    method_kwargs = dict(method_kwargs or {})
    if lengths is not None:
        if not isinstance(data, Tensor):
            raise ValueError(
                "lengths= goes with data given as a tensor; for other data put the lengths "
                "in it: data=(inputs, lengths)"
            )
        data = (data, lengths)
    if outputs is not None:
        return _benchmark_outputs(
            model, data, methods, outputs, rationale=rationale, metrics=metrics,
            method_kwargs=method_kwargs,
            tolerance=tolerance, sanity_threshold=sanity_threshold,
            removal=removal, seed=seed,
            hints={**hints, **({} if output is None else {"output": output})},
        )  # fmt: skip
    inputs, lengths, _labels, data_rationale, data_vocab = _unpack_data(data)
    rationale = data_rationale if rationale is None else rationale
    vocab = data_vocab if vocab is None else vocab
    model, _ = _adapt(model, output, **hints)
    batch = _prepare(model, inputs, lengths)
    device = _device(model)
    target = _resolve_target(model, batch, target, 256)
    rationale_mask = None if rationale is None else _rationale_mask(rationale, batch)
    has_lexicon = lexicon is not None and vocab is not None and batch.is_token
    chosen = _resolve_metrics(
        metrics, rationale_mask is not None, has_lexicon, train_data is not None
    )
    # Multivariate continuous input is explained per cell: which feature of a step the
    # model reads is what a ground truth checks and what randomising the weights changes.
    cells = (rationale_mask is not None and rationale_mask.dim() == 3) or (
        not batch.is_token and batch.x.shape[2] > 1
    )
    explainers = _resolve_methods(model, methods, method_kwargs, cells)

    per_method = len(chosen) + 1
    bar = tqdm(
        total=len(explainers) * per_method + 2 + per_method,
        desc="benchmark",
        disable=not progress,
        leave=False,
    )
    skipped: dict[str, str] = {}
    attributions: dict[str, Tensor] = {}
    cell_attributions: dict[str, Tensor] = {}
    seconds: dict[str, float] = {}
    lexicon_details: dict[str, Any] = {}
    try:
        # Shared work: leave-one-out drops and randomised copies serve every method.
        bar.set_postfix_str("leave-one-out")
        # per cell when the metrics rank cells (see the registry's ``_perturbed``)
        drops = (
            leave_one_out(
                model,
                _native(model, batch.x),
                target,
                lengths=batch.lengths,
                removal=removal,
                cells=cells and removal != "delete",
            )
            if "loo_kendall" in chosen
            else None
        )
        bar.update(1)
        randomized = floor_model = None
        if "randomization" in chosen:
            randomized = adapt(_copy_model(model.module), **model.hints)
            with seeded(seed, device):
                randomize_parameters(randomized.module)
            # a second random draw: what explanations share whatever the weights are
            floor_model = adapt(_copy_model(model.module), **model.hints)
            with seeded(seed + 1, device):
                randomize_parameters(floor_model.module)
        shuffled = None
        if "data_randomization" in chosen:
            bar.set_postfix_str("training on shuffled labels")
            shuffled, _ = label_randomized_copy(model, train_data, seed=seed)
            shuffled = adapt(shuffled, **model.hints)
        bar.update(1)

        rows = []
        all_explainers = [*explainers, (RANDOM, _random_explainer(seed, cells))]
        for name, explainer in all_explainers:
            bar.set_postfix_str(f"{name}: attributions")
            try:
                _sync(device)
                start = time.perf_counter()
                with seeded(seed, device):
                    scores, found = _explain_in_chunks(
                        explainer, model, batch, target, batch_size, cells
                    )
                _sync(device)
                seconds[name] = time.perf_counter() - start
            except Exception as error:  # noqa: BLE001 - a method that fails is reported, not fatal
                if name == RANDOM:
                    raise
                skipped[name] = f"{type(error).__name__}: {error}"
                bar.update(per_method)
                continue
            bar.update(1)
            attributions[name] = scores.cpu()
            if found is not None:
                cell_attributions[name] = found.cpu()
            row: dict[str, Any] = {
                "method": name,
                "reference": name == RANDOM,
                "seconds": seconds[name],
                "ms_per_sequence": 1e3 * seconds[name] / batch.size,
            }
            context = MetricContext(
                model,
                batch,
                scores,
                target,
                explainer,
                drops=drops,
                randomized=randomized,
                shuffled=shuffled,
                rationale=rationale_mask,
                cells=found,
                lexicon=lexicon,
                vocab=vocab,
                positive_class=positive_class,
                removal=removal,
                seed=seed,
            )
            for metric in chosen:
                bar.set_postfix_str(f"{name}: {metric}")
                row[metric] = _summary(METRICS[metric].compute(context))
                bar.update(1)
            if "randomized" in context.cache and name != RANDOM:
                bar.set_postfix_str(f"{name}: randomization floor")
                row["randomization_floor"] = _randomization_floor(context, floor_model)
            if "lexicon" in context.details:
                lexicon_details[name] = context.details["lexicon"]
            rows.append(row)
    finally:
        bar.close()

    primary = next((m for m in ("faithfulness", *FAITHFULNESS) if m in chosen), None)
    fallbacks = [m for m in FAITHFULNESS if m in chosen]
    truth = "auprc" if cells and rationale_mask is not None and "auprc" in chosen else None
    recommendation, reason = _recommend(
        rows, primary, tolerance, sanity_threshold, fallbacks, truth, truth_tolerance
    )
    return BenchmarkResult(
        rows,
        metrics=chosen,
        recommendation=recommendation,
        reason=reason,
        primary=primary or "",
        tolerance=tolerance,
        skipped=skipped,
        attributions=attributions,
        n_sequences=batch.size,
        details={
            "sanity_threshold": sanity_threshold,
            "removal": removal or ("replace cells" if cells else "delete"),
        },
        lexicon=lexicon_details,
        cells=cell_attributions,
    )


def _randomization_floor(context: MetricContext, other: nn.Module) -> float:
    """Mean similarity of the method's explanations of two independently randomised
    copies of the model: what its explanations share through the input and the
    architecture alone, whatever the weights (recency in a recurrent model, the input's
    magnitude in gradient x input)."""
    first = context.cache["randomized"]
    with seeded(context.seed, _device(context.model)):
        if context.cells is None:
            second = _call_explainer(context.explainer, other, context.batch, context.target)
            real = context.batch.mask
        else:
            second = explain_cells(context.explainer, other, context.batch, context.target)[1]
            real = context.batch.mask[..., None].expand(second.shape)
    return _nanmean(explanation_similarity(first.flatten(1), second.flatten(1), real.flatten(1)))


def _benchmark_outputs(
    model: nn.Module,
    data: Any,
    methods: Sequence[Any] | None,
    outputs: Any,
    *,
    rationale: Any,
    metrics: Any,
    method_kwargs: Mapping[str, dict[str, Any]],
    tolerance: float,
    sanity_threshold: float,
    removal: str | None,
    seed: int,
    hints: Mapping[str, Any],
) -> BenchmarkResult:
    """:func:`benchmark` of every selected output step (``outputs=``)."""
    inputs, lengths, _labels, _rationale, _vocab = _unpack_data(data)
    seq = adapt(model, **{**hints, "output_steps": True})
    x = torch.as_tensor(inputs)
    batch_first = seq.to_batch_first(x)
    if seq.is_token_model:
        real = seq.padding_mask(batch_first).cpu()
    else:
        n = torch.full((batch_first.shape[0],), batch_first.shape[1]) if lengths is None else (
            torch.as_tensor(lengths).cpu())  # fmt: skip
        real = torch.arange(batch_first.shape[1])[None, :] < n[:, None]
    truth = None
    if rationale is not None:
        truth = torch.as_tensor(rationale).bool().cpu()
        size, time = batch_first.shape[:2]
        if truth.dim() != 3 or truth.shape[0] != size or truth.shape[2] != time:
            raise ValueError(
                f"rationale for outputs= must be (batch={size}, output steps, time={time}) "
                f"batch first, got shape {tuple(truth.shape)}"
            )
    names = list(methods) if methods is not None else applicable_methods(model)
    if not all(isinstance(name, str) for name in names):
        raise TypeError("benchmark(outputs=...) takes method names, not callables")
    per_output = available_metrics(per_output=True)
    chosen = [
        name
        for name in _resolve_metrics(metrics, truth is not None, False, False)
        if metrics is not None or name in per_output
    ]
    unsupported = [name for name in chosen if name not in per_output]
    if unsupported:
        raise ValueError(
            f"benchmark(outputs=...) measures the metrics {per_output} on every output "
            f"step; {unsupported} are not defined per output step"
        )
    # the recommendation reads faithfulness, then comprehensiveness and sufficiency
    needed = {"faithfulness", "comprehensiveness", "sufficiency", *chosen}
    chosen = [name for name in METRICS if name in needed]
    rows, skipped = output_step_rows(
        model, x, names, outputs=outputs, lengths=lengths, real=real, rationale=truth,
        metrics=[METRICS[name] for name in chosen], method_kwargs=method_kwargs,
        removal=removal, seed=seed, hints=hints,
    )  # fmt: skip
    recommendation, reason = _recommend(
        rows, "faithfulness", tolerance, sanity_threshold, ["comprehensiveness", "sufficiency"]
    )
    return BenchmarkResult(
        rows,
        metrics=chosen,
        recommendation=recommendation,
        reason=reason,
        primary="faithfulness",
        tolerance=tolerance,
        skipped=skipped,
        n_sequences=int(real.shape[0]),
        details={"outputs": repr(outputs), "removal": removal or "auto"},
    )


def _summary(values: Any) -> float:
    """A metric's per-sequence values (or one number) as the table's mean."""
    if isinstance(values, Tensor):
        return _nanmean(values.double())
    return float(values)


def _recommend(
    rows: list[dict[str, Any]],
    primary: str | None,
    tolerance: float,
    threshold: float,
    fallbacks: Sequence[str] = (),
    truth: str | None = None,
    truth_tolerance: float = 0.05,
) -> tuple[str | None, str]:
    """The fastest sane method within ``tolerance`` of the best on ``primary``.

    A method is sane when its randomisation similarity is below ``threshold``, or below
    its ``randomization_floor`` (the similarity of its explanations of two randomised
    copies): then the trained weights change its explanation more than one random draw
    of the weights differs from another, and what stays alike comes from the input and
    the architecture (recency), not from a method blind to the model.

    With a ground truth (``truth``, the rationale's ``auprc`` over cells) the candidates
    must also be within ``truth_tolerance`` of the best method on it; when none is, the
    sane method that agrees best with the ground truth is recommended.

    When no method beats random on ``primary``, that metric cannot rank the methods on
    this model (deleting any token flips a parity or length language, so every ranking
    scores alike): the next metric of ``fallbacks`` on which some method beats random
    ranks them instead. When every method near the best fails the randomisation check,
    the most faithful method that passes it is recommended, and the reason says so.
    """
    methods = [r for r in rows if not r["reference"]]
    if not methods:
        return None, "no method could be benchmarked"
    if primary is None:
        fastest = min(methods, key=lambda r: r["seconds"])
        return fastest["method"], (
            f"{fastest['method']} is the fastest method; no faithfulness metric was computed, "
            "so faithfulness was not compared"
        )
    metric = get_metric(primary)
    sign = 1.0 if metric.higher_is_better else -1.0
    valued = [r for r in methods if not math.isnan(r.get(primary, math.nan))]
    if not valued:
        return None, f"{primary} is undefined for every method"
    best = max(valued, key=lambda r: sign * r[primary])
    reference = next((r for r in rows if r["reference"]), None)
    chance = reference[primary] if reference is not None else math.nan
    gain = sign * (best[primary] - chance) if not math.isnan(chance) else abs(best[primary])
    label = "comprehensiveness - sufficiency" if primary == "faithfulness" else primary
    if gain <= 0:
        why = (
            f"no method beats a random attribution on {primary} ({label}): best "
            f"{best['method']} {best[primary]:.3f}, random {chance:.3f}"
        )
        for other in (m for m in fallbacks if m != primary):
            choice, reason = _recommend(rows, other, tolerance, threshold)
            if choice is not None:
                return choice, f"{why}, so {other} ranks the methods: {reason}"
        return None, why
    floor = sign * best[primary] - tolerance * gain
    sane = [r for r in valued if _passes_screen(r, threshold)]
    failing = sorted({r["method"] for r in valued} - {r["method"] for r in sane})
    close = [r for r in sane if sign * r[primary] >= floor - 1e-12]
    checked = _check_truth(close, sane, reference, truth, truth_tolerance) if truth else None
    if checked is not None:
        close, truth_note = checked
    if not close:
        why = (
            f"the methods within {tolerance:.0%} of the best {primary} ({best['method']}) fail "
            f"the parameter-randomisation check ({', '.join(failing)})"
        )
        chosen = max(sane, key=lambda r: sign * r[primary]) if sane else None
        if chosen is None or sign * (chosen[primary] - chance) <= 0:
            return None, why
        return chosen["method"], (
            f"{why}; {chosen['method']} is the most faithful method that passes it "
            f"({label} = {chosen[primary]:.3f}, random {chance:.3f})."
        )
    chosen = min(close, key=lambda r: r["seconds"])
    if checked is not None and truth_note:
        return chosen["method"], truth_note
    parts = [
        f"{chosen['method']} is the fastest method "
        f"({chosen['ms_per_sequence']:.2f} ms per sequence) whose faithfulness "
        f"({label} = {chosen[primary]:.3f}) is within {tolerance:.0%} of the best method's "
        f"gain over a random attribution"
    ]
    if chosen is best:
        parts.append(f"it is also the most faithful (random: {chance:.3f})")
    else:
        speedup = best["seconds"] / max(chosen["seconds"], 1e-12)
        parts.append(
            f"the most faithful, {best['method']} ({best[primary]:.3f}; random {chance:.3f}), "
            + (
                f"is {speedup:.1f}x slower"
                if speedup >= 1
                else "is faster but left out by the checks below"
            )
        )
    if chosen.get("randomization") is not None:
        similarity = chosen["randomization"]
        floor_note = (
            f"{threshold:.2f}"
            if similarity < threshold
            else f"{chosen['randomization_floor']:.2f}, the similarity of its explanations "
            "of two randomised copies"
        )
        parts.append(
            f"it passes the parameter-randomisation check (similarity "
            f"{similarity:.2f} < {floor_note})"
        )
    if failing:
        parts.append(f"excluded for failing that check: {', '.join(failing)}")
    if checked is not None:
        parts.append(
            f"its {truth} against the ground truth ({chosen[truth]:.3f}) is within "
            f"{truth_tolerance:.3f} of the best method's"
        )
    return chosen["method"], "; ".join(parts) + "."


def _passes_screen(row: dict[str, Any], threshold: float) -> bool:
    """The parameter-randomisation screen (see :func:`_recommend`)."""
    similarity = row.get("randomization")
    if similarity is None:
        return True
    if math.isnan(similarity):
        return False
    return similarity < threshold or similarity < row.get("randomization_floor", -math.inf)


def _check_truth(
    close: list[dict[str, Any]],
    sane: list[dict[str, Any]],
    reference: dict[str, Any] | None,
    truth: str,
    tolerance: float,
) -> tuple[list[dict[str, Any]], str] | None:
    """``close`` narrowed to the methods within ``tolerance`` of the best method on the
    ground truth, and a reason when none of them is (then the sane method that agrees
    best with the ground truth). ``None`` when the ground truth is undefined."""
    scored = [r for r in sane if not math.isnan(r.get(truth, math.nan))]
    if not scored:
        return None
    best = max(scored, key=lambda r: r[truth])
    chance = reference.get(truth, math.nan) if reference is not None else math.nan
    agree = [r for r in close if r in scored and r[truth] >= best[truth] - tolerance - 1e-12]
    if agree:
        return agree, ""
    return [best], (
        f"{best['method']} agrees best with the ground truth ({truth} = {best[truth]:.3f}, "
        f"random {chance:.3f}); the methods close to the best faithfulness "
        f"({', '.join(r['method'] for r in close) or 'none'}) fall short of it there."
    )
