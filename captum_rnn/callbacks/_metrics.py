"""Find a metric by name at run time and call it on a probe batch.

Names are those of the metric registry (``captum_rnn.metrics.available_metrics()``),
looked up when used: an unknown one gives a ``ValueError`` that lists what is
available. A metric can also be any callable. It is called as::

    metric(model, inputs, attributions, target=..., lengths=..., **metric_kwargs)

with ``inputs`` the padded token ids or features on the model's device and
``attributions`` one score per position ``(batch, time)`` (zero at padding). Keywords
the metric does not take are left out, and the common alternative names are
recognised (``forward_func`` for the model, ``additional_forward_args`` for the
lengths). It may return a number, a tensor or array (averaged, NaN ignored), a dict
of those, or an object with a ``score``/``value``/``mean`` attribute.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["available_metrics", "call_metric", "resolve_metrics", "scalars_of"]

_ROLES = {
    "model": ("model", "forward_func", "forward_fn", "module"),
    "inputs": ("inputs", "input_ids", "ids", "x"),
    "attributions": ("attributions", "attribution", "scores", "explanation"),
    "target": ("target", "targets"),
    "lengths": ("lengths",),
}


def _registry() -> Any:
    try:
        return importlib.import_module("captum_rnn.metrics._registry")
    except ImportError:
        return None


def available_metrics() -> list[str]:
    """The registered metrics' names (``captum_rnn.metrics.available_metrics()``)."""
    registry = _registry()
    return [] if registry is None else registry.available_metrics()


# What a callback cannot give a metric, and where such a metric is computed instead.
_CANNOT_GIVE = {
    "rationale": "a rationale",
    "lexicon": "a lexicon and a vocabulary",
    "train_data": "training data and a training run",
}


def resolve_metrics(
    metrics: Any, argument: str = "metrics"
) -> list[tuple[str, Callable[..., Any]]]:
    """Turn names and callables into ``[(name, callable)]``.

    Names are those of the metric registry (``captum_rnn.metrics.available_metrics()``).

    Raises:
        ValueError: for a name the registry does not declare (the message lists the
            available metrics), or a registered metric that needs what a callback
            cannot give (a rationale, a lexicon, training data).
        TypeError: for anything that is neither a name nor a callable.
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    if not isinstance(metrics, Sequence):
        raise TypeError(f"{argument} must be a metric name, a callable or a sequence of them")
    resolved = []
    registry = _registry()
    for metric in metrics:
        if isinstance(metric, str):
            declared = None if registry is None else registry.METRICS.get(metric)
            if declared is None:
                raise ValueError(
                    f"{argument}: metric {metric!r} is not available in captum_rnn.metrics; "
                    f"available: {available_metrics()}"
                )
            missing = [_CANNOT_GIVE[n] for n in declared.needs if n in _CANNOT_GIVE]
            if missing or declared.function is None:
                raise ValueError(
                    f"{argument}: metric {metric!r} needs {' and '.join(missing) or 'more'}, "
                    "which a training callback cannot give: compute it with "
                    "captum_rnn.benchmark(...)"
                )
            resolved.append((metric, declared.function))
        elif callable(metric):
            resolved.append((getattr(metric, "__name__", type(metric).__name__), metric))
        else:
            raise TypeError(f"{argument} entries must be names or callables, got {metric!r}")
    return resolved


def call_metric(
    fn: Callable[..., Any],
    *,
    model: Any,
    inputs: Tensor,
    attributions: Tensor,
    target: Tensor,
    lengths: Tensor,
    kwargs: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Call a metric with the arguments it takes; return its scalars (see module docstring)."""
    values = {
        "model": model,
        "inputs": inputs,
        "attributions": attributions,
        "target": target,
        "lengths": lengths,
    }
    call: dict[str, Any] = dict(kwargs or {})
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = None
    if params is None:
        return scalars_of(fn(model, inputs, attributions, target=target, lengths=lengths, **call))
    var_keyword = any(p.kind is p.VAR_KEYWORD for p in params.values())
    matched = False
    for role, names in _ROLES.items():
        name = next((n for n in names if n in params), None)
        if name is not None:
            call.setdefault(name, values[role])
            matched = matched or role in ("model", "inputs", "attributions")
        elif role in ("target", "lengths") and var_keyword:
            call.setdefault(role, values[role])
    if "lengths" not in call and "additional_forward_args" in params:
        call.setdefault("additional_forward_args", (lengths,))
    positional: list[Any] = []
    if not matched:  # unknown parameter names: the documented positional order
        positional = [model, inputs, attributions]
    for name, param in params.items():  # positional-only parameters cannot be keywords
        if param.kind is param.POSITIONAL_ONLY and name in call:
            positional.append(call.pop(name))
    return scalars_of(fn(*positional, **call))


def _mean(value: Any) -> float:
    if isinstance(value, Tensor):
        value = value.detach().double().cpu().numpy()
    array = np.asarray(value, dtype=float)
    if array.size == 0 or np.isnan(array).all():
        return math.nan
    return float(np.nanmean(array))


def scalars_of(result: Any) -> dict[str, float]:
    """A metric's result as ``{suffix: float}`` (``""`` for a single value)."""
    if isinstance(result, Mapping):
        out = {}
        for key, value in result.items():
            try:
                out[str(key)] = _mean(value)
            except (TypeError, ValueError):
                continue
        return out
    if (
        isinstance(result, tuple)
        and result
        and all(isinstance(r, (Tensor, np.ndarray)) and np.ndim(r) > 0 for r in result)
    ):
        return {str(i): _mean(r) for i, r in enumerate(result)}
    for attribute in ("score", "value", "mean"):
        value = getattr(result, attribute, None)
        if (
            value is not None
            and not callable(value)
            and not isinstance(result, (Tensor, np.ndarray))
        ):
            return {"": _mean(value)}
    if isinstance(result, (int, float, Tensor, np.ndarray, list, tuple)) or np.isscalar(result):
        return {"": _mean(result)}
    raise TypeError(f"cannot read a score from a metric result of type {type(result).__name__}")


def padded_scores(explanations: Sequence[Any], time: int, device: torch.device) -> Tensor:
    """Per-position scores of explanations as a zero-padded ``(batch, time)`` tensor."""
    out = torch.zeros(len(explanations), time, dtype=torch.float32)
    for i, e in enumerate(explanations):
        out[i, : len(e.scores)] = torch.tensor(e.scores, dtype=torch.float32)
    return out.to(device)
