"""Find an explanation method by name at run time and run it on a padded batch.

Every callback reads one registry: the attribution methods of
``captum_rnn.attr.available_methods()`` (gradient, perturbation, attention and rule
methods; subclass :class:`captum_rnn.attr.AttributionMethod` with a ``name`` to add
one), run through :func:`captum_rnn.explain`. Besides them the callbacks know one
example-based explainer, ``"nearest_examples"`` (:class:`captum_rnn.influence.NearestExamples`):
it answers with training examples, not scores, so it only adds table rows.

A callable ``explainer(model, inputs, lengths, target)`` returning attributions
``(batch, time)`` or ``(batch, time, features)`` may stand in for a named method.

Models are seen through the model contract (:func:`captum_rnn.adapt`): any
``nn.Module`` or ``LightningModule``, with the contract's hints where it cannot tell.
Batches here are batch-first (as the probe is); they are handed to the model in its
own layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from captum_rnn._utils.grad import gradient_context
from captum_rnn._utils.state import preserve_state
from captum_rnn.explanation import Explanations
from captum_rnn.models.protocol import HINT_NAMES, SequenceModel, adapt

__all__ = [
    "EXAMPLE_EXPLAINERS",
    "MethodOutput",
    "available_explainers",
    "check_hints",
    "check_methods",
    "explainer_name",
    "own_layout",
    "run_method",
    "sequence_model",
]

#: The callbacks' example-based explainers: they answer with training examples.
EXAMPLE_EXPLAINERS = ("nearest_examples",)
#: Method names that stand for a callable ``explainer=`` (never in the registry).
_CALLABLE_PREFIX = "explainer:"


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


def available_explainers() -> list[str]:
    """Names every callback accepts: the method registry, then ``"nearest_examples"``.

    Returns:
        ``captum_rnn.attr.available_methods()`` (sorted, aliases included) followed by
        the example-based explainers (``["nearest_examples"]``).
    """
    from captum_rnn.attr import available_methods

    return list(available_methods()) + list(EXAMPLE_EXPLAINERS)


def explainer_name(explainer: Callable[..., Any]) -> str:
    """The method name a callable ``explainer=`` is logged and written under."""
    name = getattr(explainer, "__name__", None) or type(explainer).__name__
    return f"{_CALLABLE_PREFIX}{name}"


def check_methods(methods: str | Sequence[str], argument: str = "methods") -> tuple[str, ...]:
    """Return ``methods`` as a tuple after checking each name is available.

    Names made by :func:`explainer_name` (a callable ``explainer=``) are accepted.

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
        if name not in available and not name.startswith(_CALLABLE_PREFIX):
            raise ValueError(
                f"{argument}: method {name!r} is not available; available: {available} "
                "(or pass explainer=callable(model, inputs, lengths, target))"
            )
    return methods


def check_hints(model_hints: Mapping[str, Any] | None, more: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's hints from ``model_hints`` and keyword hints, checked.

    Raises:
        TypeError: for a ``model_hints`` that is not a dict, or a name that is not a
            hint of :func:`captum_rnn.adapt`.
    """
    if model_hints is not None and not isinstance(model_hints, Mapping):
        raise TypeError(f"model_hints must be a dict of adapt() keywords, got {model_hints!r}")
    hints = {**dict(model_hints or {}), **dict(more)}
    unknown = sorted(set(hints) - set(HINT_NAMES))
    if unknown:
        raise TypeError(
            f"unknown keyword arguments {unknown}: besides its own options this takes the "
            f"model contract's hints {list(HINT_NAMES)} (see captum_rnn.adapt)"
        )
    return {k: v for k, v in hints.items() if v is not None}


def sequence_model(model: Any, hints: Mapping[str, Any] | None = None) -> SequenceModel:
    """``model`` through the contract, with ``hints``."""
    return adapt(model, **dict(hints or {}))


def own_layout(seq: SequenceModel, x: Tensor) -> Tensor:
    """A batch-first tensor in the model's own layout (time-major or channels-first
    models: transposed)."""
    return seq.to_native(x)


def run_method(
    model: Any,
    name: str,
    inputs: Tensor,
    lengths: Tensor | None,
    *,
    target: Any = None,
    vocab: Any = None,
    labels: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    hints: Mapping[str, Any] | None = None,
    explainer: Callable[..., Any] | None = None,
) -> MethodOutput:
    """Explain a padded batch with the method called ``name`` (or ``explainer``).

    Args:
        model: any sequence model (``nn.Module``, ``LightningModule`` or
            ``SequenceModel``), on its device.
        name: a name from :func:`available_explainers`, or the name of ``explainer``.
        inputs: batch-first token ids ``(batch, time)`` or continuous input
            ``(batch, time, features)``.
        lengths: true lengths ``(batch,)``; ``None``: from the padding (token ids) or
            the full width (features).
        target: ``None`` (predicted class), an int, or one per sequence.
        vocab: turns token ids into tokens.
        labels: optional true labels, stored on the explanations.
        class_names: optional class names, stored on the explanations.
        kwargs: method options (``n_steps`` ...); for ``nearest_examples`` also the
            ``NearestExamples`` constructor's (``train_dataset`` is required) and ``top_k``.
        hints: the model contract's hints (see :func:`captum_rnn.adapt`).
        explainer: a callable ``explainer(model, inputs, lengths, target)`` returning
            attributions ``(batch, time)`` or ``(batch, time, features)``; it gets the
            user's model, the inputs in the model's own layout, lengths ``(batch,)`` and
            one target per sequence ``(batch,)``.

    Returns:
        A :class:`MethodOutput`.

    Raises:
        ValueError: when ``name`` is not available (the message lists what is).
    """
    kwargs = dict(kwargs or {})
    seq = sequence_model(model, hints)
    if explainer is None:
        check_methods((name,), "method")
    from captum_rnn._explain import explain, prepare_inputs

    if explainer is None and name in EXAMPLE_EXPLAINERS:
        with preserve_state(seq.module), gradient_context(seq.module) as ctx:
            inputs, lengths, _ = prepare_inputs(
                seq,
                own_layout(seq, ctx.prepare(inputs)),
                None if lengths is None else ctx.prepare(lengths),
                vocab,
            )
            return MethodOutput(None, _nearest_rows(seq.module, inputs, lengths, kwargs))
    method: Any = name
    if explainer is not None:
        # a user's function, named as the callbacks list it ("explainer:<name>")
        def method(*args: Any, **options: Any) -> Any:
            return explainer(*args, **options)

        method.__name__ = name
    return MethodOutput(
        explain(
            seq,
            own_layout(seq, inputs),
            method=method,
            target=target,
            vocab=vocab,
            lengths=lengths,
            labels=labels,
            class_names=class_names,
            **kwargs,
        )
    )


def _nearest_rows(model: Any, inputs: Tensor, lengths: Tensor, kwargs: dict) -> list[dict]:
    if "train_dataset" not in kwargs:
        raise ValueError(
            "method 'nearest_examples' needs its training set: pass "
            "method_kwargs={'nearest_examples': {'train_dataset': ...}}"
        )
    from captum_rnn.influence import NearestExamples

    top_k = int(kwargs.pop("top_k", 5))
    finder = NearestExamples(model, kwargs.pop("train_dataset"), **kwargs)
    result = finder.influence(inputs, top_k=top_k, additional_forward_args=(lengths,))
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
