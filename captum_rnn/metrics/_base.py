"""What every metric shares: its description (direction, range) and input handling.

A :class:`Metric` says what a number means: whether higher or lower is better, the
range it can take and the value a random attribution is expected to get. The private
helpers below turn what users pass (token ids or continuous input, padded tensors,
``Explanations``) into one padded batch on the model's device with a mask of real
positions, so that no metric ever ranks, removes or counts a padded position.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from captum_rnn._utils.options import check_int
from captum_rnn._utils.state import preserve_state
from captum_rnn._utils.targets import resolve_target
from captum_rnn.models.protocol import HINT_NAMES, OUTPUT_KINDS, SequenceModel, adapt

__all__ = ["Metric"]


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
        cost: what one value costs (forward passes per sequence, or a word).
        needs: what besides a model, inputs and attributions it needs (``"rationale"``,
            ``"lexicon"``, ``"train_data"``, ``"explainer"``).
        default: computed by ``benchmark`` when ``metrics=None`` (if its needs are met).
        compute: ``compute(context) -> per-sequence values`` (a tensor ``(batch,)``) or
            one number, for ``benchmark``; see ``captum_rnn.metrics._registry``.
        function: the public function callbacks call as
            ``function(model, inputs, attributions, target=..., lengths=...)``.
        per_output: ``per_output(context) -> float``: the metric on explanations of
            every output step of a tagger, forecaster or seq2seq model (an
            :class:`~captum_rnn.metrics._per_output.OutputStepContext`), each output's
            explanation measured on that output; ``None`` when it is not defined there.
            ``benchmark(outputs=...)`` and the training callbacks read it.

    Example:
        >>> from captum_rnn.metrics import get_metric
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
    cost: str = ""
    needs: tuple[str, ...] = ()
    default: bool = False
    compute: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    per_output: Callable[[Any], float] | None = field(default=None, compare=False, repr=False)

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


# ---------------------------------------------------------------------- shared helpers
# The metrics' former ``output=`` values, kept one release: what each now means.
_OLD_OUTPUTS = {"auto": "scores", "probability": "probs", "raw": "raw", "logit": "raw"}


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _as_sequence_model(model: Any) -> SequenceModel:
    return model if isinstance(model, SequenceModel) else adapt(model)


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside captum_rnn."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("captum_rnn"):
        frame, level = frame.f_back, level + 1
    return level


def _adapt(model: Any, output: str | None = None, **hints: Any) -> tuple[SequenceModel, str]:
    """The user's model through the contract, and what the metrics read from its output.

    ``output`` is one of the contract's kinds (``"logits"``, ``"probs"``,
    ``"log_probs"``, ``"regression"``: a hint for :func:`~captum_rnn.adapt`) or
    ``None`` (inferred); the former values ``"auto"``, ``"probability"`` and ``"raw"``
    still work for one release with a ``DeprecationWarning``.

    Returns:
        ``(sequence_model, mode)`` with ``mode`` ``"scores"`` (probabilities for a
        classifier, the output for regression), ``"probs"`` or ``"raw"``.
    """
    unknown = set(hints) - set(HINT_NAMES)
    if unknown:
        raise TypeError(
            f"unexpected keyword arguments {sorted(unknown)}; model hints: {list(HINT_NAMES)}"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    mode = "scores"
    if output in _OLD_OUTPUTS:
        mode = _OLD_OUTPUTS[output]
        meaning = {
            "scores": "output=None (inferred by the model contract)",
            "probs": "output=None: classifiers are scored by their probabilities",
            "raw": "nothing: raw outputs of a classifier are deprecated",
        }[mode]
        warnings.warn(
            f"output={output!r} is deprecated and will be removed in the next release; "
            f"output= now names what the model returns ('logits', 'probs', 'log_probs', "
            f"'regression'); use {meaning}",
            DeprecationWarning,
            stacklevel=_caller_level(),
        )
        output = None
    elif output is not None and output not in OUTPUT_KINDS:
        raise ValueError(
            f"output must be one of {OUTPUT_KINDS} (what the model returns) or None, got {output!r}"
        )
    return adapt(model, output=output, **hints), mode


@dataclass
class _Batch:
    """A checked padded batch, batch-first, on the model's device.

    ``x`` is token ids ``(B, T)`` or float input ``(B, T, F)``; ``mask`` marks real steps
    (wherever the padding stands).
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

    def rows(self, part: slice) -> _Batch:
        return _Batch(
            self.x[part], self.lengths[part], self.mask[part], self.is_token, self.padding_idx
        )


