"""What every metric shares: its description (direction, range) and input handling.

A :class:`Metric` says what a number means: whether higher or lower is better, the
range it can take and the value a random attribution is expected to get. The private
helpers below turn what users pass (token ids or continuous input, padded tensors,
``Explanations``) into one padded batch on the model's device with a mask of real
positions, so that no metric ever ranks, removes or counts a padded position.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from captum_rnn._utils.state import preserve_state
from captum_rnn._utils.targets import resolve_target
from captum_rnn.models.protocol import adapt

__all__ = ["METRICS", "Metric", "get_metric"]


@dataclass(frozen=True)
class Metric:
    """Description of an explanation-quality metric.

    Attributes:
        name: the metric's name (also its column in benchmark tables).
        direction: ``"higher"`` or ``"lower"``: which values are better.
        range: ``(low, high)`` the values can take (``math.inf`` for unbounded).
        family: ``"faithfulness"``, ``"plausibility"`` or ``"sanity"``.
        description: one sentence on what it measures.
        chance: what a random attribution is expected to score, when that is known
            independently of the model and data (``None`` otherwise).

    Example:
        >>> m = get_metric("comprehensiveness")
        >>> m.higher_is_better, m.range
        (True, (-1.0, 1.0))
        >>> m.better(0.4, 0.1)
        True
    """

    name: str
    direction: Literal["higher", "lower"]
    range: tuple[float, float]
    family: str
    description: str
    chance: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"direction must be 'higher' or 'lower', got {self.direction!r}")

    @property
    def higher_is_better(self) -> bool:
        """True when larger values mean a better explanation."""
        return self.direction == "higher"

    def better(self, a: float, b: float) -> bool:
        """True when value ``a`` is strictly better than value ``b``."""
        return a > b if self.higher_is_better else a < b

    def arrow(self) -> str:
        """``"↑"`` when higher is better, ``"↓"`` when lower is better."""
        return "\u2191" if self.higher_is_better else "\u2193"


_PROB = (-1.0, 1.0)
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "comprehensiveness",
            "higher",
            _PROB,
            "faithfulness",
            "AOPC of the output drop when the top-ranked tokens are removed (ERASER)",
        ),
        Metric(
            "sufficiency",
            "lower",
            _PROB,
            "faithfulness",
            "AOPC of the output drop when only the top-ranked tokens are kept (ERASER)",
        ),
        Metric(
            "faithfulness",
            "higher",
            (-2.0, 2.0),
            "faithfulness",
            "comprehensiveness minus sufficiency: the summary used to recommend a method",
        ),
        Metric(
            "deletion_auc",
            "lower",
            (0.0, 1.0),
            "faithfulness",
            "area under the output curve as tokens are removed, most important first",
        ),
        Metric(
            "insertion_auc",
            "higher",
            (0.0, 1.0),
            "faithfulness",
            "area under the output curve as tokens are inserted, most important first",
        ),
        Metric(
            "loo_kendall",
            "higher",
            (-1.0, 1.0),
            "faithfulness",
            "Kendall tau between attributions and the output drop of removing each token",
            chance=0.0,
        ),
        Metric(
            "infidelity",
            "lower",
            (0.0, math.inf),
            "faithfulness",
            "Captum infidelity (normalised) under random removal of tokens in embedding space",
        ),
        Metric(
            "sensitivity_max",
            "lower",
            (0.0, math.inf),
            "faithfulness",
            "Captum sensitivity_max: largest relative change under small embedding noise",
        ),
        Metric(
            "auprc",
            "higher",
            (0.0, 1.0),
            "plausibility",
            "average precision of the attributions against the 0/1 rationale mask",
        ),
        Metric(
            "token_f1",
            "higher",
            (0.0, 1.0),
            "plausibility",
            "F1 of the top-k tokens against the rationale (k = rationale size)",
        ),
        Metric(
            "token_iou",
            "higher",
            (0.0, 1.0),
            "plausibility",
            "intersection over union of the top-k tokens and the rationale",
        ),
        Metric(
            "lexicon_spearman",
            "higher",
            (-1.0, 1.0),
            "plausibility",
            "Spearman correlation of attributions toward the positive class with human valence",
            chance=0.0,
        ),
        Metric(
            "randomization",
            "lower",
            (-1.0, 1.0),
            "sanity",
            "rank similarity of the explanations before and after randomising the weights",
            chance=0.0,
        ),
        Metric(
            "data_randomization",
            "lower",
            (-1.0, 1.0),
            "sanity",
            "rank similarity of the explanations of models trained on true and on shuffled labels",
            chance=0.0,
        ),
    )
}


def get_metric(name: str) -> Metric:
    """Return the :class:`Metric` description called ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {name!r}") from None


