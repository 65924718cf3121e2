"""Monitors that measure explanations while a model trains: rule fidelity and faithfulness."""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure

from captum_rnn._utils.state import preserve_state
from captum_rnn.callbacks._explainers import (
    check_methods,
    own_layout,
    run_method,
    sequence_model,
)
from captum_rnn.callbacks._logging_backends import LogPayload, has_media_loggers
from captum_rnn.callbacks._metrics import call_metric, padded_scores, resolve_metrics
from captum_rnn.callbacks._probe import Probe
from captum_rnn.callbacks._probed import ProbedCallback
from captum_rnn.callbacks._schedule import PeriodicCallback, explained_model, iterate, progress

__all__ = ["FaithfulnessMonitor", "RuleExtractionMonitor"]


class FaithfulnessMonitor(ProbedCallback, PeriodicCallback):
    """Every few epochs, score how faithful each method's explanations are on a probe set.

    For each method the probe sequences are explained, then each metric of
    ``captum_rnn.metrics`` named (or callable given) scores the explanations against
    the model; the scores are logged as ``faithfulness/<method>/<metric>``. A metric is
    called as ``metric(model, inputs, attributions, target=..., lengths=...)`` with the
    keywords it accepts (see ``captum_rnn.callbacks`` module docs).

    Args:
        samples: the probe set (as for :class:`ExplanationLogger`).
        metrics: metric names from ``captum_rnn.metrics`` or callables.
        methods: method names to score.
        every_n_epochs: run every this many training epochs.
        target: ``None`` (predicted class) or an int.
        max_samples: use at most this many probe sequences.
        vocab: encodes string samples; default: the ``vocab`` of the trainer's data module.
        method_kwargs: options per method.
        metric_kwargs: options per metric name.
        on_validate: run in ``trainer.validate``.
        on_test: run in ``trainer.test``.
        background: draw and send figures and tables on a worker thread while training
            goes on (everything is sent when the trainer call returns).
        prefix: the tag of the logged scalars.
        explainer: a callable ``explainer(model, inputs, lengths, target)`` returning
            attributions ``(batch, time)`` or ``(batch, time, features)``, scored besides
            ``methods`` as ``"explainer:<its __name__>"`` (see :class:`ExplanationLogger`).
        batch_to_inputs: a callable ``batch -> (inputs, lengths or None, labels or None)``
            for batches the default cannot read.
        model_hints: the model contract's hints as a dict (see :func:`captum_rnn.adapt`);
            they may also be given as keywords (``pad_id=1``).

    Raises:
        ValueError: when the trainer starts, for a method or metric that is not
            available (the message lists what is).

    Example:
        >>> monitor = FaithfulnessMonitor(range(32), metrics=["comprehensiveness"])  # doctest: +SKIP
    """

    def __init__(
        self,
        samples: Any,
        metrics: Any = ("comprehensiveness", "sufficiency"),
        methods: str | Sequence[str] | None = None,
        every_n_epochs: int = 1,
        target: Any = None,
        max_samples: int = 32,
        *,
        vocab: Any = None,
        method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        metric_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        on_validate: bool = True,
        on_test: bool = True,
        background: bool = True,
        prefix: str = "faithfulness",
        explainer: Callable[..., Any] | None = None,
        batch_to_inputs: Callable[[Any], Any] | None = None,
        model_hints: Mapping[str, Any] | None = None,
        **hints: Any,
    ) -> None:
        super().__init__(every_n_epochs, on_validate, on_test, background)
        self._setup_probe(samples, max_samples, vocab, batch_to_inputs, model_hints, hints)
        self.methods = self._setup_methods(methods, explainer)
        self.metrics = metrics
        self.target = target
        self.method_kwargs = self._method_options(method_kwargs, self.methods)
        self.metric_kwargs = {k: dict(v) for k, v in (metric_kwargs or {}).items()}
        self.prefix = prefix
        self._resolved: list[tuple[str, Callable[..., Any]]] = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            methods=self.methods, prefix=self.prefix, every_n_epochs=self.every_n_epochs
        )

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        check_methods(self.methods)
        self._resolved = resolve_metrics(self.metrics)
        if not self._resolved:
            raise ValueError("metrics is empty: name at least one metric")

    def _work(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> LogPayload:
        model = explained_model(pl_module)
        seq = sequence_model(model, self.hints)
        probe = self._probe(trainer, model, stage)
        payload = self._payload(trainer, self.prefix, stage)
        device = next(model.parameters()).device
        inputs, lengths = own_layout(seq, probe.inputs.to(device)), probe.lengths.to(device)
        total = len(self.methods) * len(self._resolved)
        with progress(trainer, total, f"Scoring explanations ({self.prefix})") as bar:
            for method in self.methods:
                output = run_method(
                    model,
                    method,
                    probe.inputs,
                    probe.lengths,
                    target=self.target,
                    vocab=self._from_datamodule(trainer, "vocab"),
                    kwargs=self.method_kwargs.get(method),
                    hints=self.hints,
                    explainer=self.explainer if method == self._explainer_name else None,
                )
                if output.explanations is None:
                    raise ValueError(
                        f"method {method!r} does not score positions; faithfulness needs scores"
                    )
                # batch-first, as metrics take them (inputs: in the model's own layout)
                attributions = padded_scores(output.explanations, probe.inputs.shape[1], device)
                target = torch.tensor([e.target for e in output.explanations], device=device)
                for name, fn in self._resolved:
                    result = call_metric(
                        fn,
                        # the user's model as it is; with hints, as the contract sees it
                        model=seq if self.hints else seq.module,
                        inputs=inputs,
                        attributions=attributions,
                        target=target,
                        lengths=lengths,
                        kwargs=self.metric_kwargs.get(name),
                    )
                    for suffix, value in result.items():
                        key = f"{payload.tag}/{method}/{name}" + (f"_{suffix}" if suffix else "")
                        payload.scalars[key] = value
                    bar.update(1)
        return payload


def _rules_module_extractor() -> Callable[..., Any]:
    try:
        module = importlib.import_module("captum_rnn.rules")
    except ImportError:
        module = None
    fn = getattr(module, "extract_dfa", None) if module is not None else None
    if not callable(fn):
        raise ValueError(
            "RuleExtractionMonitor: captum_rnn.rules.extract_dfa is not available in this "
            "installation; pass extractor=callable(model) -> rules instead"
        )
    return fn


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    return None


def _report_scalars(rules: Any) -> dict[str, float]:
    """Numeric fields of the extraction report the rules carry, if any."""
    report = getattr(rules, "report", None) or getattr(rules, "extraction_report", None)
    if report is None:
        return {}
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        report = dataclasses.asdict(report)
    elif not isinstance(report, Mapping):
        report = (
            {k: v for k, v in vars(report).items() if not k.startswith("_")}
            if hasattr(report, "__dict__")
            else {}
        )
    out = {}
    for key, value in report.items():
        number = _number(value)
        if number is not None and math.isfinite(number):
            out[str(key)] = number
    return out


def _size(rules: Any) -> float | None:
    for attribute in ("num_states", "size", "num_rules"):
        value = getattr(rules, attribute, None)
        value = value() if callable(value) else value
        number = _number(value)
        if number is not None:
            return number
    try:
        return float(len(rules))
    except TypeError:
        return None


class RuleExtractionMonitor(ProbedCallback, PeriodicCallback):
    """Every few epochs, extract rules from the network and log their fidelity and size.

    The extractor is ``captum_rnn.rules.extract_dfa(model, alphabet, method=method,
    **extract_kwargs)`` (looked up when the trainer starts), or any callable
    ``extractor(model) -> rules``. Fidelity is the share of probe sequences on which
    ``rules.accepts(sequence)`` agrees with the network's decision (predicted class ==
    ``positive_class``); the size is ``num_states`` (automata) or the number of rules.
    Numeric fields of the extraction report (``rules.report``) are logged too, and the
    rules' figure (``rules.plot()``) and DOT text when they have them.

    Args:
        samples: held-out probe sequences for fidelity (as for :class:`ExplanationLogger`);
            ``None`` logs only the size and the extractor's own report.
        alphabet: the alphabet passed to ``extract_dfa``.
        method: ``extract_dfa``'s method (``"lstar"`` or ``"quantize"``).
        every_n_epochs: run every this many training epochs.
        extractor: a callable ``extractor(model) -> rules`` used instead of ``extract_dfa``.
        extract_kwargs: more arguments for ``extract_dfa``.
        positive_class: the class that means "accept".
        symbols: turns one sequence of token ids into what ``rules.accepts`` reads;
            default: the tokens (``vocab.decode``) when there is a vocabulary, else the ids.
        vocab: decodes ids into symbols, encodes string samples, and maps the
            ``alphabet`` to token ids (unless ``extract_kwargs`` has a ``vocab``);
            default: the ``vocab`` of the trainer's data module, if it has one.
        max_samples: use at most this many probe sequences.
        log_figure: log the rules' figure when ``rules.plot()`` exists.
        on_validate: run in ``trainer.validate``.
        on_test: run in ``trainer.test``.
        background: draw and send figures and tables on a worker thread while training
            goes on (everything is sent when the trainer call returns).
        prefix: the tag of what is logged.
        batch_to_inputs: a callable ``batch -> (inputs, lengths or None, labels or None)``
            for probe batches the default cannot read.
        model_hints: the model contract's hints as a dict (see :func:`captum_rnn.adapt`);
            they may also be given as keywords (``pad_id=1``).

    Example:
        >>> monitor = RuleExtractionMonitor(held_out, alphabet="01", every_n_epochs=5)  # doctest: +SKIP
    """

    def __init__(
        self,
        samples: Any = None,
        # str and Sequence[str] first: a LightningCLI config then keeps "01" a string
        # (jsonargparse reads a quoted "01" given to Any as the int 1).
        alphabet: str | Sequence[str] | Mapping[Any, int] | Sequence[Any] | None = None,
        method: str = "quantize",
        every_n_epochs: int = 1,
        *,
        extractor: Callable[[Any], Any] | None = None,
        extract_kwargs: Mapping[str, Any] | None = None,
        positive_class: int = 1,
        symbols: Callable[[list[int]], Any] | None = None,
        vocab: Any = None,
        max_samples: int = 256,
        log_figure: bool = True,
        on_validate: bool = True,
        on_test: bool = False,
        background: bool = True,
        prefix: str = "rules",
        batch_to_inputs: Callable[[Any], Any] | None = None,
        model_hints: Mapping[str, Any] | None = None,
        **hints: Any,
    ) -> None:
        super().__init__(every_n_epochs, on_validate, on_test, background)
        self._setup_probe(samples, max_samples, vocab, batch_to_inputs, model_hints, hints)
        if extractor is not None and not callable(extractor):
            raise TypeError("extractor must be callable: extractor(model) -> rules")
        if extractor is None and alphabet is None:
            raise ValueError(
                "alphabet is required to extract rules with captum_rnn.rules.extract_dfa"
            )
        self.alphabet = alphabet
        self.method = method
        self.extractor = extractor
        self.extract_kwargs = dict(extract_kwargs or {})
        self.positive_class = positive_class
        self.symbols = symbols
        self.log_figure = bool(log_figure)
        self.prefix = prefix
        self._extract: Callable[[Any], Any] | None = None
        #: the rules of the last run.
        self.last_rules: Any = None
        self._symbol_vocab: Any = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            method=self.method, prefix=self.prefix, every_n_epochs=self.every_n_epochs
        )

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.extractor is not None:
            self._extract = self.extractor
            return
        extract_dfa = _rules_module_extractor()
        kwargs = dict(self.extract_kwargs)
        vocab = self._from_datamodule(trainer, "vocab")
        if "vocab" not in kwargs and vocab is not None and not isinstance(self.alphabet, Mapping):
            kwargs["vocab"] = vocab  # symbols -> the data module's token ids

        def extract(model: Any) -> Any:
            # with hints, extract_dfa sees the model as the contract does (batch-first)
            model = sequence_model(model, self.hints) if self.hints else model
            return extract_dfa(model, self.alphabet, method=self.method, **kwargs)

        self._extract = extract

    def _to_symbols(self, ids: list[int]) -> Any:
        if self.symbols is not None:
            return self.symbols(ids)
        if self._symbol_vocab is not None:
            return self._symbol_vocab.decode(ids)
        return ids

    def _fidelity(self, model: Any, probe: Probe, rules: Any) -> float:
        seq = sequence_model(model, self.hints)
        device = next(model.parameters()).device
        with preserve_state(seq.module):
            seq.module.eval()
            with torch.no_grad():
                outputs = seq(probe.inputs.to(device), probe.lengths.to(device))
        seq.observe(outputs)
        scores = seq.probabilities(outputs) if seq.is_classifier else outputs
        decisions = (scores.argmax(-1) == self.positive_class).cpu().tolist()
        agree = 0
        for i, decision in enumerate(decisions):
            ids = probe.inputs[i, : int(probe.lengths[i])].tolist()
            agree += bool(rules.accepts(self._to_symbols(ids))) == decision
        return agree / len(decisions)

    def _work(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> LogPayload:
        assert self._extract is not None
        self._symbol_vocab = self._from_datamodule(trainer, "vocab")
        model = explained_model(pl_module)
        payload = self._payload(trainer, self.prefix, stage)
        base = payload.tag
        steps = ["extract"] + (["fidelity"] if self.samples is not None else [])
        started = time.perf_counter()
        for step in iterate(trainer, steps, len(steps), f"Extracting rules ({self.prefix})"):
            if step == "extract":
                model.eval()  # modes are restored after the run
                rules = self._extract(model)
                payload.scalars[f"{base}/seconds"] = time.perf_counter() - started
                self.last_rules = rules
            else:
                probe = self._probe(trainer, model, stage)
                payload.scalars[f"{base}/fidelity"] = self._fidelity(model, probe, rules)
        size = _size(rules)
        if size is not None:
            payload.scalars[f"{base}/size"] = size
        for key, value in _report_scalars(rules).items():
            payload.scalars.setdefault(f"{base}/report_{key}", value)
        if (
            self.log_figure
            and has_media_loggers(trainer)
            and callable(getattr(rules, "plot", None))
        ):
            fig = rules.plot()
            if isinstance(fig, Figure):
                payload.figures["rules"] = fig
        document: dict[str, Any] = {
            "format": "captum_rnn.RuleLog/1",
            "stage": stage,
            "step": payload.step,
        }
        document["scalars"] = {k: v for k, v in payload.scalars.items()}
        if callable(getattr(rules, "to_dot", None)):
            document["dot"] = str(rules.to_dot())
        payload.documents["rules"] = document
        return payload
