"""``ExplanationLogger``: explain a fixed probe set while a model trains, and log it."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from captum_rnn.callbacks._explainers import (
    check_methods,
    own_layout,
    run_method,
    sequence_model,
)
from captum_rnn.callbacks._figure import probe_figure
from captum_rnn.callbacks._logging_backends import LogPayload, has_media_loggers
from captum_rnn.callbacks._metrics import call_metric, padded_scores, resolve_metrics
from captum_rnn.callbacks._probe import Probe
from captum_rnn.callbacks._probed import ProbedCallback
from captum_rnn.callbacks._schedule import PeriodicCallback, explained_model, iterate
from captum_rnn.explanation import Explanations
from captum_rnn.metrics import OutputStepContext, available_metrics, get_metric

__all__ = ["ExplanationLogger", "rank_correlation"]

_AUTO_METRICS = ("comprehensiveness", "sufficiency")
#: Integrated gradients' (n_steps, max_steps) in the logger unless told otherwise: a
#: bounded cost per log (``explain`` defaults to 50 and 400).
_IG_STEPS = (32, 64)
_COLUMNS = [
    "sample",
    "method",
    "target",
    "predicted",
    "probability",
    "label",
    "delta",
    "top",
    "text",
]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two equally long score lists (NaN when undefined).

    Example:
        >>> rank_correlation([0.1, 0.5, 0.3], [1.0, 3.0, 2.0])
        1.0
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.size < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


class ExplanationLogger(ProbedCallback, PeriodicCallback):
    """Explain a fixed probe set every few epochs and log it to every logger of the trainer.

    At the end of every ``every_n_epochs``-th training epoch (at its validation when it
    has one; never during the sanity check), and once in ``trainer.validate`` and
    ``trainer.test``, the probe sequences are explained with each method and logged:
    a figure per method and a compact table (TensorBoard ``add_figure``/``add_text``,
    W&B ``log_image``/``log_table``, MLflow ``log_figure``/``log_dict``, PNG and JSON
    files under the folder of a CSV or any other logger), and scalars that show how
    explanations move during training:

    * ``explanations/<method>/mean_abs_delta``: integrated gradients' mean |convergence delta|;
    * ``explanations/<method>/stability``: mean Spearman correlation of each sequence's
      attributions with the previous log (1 = unchanged ranking);
    * ``explanations/<method>/<metric>``: faithfulness metrics from ``captum_rnn.metrics``.

    Scalars logged during ``trainer.test`` use the prefix ``explanations_test``.

    The model is any ``nn.Module`` / ``LightningModule`` over sequences, seen through
    the model contract (:func:`captum_rnn.adapt`): pass its hints (``pad_id``,
    ``batch_first``, ``output``, ...) as keywords or in ``model_hints`` where it cannot
    tell them; batches it does not understand are split by ``batch_to_inputs``.

    The callback does not change training: random streams (torch, CUDA, numpy,
    Python), module modes, gradients and ``requires_grad`` flags are restored after
    every run, so weights end bit-identical on CPU. The work runs on global rank zero;
    the schedule is saved in checkpoints.

    Args:
        samples: the probe set: sequences (strings need ``vocab``; lists of token ids;
            ``(time, features)`` tensors), a padded batch, a ``DataLoader``, a
            ``Dataset``, or indices into the validation set (a ``range`` or a flat list
            of ints; in ``trainer.test`` they index the test set).
        methods: method names (default ``("integrated_gradients",)``, or none when
            ``explainer`` is given): any of ``captum_rnn.attr.available_methods()``
            (attention and ``"rule_extraction"`` included; register your own by
            subclassing ``captum_rnn.attr.AttributionMethod``), and
            ``"nearest_examples"``, the one example-based explainer (it logs a table of
            training examples, not scores); see :func:`available_explainers`.
        every_n_epochs: run every this many training epochs.
        target: output explained: ``None`` (predicted class), an int, one int per
            sample, or ``"label"`` (each sample's true label).
        max_samples: explain at most this many probe sequences.
        vocab: a ``captum_rnn.data.Vocabulary`` (tokens in figures; encodes strings);
            default: the ``vocab`` of the trainer's data module, if it has one.
        class_names: names of the classes for titles and tables; default: the
            ``class_names`` of the trainer's data module, if it has them.
        method_kwargs: options per method, e.g. ``{"integrated_gradients": {"n_steps": 32}}``.
            Integrated gradients starts at 32 steps and raises them to at most 64 here
            (``explain``: 50 and 400), a bounded cost per log; the logged mean convergence
            delta shows how well it converged.
        faithfulness: metric names from ``captum_rnn.metrics`` or callables (see
            ``captum_rnn.callbacks`` docs for the calling convention); ``"auto"`` uses
            comprehensiveness and sufficiency when ``captum_rnn.metrics`` provides them;
            ``None`` logs none.
        log_figures: log one figure per method.
        log_table: log the table and the full explanations (JSON where supported).
        on_validate: run in ``trainer.validate``.
        on_test: run in ``trainer.test``.
        background: draw and send figures and tables on a worker thread while training
            goes on (everything is sent when the trainer call returns).
        prefix: the tag under which everything is logged.
        explainer: a callable ``explainer(model, inputs, lengths, target)`` returning
            attributions ``(batch, time)`` or ``(batch, time, features)``, run besides
            ``methods`` and logged as ``"explainer:<its __name__>"``; it gets the model,
            the probe in the model's own layout, lengths and one target per sequence.
        batch_to_inputs: a callable ``batch -> (inputs, lengths or None, labels or None)``
            for batches the default cannot read (it reads tensors, ``(x, y)``,
            ``(x, lengths, y)`` and dicts with common keys such as ``inputs``/``features``
            and ``label``/``targets``).
        model_hints: the model contract's hints as a dict (see :func:`captum_rnn.adapt`);
            they may also be given as keywords (``pad_id=1``).

    Example:
        >>> import pytorch_lightning as pl
        >>> logger_cb = ExplanationLogger(samples=range(4), every_n_epochs=2)
        >>> trainer = pl.Trainer(max_epochs=4, callbacks=[logger_cb])  # doctest: +SKIP
    """

    def __init__(
        self,
        samples: Any,
        methods: str | Sequence[str] | None = None,
        every_n_epochs: int = 1,
        target: Any = None,
        max_samples: int = 8,
        *,
        vocab: Any = None,
        class_names: Sequence[str] | None = None,
        method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        faithfulness: Any = "auto",
        log_figures: bool = True,
        log_table: bool = True,
        on_validate: bool = True,
        on_test: bool = True,
        background: bool = True,
        prefix: str = "explanations",
        explainer: Callable[..., Any] | None = None,
        batch_to_inputs: Callable[[Any], Any] | None = None,
        model_hints: Mapping[str, Any] | None = None,
        **hints: Any,
    ) -> None:
        super().__init__(every_n_epochs, on_validate, on_test, background)
        if samples is None:
            raise ValueError(
                "samples is required: the sequences (or validation indices) to explain"
            )
        self._setup_probe(samples, max_samples, vocab, batch_to_inputs, model_hints, hints)
        methods = self._setup_methods(methods, explainer)
        if isinstance(target, str) and target != "label":
            raise ValueError(
                f"target must be None, an int, ints per sample or 'label', got {target!r}"
            )
        self.methods = methods
        self.target = target
        self.class_names = list(class_names) if class_names is not None else None
        self.method_kwargs = self._method_options(method_kwargs, methods)
        if "integrated_gradients" in self.methods:
            ig = self.method_kwargs.setdefault("integrated_gradients", {})
            ig.setdefault("n_steps", _IG_STEPS[0])
            ig.setdefault("max_steps", max(_IG_STEPS[1], int(ig["n_steps"])))
        self.faithfulness = faithfulness
        self.log_figures = bool(log_figures)
        self.log_table = bool(log_table)
        self.prefix = prefix
        self._previous: dict[str, list[list[float]]] = {}
        self._metrics: list[tuple[str, Any]] = []
        self._metrics_auto = False
        #: the explanations of the last run, by method.
        self.last_explanations: dict[str, Explanations] = {}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            methods=self.methods, every_n_epochs=self.every_n_epochs, prefix=self.prefix
        )

    # ------------------------------------------------------------------ schedule hooks
    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        check_methods(self.methods)
        if self.faithfulness == "auto":
            try:
                self._metrics = resolve_metrics(list(_AUTO_METRICS), "faithfulness")
            except ValueError:
                self._metrics = []
            self._metrics_auto = True
        else:
            self._metrics = resolve_metrics(self.faithfulness, "faithfulness")
            self._metrics_auto = False

    def _extra_state(self) -> dict[str, Any]:
        return {"previous": {k: [list(s) for s in v] for k, v in self._previous.items()}}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._previous = {k: [list(s) for s in v] for k, v in state.get("previous", {}).items()}

    # ------------------------------------------------------------------ the work
    def _targets(self, probe: Probe) -> Any:
        if self.target == "label":
            if probe.labels is None:
                raise ValueError("target='label' needs samples with labels")
            return torch.as_tensor(probe.labels).long().view(-1)
        if isinstance(self.target, Sequence):
            return torch.as_tensor(list(self.target)[: len(probe)]).long()
        return self.target

    def _work(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> LogPayload:
        model = explained_model(pl_module)
        probe = self._probe(trainer, model, stage)
        payload = self._payload(trainer, self.prefix, stage)
        target = self._targets(probe)
        # Figures and tables cost more than the explanations of a small probe: make
        # them only when a logger will receive them.
        media = has_media_loggers(trainer)
        rows: list[list[Any]] = []
        for method in iterate(
            trainer, self.methods, len(self.methods), f"Explaining ({self.prefix})"
        ):
            output = run_method(
                model,
                method,
                probe.inputs,
                probe.lengths,
                target=target,
                vocab=self._from_datamodule(trainer, "vocab"),
                labels=probe.labels,
                class_names=self._from_datamodule(trainer, "class_names"),
                kwargs=self.method_kwargs.get(method),
                hints=self.hints,
                explainer=self.explainer if method == self._explainer_name else None,
            )
            if output.rows and media:
                columns = list(output.rows[0])
                payload.tables[f"{method}_examples"] = (
                    columns,
                    [[r[c] for c in columns] for r in output.rows],
                )
            explanations = output.explanations
            if explanations is None:
                continue
            self.last_explanations[method] = explanations
            self._scalars(payload, model, probe, method, explanations, stage)
            if media and self.log_figures:
                title = f"{method} ({stage}, epoch {trainer.current_epoch}, step {payload.step})"
                payload.figures[method] = functools.partial(probe_figure, explanations, title)
            if media and self.log_table:
                rows.extend(_row(i, e) for i, e in enumerate(explanations))
                payload.documents[method] = {
                    "format": "captum_rnn.ExplanationLog/1",
                    "method": method,
                    "stage": stage,
                    "epoch": trainer.current_epoch,
                    "step": payload.step,
                    "indices": probe.indices,
                    "explanations": [e.to_dict() for e in explanations],
                }
        if rows:
            payload.tables["table"] = (list(_COLUMNS), rows)
        return payload

    def _scalars(
        self,
        payload: LogPayload,
        model: Any,
        probe: Probe,
        method: str,
        explanations: Explanations,
        stage: str,
    ) -> None:
        base = f"{payload.tag}/{method}"
        # explanations of every output step have one delta and one row of scores per
        # output: the scalars pool them
        deltas = np.abs(
            np.concatenate([np.ravel(e.delta) for e in explanations if e.delta is not None] or [[]])
        )
        if deltas.size:
            payload.scalars[f"{base}/mean_abs_delta"] = float(np.mean(deltas))
        scores = [np.ravel(np.asarray(e.scores, dtype=float)).tolist() for e in explanations]
        if stage == "validate":
            previous = self._previous.get(method)
            if previous is not None and len(previous) == len(scores):
                values = [rank_correlation(a, b) for a, b in zip(previous, scores, strict=True)]
                values = [v for v in values if not np.isnan(v)]
                if values:
                    payload.scalars[f"{base}/stability"] = float(np.mean(values))
            self._previous[method] = scores
        if not self._metrics:
            return
        device = next(model.parameters()).device
        seq = sequence_model(model, self.hints)
        if any(e.is_sequence_output for e in explanations):
            self._per_output_scalars(payload, base, seq, probe, explanations, device)
            return
        attributions = padded_scores(explanations, probe.inputs.shape[1], device)
        target = torch.tensor([e.target for e in explanations], device=device)
        for name, fn in list(self._metrics):
            try:
                result = call_metric(
                    fn,
                    # the user's model as it is; with hints, as the contract sees it
                    model=seq if self.hints else seq.module,
                    inputs=own_layout(seq, probe.inputs.to(device)),
                    attributions=attributions,  # batch-first, as metrics take them
                    target=target,
                    lengths=probe.lengths.to(device),
                )
            except Exception as err:
                if not self._metrics_auto:
                    raise
                warnings.warn(
                    f"ExplanationLogger: faithfulness metric {name!r} failed ({err}); "
                    "it is skipped from now on",
                    stacklevel=2,
                )
                self._metrics.remove((name, fn))
                continue
            for suffix, value in result.items():
                payload.scalars[f"{base}/{name}" + (f"_{suffix}" if suffix else "")] = value

    def _per_output_scalars(
        self,
        payload: LogPayload,
        base: str,
        seq: Any,
        probe: Probe,
        explanations: Explanations,
        device: torch.device,
    ) -> None:
        """Each metric's ``per_output`` declaration on the explanations of every output
        step: each output's explanation measured on that output, averaged over the
        steps and the probe."""
        usable = [n for n in available_metrics(per_output=True) if not get_metric(n).needs]
        unsupported = [
            name
            for name, fn in self._metrics
            if name not in usable or get_metric(name).function is not fn
        ]
        if unsupported:
            raise ValueError(
                f"explanations of every output step take the faithfulness metrics {usable} "
                f"(measured per output step), got {unsupported}: pass faithfulness='auto' or "
                "a subset of those names"
            )
        context = OutputStepContext(
            seq.module,
            own_layout(seq, probe.inputs.to(device)),
            explanations,
            lengths=None if seq.is_token_model else probe.lengths,
            hints=self.hints,
        )
        for name, _ in self._metrics:
            payload.scalars[f"{base}/{name}"] = get_metric(name).per_output(context)  # type: ignore[misc]


def _row(index: int, e: Any) -> list[Any]:
    if e.is_sequence_output:
        return _sequence_output_row(index, e)
    top = ", ".join(f"{tok} ({score:+.3g})" for tok, score in e.top(3, absolute=True))
    text = " ".join(e.tokens)
    return [
        index,
        e.method,
        e.class_name(e.target),
        "" if e.predicted is None else e.class_name(e.predicted),
        "" if e.probability is None else round(float(e.probability), 4),
        "" if e.label is None else e.class_name(e.label),
        "" if e.delta is None else round(float(e.delta), 5),
        top,
        _cut(text),
    ]


def _sequence_output_row(index: int, e: Any) -> list[Any]:
    """One table row for an explanation of every output step: targets and predictions
    listed per step, the delta as the largest |delta| of the steps."""

    def names(values: Any) -> str:
        if values is None:
            return ""
        listed = values if isinstance(values, (list, tuple)) else [values]
        return _cut(" ".join(str(e.class_name(v)) for v in listed))

    deltas = [abs(float(d)) for d in np.ravel(e.delta)] if e.delta is not None else []
    scores = np.abs(np.asarray(e.scores, dtype=float))
    out_i, in_i = np.unravel_index(int(scores.argmax()), scores.shape) if scores.size else (0, 0)
    top = (
        f"output {out_i} ({e.output_labels[out_i]}) <- input {in_i} ({e.tokens[in_i]})"
        if scores.size
        else ""
    )
    return [
        index,
        e.method,
        names(e.target),
        names(e.predicted),
        "",
        names(e.label),
        round(max(deltas), 5) if deltas else "",
        top,
        _cut(" ".join(map(str, e.tokens))),
    ]


def _cut(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."