# ---------------------------------------------------------------------- shared helpers
def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@dataclass
class _Batch:
    """A checked padded batch on the model's device.

    ``x`` is token ids ``(B, T)`` or float input ``(B, T, F)``; ``mask`` marks real steps.
    """

    x: Tensor
    lengths: Tensor
    mask: Tensor
    is_token: bool
    padding_idx: int

    @property
    def size(self) -> int:
        return int(self.x.shape[0])

    @property
    def time(self) -> int:
        return int(self.x.shape[1])


def _padding_idx(model: nn.Module) -> int:
    return int(getattr(model, "padding_idx", 0) or 0)


def _vocab_size(model: nn.Module) -> int | None:
    size = getattr(model, "vocab_size", None)
    if size is None and getattr(model, "embedding", None) is not None:
        size = getattr(model.embedding, "num_embeddings", None)
    return None if size is None else int(size)


def _prepare(model: nn.Module, inputs: Any, lengths: Any = None) -> _Batch:
    """Check ``inputs``/``lengths`` and return a :class:`_Batch` on the model's device."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    device = _device(model)
    if not isinstance(inputs, Tensor):
        if isinstance(inputs, Sequence) and inputs and isinstance(inputs[0], Tensor | list):
            seqs = [torch.as_tensor(s) for s in inputs]
            if lengths is None:
                lengths = [len(s) for s in seqs]
            pad = _padding_idx(model) if not seqs[0].dtype.is_floating_point else 0
            inputs = nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=pad)
        else:
            inputs = torch.as_tensor(inputs)
    padding_idx = _padding_idx(model)
    is_token = not inputs.dtype.is_floating_point
    if inputs.dtype == torch.bool:
        raise TypeError("inputs must be integer token ids or float input, got dtype torch.bool")
    if is_token:
        if getattr(model, "embedding", None) is None:
            raise TypeError(
                f"inputs are integer token ids (dtype {inputs.dtype}) but the model has no "
                "token embedding; pass float input (batch, time, features)"
            )
        if inputs.dim() == 1:
            inputs = inputs.unsqueeze(0)
        if inputs.dim() != 2:
            raise ValueError(
                f"inputs must be token ids (batch, time) or (time,), got shape {tuple(inputs.shape)}"
            )
        vocab = _vocab_size(model)
        if inputs.numel() and (
            int(inputs.min()) < 0 or (vocab is not None and int(inputs.max()) >= vocab)
        ):
            raise ValueError(f"inputs hold token ids outside the vocabulary [0, {vocab})")
    else:
        if inputs.dim() == 2:
            inputs = inputs.unsqueeze(0)
        if inputs.dim() != 3:
            raise ValueError(
                f"inputs must be float input (batch, time, features), got shape "
                f"{tuple(inputs.shape)}"
            )
        if not bool(torch.isfinite(inputs).all()):
            raise ValueError("inputs contain NaN or infinite values")
    if inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs are empty (shape {tuple(inputs.shape)})")
    inputs = inputs.to(device)
    batch, time = inputs.shape[0], inputs.shape[1]
    if lengths is None:
        if is_token:
            empty = (inputs == padding_idx).all(dim=1)
            if bool(empty.any()):
                raise ValueError(f"inputs[{int(empty.nonzero()[0])}] holds only padding")
            if hasattr(model, "lengths_of"):
                lengths = model.lengths_of(inputs)
            else:
                steps = torch.arange(1, time + 1, device=device)
                lengths = ((inputs != padding_idx) * steps).amax(dim=1)
        else:
            lengths = torch.full((batch,), time, dtype=torch.long)
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if int(lengths.min()) < 1 or int(lengths.max()) > time:
        raise ValueError(f"lengths must be in [1, {time}], got {lengths.tolist()}")
    lengths = lengths.to(device=device, dtype=torch.long)
    mask = torch.arange(time, device=device)[None, :] < lengths[:, None]
    return _Batch(inputs, lengths, mask, is_token, padding_idx)


def _as_scores(attributions: Any, batch: _Batch, name: str = "attributions") -> Tensor:
    """Per-position scores ``(B, T)`` (float64, on the batch's device), 0 at padding.

    Accepts a tensor ``(B, T)`` or ``(B, T, D)`` (summed over ``D``), an
    ``Explanations`` list (its ``scores``) or a list of per-sequence score lists.
    """
    if isinstance(attributions, Tensor):
        scores = attributions.detach()
        if scores.dim() == 1 and batch.size == 1:
            scores = scores.unsqueeze(0)
        if scores.dim() == 3:
            scores = scores.sum(dim=-1)
        if scores.dim() != 2 or scores.shape[0] != batch.size:
            raise ValueError(
                f"{name} must have shape ({batch.size}, time) or ({batch.size}, time, dim), "
                f"got {tuple(attributions.shape)}"
            )
        if scores.shape[1] < batch.time:
            scores = torch.nn.functional.pad(scores, (0, batch.time - scores.shape[1]))
        elif scores.shape[1] > batch.time:
            if bool((scores[:, batch.time :] != 0).any()):
                raise ValueError(f"{name} are longer than the inputs ({batch.time} steps)")
            scores = scores[:, : batch.time]
        scores = scores.to(device=batch.x.device, dtype=torch.float64)
    else:
        rows = [getattr(a, "scores", a) for a in attributions]
        if len(rows) != batch.size:
            raise ValueError(f"{name} must have {batch.size} entries, got {len(rows)}")
        scores = torch.zeros(batch.size, batch.time, dtype=torch.float64)
        for i, row in enumerate(rows):
            row = torch.as_tensor(row, dtype=torch.float64).reshape(-1)
            if row.numel() != int(batch.lengths[i]):
                raise ValueError(
                    f"{name}[{i}] has {row.numel()} scores but sequence {i} has "
                    f"{int(batch.lengths[i])} positions"
                )
            scores[i, : row.numel()] = row
        scores = scores.to(batch.x.device)
    if not bool(torch.isfinite(scores[batch.mask]).all()):
        raise ValueError(f"{name} contain NaN or infinite values at real positions")
    return scores.masked_fill(~batch.mask, 0.0)


def _output_kind(model: nn.Module, output: str) -> str:
    if output not in ("auto", "probability", "raw", "logit"):
        raise ValueError(f"output must be 'auto', 'probability' or 'raw', got {output!r}")
    if output == "auto":
        return "probability" if getattr(model, "num_classes", None) is not None else "raw"
    return "raw" if output == "logit" else output


def _model_outputs(model: nn.Module, batch: _Batch, batch_size: int) -> Tensor:
    """The model's raw outputs ``(B, outputs)`` for the unperturbed batch (eval mode)."""
    with torch.no_grad(), preserve_state(model):
        return torch.cat(
            [
                model(batch.x[s : s + batch_size], batch.lengths[s : s + batch_size])
                for s in range(0, batch.size, batch_size)
            ]
        )


def _select(outputs: Tensor, target: Tensor, kind: str) -> Tensor:
    """The ``target`` column of ``outputs`` (softmax first for ``"probability"``), float64."""
    if kind == "probability":
        outputs = torch.softmax(outputs.double(), dim=-1)
    return outputs.gather(1, target[:, None])[:, 0].double()


def _resolve_target(
    model: nn.Module, batch: _Batch, target: Any, batch_size: int, outputs: Tensor | None = None
) -> Tensor:
    """The explained output index per sequence: given, or the predicted class.

    ``outputs`` are the model's outputs for the batch when already computed.
    """
    if outputs is None:
        outputs = _model_outputs(model, batch, batch_size)
    return resolve_target(target, outputs, getattr(model, "num_classes", None) is not None)


def _forward(
    model: nn.Module,
    x: Tensor,
    lengths: Tensor,
    target: Tensor,
    kind: str,
    batch_size: int,
) -> Tensor:
    """The model's ``target`` output (probability or raw) for each row, float64."""
    out = []
    with torch.no_grad(), preserve_state(model):
        for s in range(0, x.shape[0], batch_size):
            chunk_len = lengths[s : s + batch_size]
            width = int(chunk_len.max())
            logits = model(x[s : s + batch_size, :width], chunk_len)
            out.append(_select(logits, target[s : s + batch_size], kind))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64, device=x.device)