def _prepare(model: Any, inputs: Any, lengths: Any = None) -> _Batch:
    """Check ``inputs``/``lengths`` for a :class:`SequenceModel` (a raw model is adapted)
    and return a batch-first :class:`_Batch` on its device with the real-step mask.

    The checks are :func:`captum_rnn._explain.prepare_inputs`'; ``inputs`` may also be a
    list of 1-D id tensors or of ``(time, features)`` tensors of different lengths.
    """
    from captum_rnn._explain import prepare_inputs

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seq = _as_sequence_model(model)
    if (
        not isinstance(inputs, (Tensor, str))
        and isinstance(inputs, Sequence)
        and inputs
        and isinstance(inputs[0], Tensor)
        and inputs[0].dtype.is_floating_point
    ):
        rows = [torch.as_tensor(r) for r in inputs]
        if seq.channels_first:  # each row (features, time)
            rows = [r.T for r in rows]
        if lengths is None:
            lengths = [len(r) for r in rows]
        inputs = seq.to_native(nn.utils.rnn.pad_sequence(rows, batch_first=True))
    if isinstance(inputs, Tensor) and inputs.dtype == torch.bool:
        raise TypeError("inputs must be integer token ids or float input, got dtype torch.bool")
    if not seq.is_token_model and isinstance(inputs, Tensor) and not inputs.dtype.is_floating_point:
        raise TypeError(
            f"inputs are integer token ids (dtype {inputs.dtype}) but the model has no "
            "token embedding; pass float input (batch, time, features)"
        )
    x, lengths, real = prepare_inputs(seq, inputs, lengths)
    pad = seq.pad_id if seq.is_token_model else 0
    return _Batch(x, lengths, real, seq.is_token_model, pad)


def _native(seq: SequenceModel, x: Tensor) -> Tensor:
    """A batch-first batch back in the model's own layout (time-major when it is)."""
    return seq.to_native(x)


def refuse_per_output(attributions: Any, name: str = "attributions") -> None:
    """A clear error for explanations of every output step given where one row per
    sequence is read (they are scored per output step)."""
    if isinstance(attributions, Tensor) or not isinstance(attributions, Sequence):
        return
    for i, a in enumerate(attributions):
        if getattr(a, "output_labels", None) is not None:
            raise ValueError(
                f"{name}[{i}] explains every output step (a tagger or forecaster explained "
                "with outputs=): score it with comprehensiveness_sufficiency_per_output("
                "model, inputs, explanations) or benchmark(..., outputs=...)"
            )


