"""Find an explanation method by name at run time and run it on a padded batch.

The callbacks accept any method of captum-rnn by name. Three kinds exist:

* methods in the attribution registry (``captum_rnn.attr.available_methods()``), run
  through :func:`captum_rnn.explain`;
* Captum ``Attribution`` classes of ``captum_rnn.attr`` that return one score per
  input position (attention methods, ``RuleExtraction``), adapted here;
* ``NearestExamples`` (a ``captum.influence.DataInfluence``), which answers with
  training examples instead of scores.

Nothing here imports those classes at import time: other parts of the package may
not be installed or written yet, so every name is looked up when it is used and a
missing one gives a ``ValueError`` that lists what is available.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from captum_rnn._utils.grad import gradient_context
from captum_rnn._utils.state import preserve_state
from captum_rnn._utils.targets import resolve_target
from captum_rnn.explanation import Explanation, Explanations
from captum_rnn.models.protocol import adapt

__all__ = [
    "MethodOutput",
    "available_explainers",
    "check_methods",
    "run_method",
]

# Captum-style classes of ``captum_rnn.attr`` that return a score per input position.
_POSITION_CLASSES = {
    "attention_weights": "AttentionWeights",
    "attention_rollout": "AttentionRollout",
    "attention_flow": "AttentionFlow",
    "gradient_attention_rollout": "GradientAttentionRollout",
    "rule_extraction": "RuleExtraction",
}
_INFLUENCE_CLASSES = {"nearest_examples": "NearestExamples"}


@dataclass
class MethodOutput:
    """What one method produced for a probe batch.

    Attributes:
        explanations: one :class:`~captum_rnn.Explanation` per sequence, or ``None``
            for methods that do not score positions (nearest examples).
        rows: extra table rows (nearest examples: one row per neighbour).
    """

    explanations: Explanations | None
    rows: list[dict[str, Any]] = field(default_factory=list)


def _attr_module() -> Any:
    return importlib.import_module("captum_rnn.attr")


def _registry() -> list[str]:
    return list(_attr_module().available_methods())


def available_explainers() -> list[str]:
    """Names every callback accepts in this installation, sorted.

    Returns:
        The registry's methods (aliases included) and the Captum-style classes of
        ``captum_rnn.attr`` (attention, rule and example methods) that exist now.
    """
    attr = _attr_module()
    names = set(_registry())
    for name, cls in {**_POSITION_CLASSES, **_INFLUENCE_CLASSES}.items():
        if getattr(attr, cls, None) is not None:
            names.add(name)
    return sorted(names)


def check_methods(methods: str | Sequence[str], argument: str = "methods") -> tuple[str, ...]:
    """Return ``methods`` as a tuple after checking each name is available.

    Raises:
        TypeError: when ``methods`` is not a string or a sequence of strings.
        ValueError: for an empty sequence or a name that is not available; the message
            lists the available names.
    """
    if isinstance(methods, str):
        methods = (methods,)
    if not isinstance(methods, Sequence) or not all(isinstance(m, str) for m in methods):
        raise TypeError(f"{argument} must be a method name or a sequence of names, got {methods!r}")
    methods = tuple(methods)
    if not methods:
        raise ValueError(f"{argument} is empty: name at least one method")
    available = available_explainers()
    for name in methods:
        if name not in available:
            hint = ""
            cls = _POSITION_CLASSES.get(name) or _INFLUENCE_CLASSES.get(name)
            if cls is not None:
                hint = f" (captum_rnn.attr.{cls} is not available in this installation)"
            raise ValueError(
                f"{argument}: method {name!r} is not available{hint}; available: {available}"
            )
    return methods


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _per_position(
    model: Any, name: str, inputs: Tensor, lengths: Tensor, target: Tensor, kwargs: Mapping
) -> Tensor:
    """Run a Captum-style class of ``captum_rnn.attr``; return ``(batch, time)`` scores."""
    cls = getattr(_attr_module(), _POSITION_CLASSES[name])
    method = cls(model)
    call: dict[str, Any] = dict(kwargs)
    call.setdefault("target", target)
    if _accepts(method.attribute, "additional_forward_args"):
        call.setdefault("additional_forward_args", (lengths,))
    with gradient_context(model) as ctx:
        result = method.attribute(ctx.prepare(inputs), **call)
    if isinstance(result, tuple):
        result = result[0]
    result = torch.as_tensor(result).detach()
    if result.dim() == 3:  # (batch, time, dim): one score per position
        result = result.sum(dim=-1)
    if result.shape != inputs.shape[:2]:
        raise ValueError(
            f"method {name!r} returned shape {tuple(result.shape)}; expected one score per "
            f"input position {tuple(inputs.shape[:2])}"
        )
    return result


def run_method(
    model: Any,
    name: str,
    inputs: Tensor,
    lengths: Tensor,
    *,
    target: Any = None,
    vocab: Any = None,
    labels: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> MethodOutput:
    """Explain a padded batch with the method called ``name``.

    Args:
        model: a captum-rnn recurrent model, on its device.
        name: a name from :func:`available_explainers`.
        inputs: token ids ``(batch, time)`` or continuous input ``(batch, time, features)``.
        lengths: true lengths ``(batch,)``.
        target: ``None`` (predicted class), an int, or one per sequence.
        vocab: turns token ids into tokens.
        labels: optional true labels, stored on the explanations.
        class_names: optional class names, stored on the explanations.
        kwargs: method options (``n_steps`` ...); for ``nearest_examples`` also the
            ``NearestExamples`` constructor's (``train_dataset`` is required) and ``top_k``.

    Returns:
        A :class:`MethodOutput`.

    Raises:
        ValueError: when ``name`` is not available (the message lists what is).
    """
    kwargs = dict(kwargs or {})
    if name in _registry():
        from captum_rnn._explain import explain

        explanations = explain(
            model,
            inputs,
            method=name,
            target=target,
            vocab=vocab,
            lengths=lengths,
            labels=labels,
            class_names=class_names,
            **kwargs,
        )
        return MethodOutput(explanations)
    check_methods((name,), "method")
    from captum_rnn._explain import prepare_inputs

    seq = adapt(model)
    device = next(model.parameters()).device
    with preserve_state(seq.module):
        with gradient_context(model) as ctx:
            inputs, lengths, real = prepare_inputs(
                seq, ctx.prepare(inputs), ctx.prepare(lengths), vocab
            )
        with torch.no_grad():
            outputs = seq(inputs, lengths).detach()
        seq.observe(outputs)
        classifier = seq.is_classifier
        resolved = resolve_target(target, outputs, classifier)
        if name in _INFLUENCE_CLASSES:
            return MethodOutput(None, _nearest_rows(model, inputs, lengths, kwargs))
        scores = _per_position(model, name, inputs, lengths, resolved, kwargs)
    scores = (scores.to(device).double() * real).cpu()
    probs = seq.probabilities(outputs.double()).cpu() if classifier else None
    explanations = Explanations()
    for i in range(inputs.shape[0]):
        keep = real[i].nonzero()[:, 0].cpu()
        n = len(keep)
        if seq.is_token_model:
            ids = inputs[i].cpu()[keep].tolist()
            tokens = vocab.decode(ids) if vocab is not None else [str(t) for t in ids]
        else:
            tokens = [f"t{j}" for j in range(n)]
        t = int(resolved[i])
        predicted = int(probs[i].argmax()) if probs is not None else None
        explanations.append(
            Explanation(
                tokens=list(tokens),
                scores=scores[i, keep].tolist(),
                method=name,
                target=t,
                predicted=predicted,
                probability=float(probs[i, predicted]) if probs is not None else None,
                output=float(outputs[i, t]),
                label=_plain(labels[i]) if labels is not None else None,
                class_names=list(class_names) if class_names is not None else None,
            )
        )
    return MethodOutput(explanations)


def _nearest_rows(model: Any, inputs: Tensor, lengths: Tensor, kwargs: dict) -> list[dict]:
    if "train_dataset" not in kwargs:
        raise ValueError(
            "method 'nearest_examples' needs its training set: pass "
            "method_kwargs={'nearest_examples': {'train_dataset': ...}}"
        )
    top_k = int(kwargs.pop("top_k", 5))
    cls = getattr(_attr_module(), _INFLUENCE_CLASSES["nearest_examples"])
    finder = cls(model, kwargs.pop("train_dataset"), **kwargs)
    call: dict[str, Any] = {"top_k": top_k}
    if _accepts(finder.influence, "additional_forward_args"):
        call["additional_forward_args"] = (lengths,)
    result = finder.influence(inputs, **call)
    rows = []
    for layer, (indices, scores) in result.items():
        indices, scores = torch.as_tensor(indices).cpu(), torch.as_tensor(scores).cpu()
        for sample in range(indices.shape[0]):
            for rank in range(indices.shape[1]):
                rows.append(
                    {
                        "sample": sample,
                        "layer": str(layer),
                        "rank": rank,
                        "train_index": int(indices[sample, rank]),
                        "score": float(scores[sample, rank]),
                    }
                )
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    return value