def _ranks(scores: Tensor, mask: Tensor, absolute: bool = False) -> Tensor:
    """Rank of every position (0 = most important); padded positions rank last.

    Ties are broken by position (earlier first), so results are deterministic.
    """
    values = scores.abs() if absolute else scores
    values = values.masked_fill(~mask, -math.inf)
    order = torch.argsort(values, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return ranks.scatter_(1, order, positions.contiguous())


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


#: An explainer maps ``(model, inputs, lengths, target)`` to scores ``(batch, time)``.
Explainer = Callable[[nn.Module, Tensor, Tensor, Tensor], Any]


def _method_explainer(method: str, **kwargs: Any) -> Explainer:
    """An :data:`Explainer` that runs a registered ``captum_rnn.attr`` method.

    It works on token ids and on input already in the space the RNN reads (embedded
    tokens or continuous features), which is what perturbation metrics need.
    """
    from captum_rnn._utils.grad import gradient_context
    from captum_rnn.attr import get_method

    method_cls = get_method(method)

    def explainer(model: nn.Module, x: Tensor, lengths: Tensor, target: Tensor) -> Tensor:
        seq = adapt(model)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        with preserve_state(seq.module), gradient_context(seq.module):
            if seq.is_token_model and not x.dtype.is_floating_point:
                ids = x
                embedded = seq.embed(x)
            elif seq.is_token_model:
                # Embedded (perturbed) input: the ids only mark which steps are real.
                embedded = x.detach()
                real_id = 1 if seq.pad_id == 0 else 0
                ids = torch.where(mask, real_id, seq.pad_id).long()
            else:
                embedded, ids = x.detach(), None
            if seq.is_token_model:
                # Padding embeddings at every position, as explain() uses by default.
                reference = seq.embed(torch.full_like(ids, seq.pad_id))
            else:
                reference = torch.zeros_like(embedded)
            with warnings.catch_warnings():
                # Captum notes that it set requires_grad on our detached input: expected.
                warnings.filterwarnings("ignore", message="Input Tensor .* require gradients")
                result = method_cls(seq, ids=ids).attribute(
                    embedded, reference, target, lengths, **kwargs
                )
        return (result.attributions.detach().sum(dim=-1) * mask).double()

    explainer.__name__ = method_cls.name
    return explainer


def _resolve_explainer(method: Any, method_kwargs: dict[str, Any] | None = None) -> Explainer:
    if isinstance(method, str):
        return _method_explainer(method, **(method_kwargs or {}))
    if callable(method):
        return method
    raise TypeError(
        "method must be a method name from captum_rnn.attr.available_methods() or a "
        f"callable (model, inputs, lengths, target) -> scores, got {type(method).__name__}"
    )


def _explainer_name(method: Any) -> str:
    return method if isinstance(method, str) else getattr(method, "__name__", repr(method))


def _call_explainer(
    explainer: Explainer, model: nn.Module, batch: _Batch, target: Tensor
) -> Tensor:
    return _as_scores(explainer(model, batch.x, batch.lengths, target), batch, "explanations")


def _nanmean(values: Tensor) -> float:
    values = values[~torch.isnan(values)]
    return float(values.mean()) if values.numel() else math.nan