def _as_scores(attributions: Any, batch: _Batch, name: str = "attributions") -> Tensor:
    """Per-position scores ``(B, T)`` (float64, on the batch's device), 0 at padding.

    Accepts a tensor ``(B, T)`` or ``(B, T, D)`` (summed over ``D``), an
    ``Explanations`` list (its ``scores``) or a list of per-sequence score lists.

    Raises:
        ValueError: when the attributions of a sequence do not cover its real tokens
            (naming the sequence and both lengths); they are never zero-padded.
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
        width = int(scores.shape[1])
        if width < batch.time:
            past = batch.mask[:, width:].any(dim=1)
            if bool(past.any()):
                i = int(past.nonzero()[0])
                last = int(batch.mask[i].nonzero()[-1]) + 1
                raise ValueError(
                    f"{name} for sequence {i} have {width} positions but sequence {i} has "
                    f"{int(batch.lengths[i])} real tokens spanning {last} positions: "
                    f"attributions must cover every real token (they are not zero-padded)"
                )
            scores = torch.nn.functional.pad(scores, (0, batch.time - width))
        elif width > batch.time:
            if bool((scores[:, batch.time :] != 0).any()):
                raise ValueError(
                    f"{name} have {width} positions, more than the inputs' {batch.time}"
                )
            scores = scores[:, : batch.time]
        scores = scores.to(device=batch.x.device, dtype=torch.float64)
    else:
        refuse_per_output(attributions, name)
        rows = [getattr(a, "scores", a) for a in attributions]
        if len(rows) != batch.size:
            raise ValueError(f"{name} must have {batch.size} entries, got {len(rows)}")
        scores = torch.zeros(batch.size, batch.time, dtype=torch.float64, device=batch.x.device)
        for i, row in enumerate(rows):
            row = torch.as_tensor(row, dtype=torch.float64).reshape(-1)
            if row.numel() != int(batch.lengths[i]):
                raise ValueError(
                    f"{name}[{i}] has {row.numel()} scores but sequence {i} has "
                    f"{int(batch.lengths[i])} real tokens"
                )
            scores[i, batch.mask[i]] = row.to(scores.device)
    if not bool(torch.isfinite(scores[batch.mask]).all()):
        raise ValueError(f"{name} contain NaN or infinite values at real positions")
    return scores.masked_fill(~batch.mask, 0.0)


def _run(seq: SequenceModel, x: Tensor, lengths: Tensor, ids: Tensor | None = None) -> Tensor:
    """``seq(x, lengths, ids)``; trailing padding beyond the longest row is cut off (it
    saves time on perturbed, shorter rows) for a model told the lengths once it is seen
    not to read that padding: checked once per model on one row, since a forward that runs
    a bidirectional RNN over the padded batch under a mask does read it."""
    # Never for per-step outputs: their columns are the input's steps, which a cut drops
    # (with padding in front, even steps the explained outputs sit on).
    if (
        seq.takes_lengths
        and seq.step_shape is None
        and x.shape[1] > 1
        and seq.ignores_trailing_padding is not False
    ):
        if seq.is_token_model:
            real = (ids if ids is not None else x) != seq.pad_id
            last = (real * torch.arange(1, x.shape[1] + 1, device=x.device)).amax()
            # Tokens replaced by the pad id still count within the lengths.
            width = max(int(last), int(lengths.max()), 1)
        else:
            width = int(lengths.max())
        if width < x.shape[1] and _ignores_trailing_padding(seq, x, lengths, ids):
            x, ids = x[:, :width], None if ids is None else ids[:, :width]
    return seq(x, lengths, ids)


def _ignores_trailing_padding(
    seq: SequenceModel, x: Tensor, lengths: Tensor, ids: Tensor | None
) -> bool:
    """:meth:`SequenceModel.check_trailing_padding`, asked of the row with the most
    trailing padding (the most padding shows the most effect) that has tokens (a row of
    padding only says nothing: a masked model ignores all of it)."""
    if seq.ignores_trailing_padding is not None:
        return seq.ignores_trailing_padding
    steps = torch.arange(1, x.shape[1] + 1, device=x.device)
    if seq.is_token_model:
        real = (ids if ids is not None else x) != seq.pad_id
        if not bool(real.any()):
            return False  # no cut this time; ask again on a row with tokens
        extent = torch.maximum((real * steps).amax(dim=1), lengths.to(x.device))
        extent = extent.masked_fill(~real.any(dim=1), x.shape[1] + 1)
    else:
        extent = lengths.to(x.device)
    r = int(extent.argmin())
    row = None if ids is None else ids[r : r + 1]
    return seq.check_trailing_padding(x[r : r + 1], lengths[r : r + 1], max(int(extent[r]), 1), row)


def _model_outputs(model: Any, batch: _Batch, batch_size: int) -> Tensor:
    """The model's raw outputs ``(B, outputs)`` for the unperturbed batch (eval mode)."""
    seq = _as_sequence_model(model)
    with torch.no_grad(), preserve_state(seq.module):
        outputs = torch.cat(
            [
                seq(batch.x[s : s + batch_size], batch.lengths[s : s + batch_size])
                for s in range(0, batch.size, batch_size)
            ]
        )
    seq.observe(outputs)
    return outputs


