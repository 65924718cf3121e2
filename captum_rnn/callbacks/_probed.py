"""What the callbacks that explain a fixed probe set share: checking the probe options,
the method names and a callable ``explainer=``, and resolving the probe once per stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl

from captum_rnn._utils.options import check_int
from captum_rnn.callbacks._explainers import check_hints, explainer_name, sequence_model
from captum_rnn.callbacks._probe import Probe, resolve_probe

__all__ = ["ProbedCallback"]


class ProbedCallback:
    """Mixin for callbacks that explain a probe set (see :mod:`._probe` for ``samples``)."""

    samples: Any
    max_samples: int
    vocab: Any
    hints: dict[str, Any]
    batch_to_inputs: Callable[[Any], Any] | None
    explainer: Callable[..., Any] | None
    _explainer_name: str | None
    _probes: dict[str, Probe]

    def _setup_probe(
        self,
        samples: Any,
        max_samples: int,
        vocab: Any,
        batch_to_inputs: Callable[[Any], Any] | None,
        model_hints: Mapping[str, Any] | None,
        hints: Mapping[str, Any],
    ) -> None:
        """Check and store what the probe is resolved from."""
        if batch_to_inputs is not None and not callable(batch_to_inputs):
            raise TypeError("batch_to_inputs must be callable(batch) -> (inputs, lengths, labels)")
        self.samples = samples
        self.max_samples = check_int("max_samples", max_samples, 1)
        self.vocab = vocab
        self.batch_to_inputs = batch_to_inputs
        self.hints = check_hints(model_hints, hints)
        self._probes = {}

    def _setup_methods(
        self, methods: str | Sequence[str] | None, explainer: Callable[..., Any] | None
    ) -> tuple[str, ...]:
        """Store ``explainer`` and return the method names, the explainer's last."""
        if explainer is not None and not callable(explainer):
            raise TypeError("explainer must be callable(model, inputs, lengths, target)")
        if methods is None:
            methods = () if explainer is not None else ("integrated_gradients",)
        elif isinstance(methods, str):
            methods = (methods,)
        if (
            not isinstance(methods, Sequence)
            or not (methods or explainer is not None)
            or not all(isinstance(m, str) for m in methods)
        ):
            raise TypeError(
                f"methods must be a method name or a non-empty sequence of names, got {methods!r}"
            )
        self.explainer = explainer
        self._explainer_name = explainer_name(explainer) if explainer is not None else None
        if self._explainer_name is not None:
            return (*methods, self._explainer_name)
        return tuple(methods)

    @staticmethod
    def _method_options(
        method_kwargs: Mapping[str, Mapping[str, Any]] | None, methods: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """``method_kwargs`` checked against ``methods`` and copied per method."""
        if method_kwargs is not None and not isinstance(method_kwargs, Mapping):
            raise TypeError("method_kwargs must be a dict {method name: {option: value}}")
        unknown = set(method_kwargs or {}) - set(methods)
        if unknown:
            raise ValueError(
                f"method_kwargs names methods that are not in methods: {sorted(unknown)}"
            )
        return {k: dict(v) for k, v in (method_kwargs or {}).items()}

    def _probe(self, trainer: pl.Trainer, model: Any, stage: str) -> Probe:
        if stage not in self._probes:
            seq = sequence_model(model, self.hints)
            self._probes[stage] = resolve_probe(
                self.samples,
                max_samples=self.max_samples,
                padding_idx=int(seq.pad_id) if seq.pad_id is not None else 0,
                vocab=self._from_datamodule(trainer, "vocab"),
                trainer=trainer,
                stage=stage,
                batch_to_inputs=self.batch_to_inputs,
                batch_first=seq.batch_first,
            )
        return self._probes[stage]

    def _from_datamodule(self, trainer: pl.Trainer, name: str) -> Any:
        """``vocab`` (or ``class_names``) as given, else the trainer's data module's (a
        LightningCLI config cannot pass a vocabulary)."""
        value = getattr(self, name, None)
        if value is None:
            value = getattr(getattr(trainer, "datamodule", None), name, None)
        return value