def _matrix(seq: SequenceModel, outputs: Tensor, mode: str) -> Tensor:
    """What the metrics read from outputs ``(B, outputs)``: probabilities for a
    classifier (never raw logits), the output itself for regression or ``"raw"``."""
    if mode == "raw":
        return outputs
    if seq.output is None:
        seq.observe(outputs)
    if seq.output == "regression":
        if mode == "probs":
            raise ValueError("output='probability': a regression model has no probabilities")
        return outputs
    probabilities = seq.probabilities(outputs)
    if outputs.shape[-1] == 1:
        # One binary logit: its column is the probability of class 1, the evidence that
        # explain() attributes.
        return probabilities[:, 1:]
    return probabilities


def _select(seq: SequenceModel, outputs: Tensor, target: Tensor, mode: str) -> Tensor:
    """The ``target`` column of what the metrics read from ``outputs``, float64."""
    values = _matrix(seq, outputs.double(), mode)
    return values.gather(1, target[:, None].to(values.device))[:, 0]


def _resolve_target(
    model: Any, batch: _Batch, target: Any, batch_size: int, outputs: Tensor | None = None
) -> Tensor:
    """The explained output index per sequence: given, or the predicted class.

    ``outputs`` are the model's outputs for the batch when already computed.
    """
    seq = _as_sequence_model(model)
    if outputs is None:
        outputs = _model_outputs(seq, batch, batch_size)
    seq.observe(outputs)
    if seq.is_classifier and outputs.shape[-1] == 1 and seq.step_shape is None:
        # As explain(): a one-logit model is explained as the evidence for class 1.
        # (Not a tagger's flattened outputs that happen to be one step of one class.)
        if target is not None and not (isinstance(target, int) and target == 1):
            raise ValueError(
                "the model has one output logit: it is explained as the evidence for "
                "class 1; pass target=None or target=1"
            )
        return torch.zeros(outputs.shape[0], dtype=torch.long, device=outputs.device)
    return resolve_target(target, outputs, seq.is_classifier)


def _forward(
    model: Any,
    x: Tensor,
    lengths: Tensor,
    target: Tensor,
    mode: str,
    batch_size: int,
) -> Tensor:
    """The model's ``target`` value (see :func:`_select`) for each row, float64."""
    seq = _as_sequence_model(model)
    out = []
    with torch.no_grad(), preserve_state(seq.module):
        for s in range(0, x.shape[0], batch_size):
            outputs = _run(seq, x[s : s + batch_size], lengths[s : s + batch_size])
            out.append(_select(seq, outputs, target[s : s + batch_size], mode))
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
    batch_size = check_int("batch_size", batch_size, 1)
    return batch_size


#: An explainer maps ``(model, inputs, lengths, target)`` to scores ``(batch, time)``.
Explainer = Callable[[nn.Module, Tensor, Tensor, Tensor], Any]


def _method_explainer(method: str, *, cells: bool = False, **kwargs: Any) -> Explainer:
    """An :data:`Explainer` that runs a registered ``captum_rnn.attr`` method.

    It works on token ids and on input already in the space the RNN reads (embedded
    tokens or continuous features), which is what perturbation metrics need. It returns
    per-step scores ``(batch, time)``, or with ``cells=True`` the attributions of every
    cell ``(batch, time, dim)`` (0 at padding).
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
                mask = seq.padding_mask(x)
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
        if cells:
            return (result.attributions.detach() * mask[..., None]).double()
        return (result.attributions.detach().sum(dim=-1) * mask).double()

    explainer.__name__ = method_cls.name
    explainer._sequence_model = True  # type: ignore[attr-defined]
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


def _explainer_model(explainer: Explainer, model: nn.Module) -> nn.Module:
    """Built-in explainers take the :class:`SequenceModel`; a user's callable gets the
    user's own model."""
    if getattr(explainer, "_sequence_model", False):
        return _as_sequence_model(model)
    return model.module if isinstance(model, SequenceModel) else model


def _call_explainer(
    explainer: Explainer, model: nn.Module, batch: _Batch, target: Tensor
) -> Tensor:
    scores = explainer(_explainer_model(explainer, model), batch.x, batch.lengths, target)
    return _as_scores(scores, batch, "explanations")


def _nanmean(values: Tensor) -> float:
    values = values[~torch.isnan(values)]
    return float(values.mean()) if values.numel() else math.nan
