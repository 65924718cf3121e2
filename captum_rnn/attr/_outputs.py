"""Every output step of one sequence attributed at once (taggers, forecasters).

A model seen through the contract with ``output_steps=True`` returns its per-step
outputs flattened step-major: column ``step * classes + c``. Explaining output step
``t`` for class ``c`` is then explaining one column, and a loop of one-output Captum
calls gives the whole ``(outputs, time, dim)`` matrix. This module gives the same
matrix for less:

* perturbation methods (``feature_ablation``, ``occlusion``): Captum's own classes on a
  forward that returns every selected column, so each perturbed forward pass is read
  for all outputs at once (Captum attributes a vector output per element); ``lime`` and
  ``kernel_shap`` (Captum's surrogates take one output per sample): the model runs on
  the seeded perturbations once with every output recorded, and the surrogate's weighted
  ridge is solved once for all outputs on the same samples and weights;
* integrated gradients: one forward per integration step shared by all outputs, one
  backward per output (a vector-Jacobian loop on the retained graph), at Captum's own
  integration points and weights; for a causal (unidirectional) tagger the outputs are
  taken in blocks and each block's forward and backward run on the prefix that can
  reach it, so inputs after an output step are never computed (their attribution is
  exactly 0);
* any other method: a loop of one-output calls of the registered method.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from captum_rnn._utils.grad import output_gradients
from captum_rnn._utils.options import check_float, check_int
from captum_rnn.attr._linear import WeightedRidge
from captum_rnn.attr._methods import (
    FeatureAblationMethod,
    IntegratedGradientsMethod,
    KernelShapMethod,
    LimeMethod,
    OcclusionMethod,
    _PerStepPerturbation,
    resolve_features,
)
from captum_rnn.models.protocol import SequenceModel

__all__ = ["OutputsResult", "attribute_outputs", "is_unidirectional"]

#: Outputs per block when a causal model's outputs are taken prefix by prefix.
_BLOCKS = 4
_IG_OPTIONS = ("n_steps", "max_steps", "rtol", "atol", "method")


@dataclass
class OutputsResult:
    """Attributions of several outputs of one sequence.

    Attributes:
        attributions: ``(outputs, time, dim)``.
        delta: IG's completeness gap per output ``(outputs,)`` or ``None``.
        n_steps: IG's integration steps, or ``None``.
        causal: whether the prefix shortcut was used (inputs after each output's step
            are exactly 0).
    """

    attributions: Tensor
    delta: Tensor | None = None
    n_steps: Tensor | None = None
    causal: bool = False


def is_unidirectional(seq: SequenceModel) -> bool:
    """True when the model's sequence layers can only read the past: it has recurrent
    layers, all of them unidirectional, and no attention, transformer or convolution."""
    modules = list(seq.module.modules())
    rnns = [m for m in modules if isinstance(m, nn.RNNBase)]
    mixing = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.modules.conv._ConvNd)
    return (
        bool(rnns)
        and not any(m.bidirectional for m in rnns)
        and not any(isinstance(m, mixing) for m in modules)
    )


class _Columns(nn.Module):
    """The model's selected output columns, flattened: ``(batch * outputs,)``.

    With ``x`` and ``baseline`` given, the forward reads a gate per step instead of the
    input, ``(batch, time, 1)``: 1 keeps the step's input, 0 puts its baseline there
    (exactly, by selection). Ablating one gate is ablating the whole step, and Captum
    then accumulates one number per step rather than one per embedding dimension.
    """

    def __init__(self, seq, columns, x=None, baseline=None) -> None:
        super().__init__()
        self.seq, self.columns, self.x, self.baseline = seq, columns, x, baseline

    def forward(self, x: Tensor, lengths: Tensor | None = None, ids: Tensor | None = None):
        if self.x is not None:
            x = torch.where(x > 0.5, self.x, self.baseline)
        return self.seq(x, lengths, ids)[:, self.columns].reshape(-1)


class _Record(nn.Module):
    """For Captum's surrogate methods, which read one output per sample: runs the model on
    the perturbed batches, records every selected output and hands Captum the first."""

    def __init__(self, columns: _Columns) -> None:
        super().__init__()
        self.columns = columns
        self.record: list[Tensor] = []

    def forward(self, x: Tensor, lengths: Tensor | None = None, ids: Tensor | None = None):
        out = self.columns(x, lengths, ids).reshape(x.shape[0], -1)
        self.record.append(out.detach())
        return out[:, 0]


class _EveryOutputRidge(WeightedRidge):
    """Captum's surrogate fit, and beside it the same weighted ridge fitted on the same
    samples and weights for every recorded output at once (one solve, one column each)."""

    def __init__(self, alpha: float, recorder: _Record) -> None:
        super().__init__(alpha=alpha)
        self.recorder = recorder
        self.every: Tensor | None = None

    def fit(self, train_data: DataLoader, **kwargs: Any) -> dict[str, float]:
        inputs, first, weights = train_data.dataset.tensors
        outputs = torch.cat(self.recorder.record)
        if outputs.shape[0] != first.shape[0] or not torch.equal(
            outputs[:, 0].to(first.dtype), first.reshape(-1)
        ):
            raise RuntimeError("the surrogate's samples and the recorded outputs differ")
        every = WeightedRidge(alpha=self.alpha)
        every.fit(DataLoader(TensorDataset(inputs, outputs, weights), batch_size=len(inputs)))
        self.every = every.representation()  # (outputs, features)
        return super().fit(train_data, **kwargs)


def attribute_outputs(
    method_cls: Any,
    seq: SequenceModel,
    ids: Tensor | None,
    x: Tensor,
    baseline: Tensor,
    length: Tensor,
    real: Tensor,
    steps: Tensor,
    classes: Tensor,
    width: int,
    aligned: bool,
    causal: bool,
    **options: Any,
) -> OutputsResult:
    """Attribute several output columns of one sequence to its inputs.

    Args:
        method_cls: a registered method class (or a ``CallableMethod``).
        seq: the model, adapted with ``output_steps=True``.
        ids: ``(1, time)`` token ids behind ``x`` (token models) or ``None``.
        x: ``(1, time, dim)`` embedded tokens or features; ``baseline`` the same shape.
        length: ``(1,)`` true length.
        real: ``(time,)`` True at real (non-padding) steps.
        steps: ``(outputs,)`` output step of each explained output (model's layout).
        classes: ``(outputs,)`` class (or feature) index explained at each step.
        width: classes per output step (the flattening stride).
        aligned: output step ``t`` belongs to input step ``t`` (a tagger): cutting the
            padding out moves the output steps with their inputs.
        causal: the outputs are aligned with the input steps and the model is
            unidirectional: output ``t`` cannot see inputs after ``t``.
        options: the method's options.

    Returns:
        An :class:`OutputsResult`.
    """
    columns = steps * width + classes
    if isinstance(method_cls, type) and issubclass(method_cls, _PerStepPerturbation):
        options["features"] = resolve_features(
            options.get("features"), seq.is_token_model, x.shape[-1]
        )
    if method_cls is IntegratedGradientsMethod:
        return _integrated_gradients(seq, ids, x, baseline, length, real, steps, columns,
                                     width, causal, **options)  # fmt: skip
    surrogate = method_cls in (LimeMethod, KernelShapMethod)
    if method_cls in (FeatureAblationMethod, OcclusionMethod) or (
        surrogate and options["features"] == "step"
    ):
        return _perturbation(method_cls, seq, ids, x, baseline, length, real, steps, classes,
                             width, aligned, causal, **options)  # fmt: skip
    return _loop(method_cls, seq, ids, x, baseline, length, columns, causal, steps, **options)


def _mask_future(attributions: Tensor, steps: Tensor) -> Tensor:
    """Exact zeros at inputs after each output's step (causal models)."""
    time = attributions.shape[1]
    after = torch.arange(time, device=attributions.device)[None, :] > steps[:, None]
    return attributions.masked_fill(after[..., None], 0.0)


def _loop(method_cls, seq, ids, x, baseline, length, columns, causal, steps, **options):
    method = method_cls(seq, ids=ids)
    rows, deltas, used = [], [], []
    for column in columns.tolist():
        target = torch.tensor([column], device=x.device)
        result = method.attribute(x, baseline, target, length, **options)
        attribution = result.attributions[0]
        if result.step_scores is not None:  # a callable's exact step scores, spread
            attribution = (result.step_scores[0, :, None] / x.shape[-1]).expand_as(x[0])
        rows.append(attribution.to(x.dtype))
        if result.delta is not None:
            deltas.append(result.delta[0])
        if result.n_steps is not None:
            used.append(int(result.n_steps[0]))
    attributions = torch.stack(rows)
    if causal:
        attributions = _mask_future(attributions, steps)
    delta = torch.stack(deltas) if deltas else None
    n_steps = torch.tensor(used) if used else None
    return OutputsResult(attributions, delta, n_steps, causal)


def _perturbation(
    method_cls,
    seq,
    ids,
    x,
    baseline,
    length,
    real,
    steps,
    classes,
    width,
    aligned,
    causal,
    **options,
):
    features = options.pop("features")
    for option in ("window", "perturbations_per_eval", "n_samples"):
        if option in options:
            options[option] = check_int(option, options[option], 1)
    if options.get("alpha") is not None:
        options["alpha"] = check_float("alpha", options["alpha"], 0.0)
    keep = real.nonzero()[:, 0]
    # Padding is cut out, as for one output (aligned output steps follow their inputs),
    # unless the explained outputs change by the cut: the padding is then held fixed.
    cut_steps = torch.searchsorted(keep, steps) if aligned else steps
    held = None
    if len(keep) < x.shape[1] and _reads_padding(seq, ids, x, length, keep, steps, cut_steps,
                                                 classes, width):  # fmt: skip
        keep, cut_steps, held = torch.arange(x.shape[1], device=x.device), steps, real
        baseline = torch.where(real[None, :, None], baseline, x)
    method = method_cls(seq, ids=ids)
    cut_ids = None if ids is None else ids[:, keep]
    cut_x, cut_baseline = x[:, keep], baseline[:, keep]
    attributions = torch.zeros((len(steps), *x.shape[1:]), dtype=x.dtype, device=x.device)
    if features == "cell":
        method.model = _Columns(seq, cut_steps * width + classes)
        found = method._one(cut_x, cut_baseline, None, (length, cut_ids), True, held, **options)
        attributions[:, keep] = found.detach().to(x.dtype)
    else:
        if method_cls in (LimeMethod, KernelShapMethod):
            # on the input itself (Lime's similarity is measured in the input's space);
            # Captum gives every dim of a step the step's whole score: keep one
            method.model = recorder = _Record(_Columns(seq, cut_steps * width + classes))
            make, ridges = method._explainer, []

            def explainer(alpha: float) -> Any:
                ridges.append(_EveryOutputRidge(alpha, recorder))
                surrogate = make(alpha)
                surrogate.interpretable_model = ridges[-1]
                return surrogate

            method._explainer = explainer
            method._one(cut_x, cut_baseline, None, (length, cut_ids), False, held, **options)
            found = ridges[-1].every.to(x.dtype)[..., None]  # (outputs, steps, 1)
            if held is not None:  # one fitted weight per real step: each step's group
                found = found[:, (held.long().cumsum(0) - 1).clamp_min(0)]
        else:
            method.model = _Columns(seq, cut_steps * width + classes, cut_x, cut_baseline)
            gate = torch.ones((1, len(keep), 1), dtype=x.dtype, device=x.device)
            found = method._one(
                gate, torch.zeros_like(gate), None, (length, cut_ids), False, held, **options
            )
        # spread over the step's dims, as for one output: the dims sum to the step's score
        attributions[:, keep] = (found.detach().to(x.dtype) / x.shape[-1]).expand(
            len(steps), len(keep), x.shape[-1]
        )
    if held is not None:  # the padding's share of its feature group is not its own
        attributions[:, ~held] = 0.0
    if causal:
        attributions = _mask_future(attributions, steps)
    return OutputsResult(attributions, causal=causal)


def _reads_padding(seq, ids, x, length, keep, steps, cut_steps, classes, width) -> bool:
    """Whether the explained outputs of one sequence change when its padding is cut out."""
    with torch.no_grad():
        full = seq(x, length, ids)
        cut = seq(x[:, keep], length, None if ids is None else ids[:, keep])
    columns, cut_columns = steps * width + classes, cut_steps * width + classes
    if int(cut_columns.max()) >= cut.shape[-1]:
        return True
    return not torch.allclose(cut[:, cut_columns], full[:, columns], rtol=1e-4, atol=1e-5)


def _integrated_gradients(
    seq, ids, x, baseline, length, real, steps, columns, width, causal, **options
):
    """IG of every output; with ``max_steps`` (or ``rtol``/``atol``) given, the outputs
    whose completeness gap is above ``rtol * |F(x) - F(baseline)| + atol`` are integrated
    again with twice the steps, up to ``max_steps``, as one-output IG does. Without them
    the steps stay fixed at ``n_steps``."""
    unknown = sorted(set(options) - set(_IG_OPTIONS))
    if unknown:
        raise TypeError(
            f"integrated_gradients over several outputs takes options {list(_IG_OPTIONS)}, "
            f"got {unknown}"
        )
    n_steps = check_int("n_steps", options.get("n_steps", 50), 2)
    adaptive = any(k in options for k in ("max_steps", "rtol", "atol"))
    max_steps = check_int("max_steps", options.get("max_steps", 400 if adaptive else n_steps),
                          n_steps)  # fmt: skip
    rtol = check_float("rtol", options.get("rtol", 0.05), 0.0)
    atol = check_float("atol", options.get("atol", 1e-3), 0.0)
    method = options.get("method", "gausslegendre")
    rows = torch.arange(len(columns), device=steps.device)
    result = _ig_fixed(seq, ids, x, baseline, length, steps, columns, width, causal, n_steps,
                       method)  # fmt: skip
    attributions, delta = result.attributions, result.delta
    used = torch.full((len(columns),), n_steps, dtype=torch.long)
    todo, current = rows, n_steps
    while current < max_steps:
        difference = attributions[todo].double().sum(dim=(1, 2)) - delta[todo]
        todo = todo[delta[todo].abs() > rtol * difference.abs() + atol]
        if not len(todo):
            break
        current = min(current * 2, max_steps)
        again = _ig_fixed(seq, ids, x, baseline, length, steps[todo], columns[todo], width,
                          causal, current, method)  # fmt: skip
        attributions[todo], delta[todo], used[todo.cpu()] = again.attributions, again.delta, current
    return OutputsResult(attributions, delta, used, result.causal)


@functools.cache
def _integration_rule(method: str, n_steps: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Captum's step sizes and alphas (Gauss-Legendre nodes cost ~1 ms to compute)."""
    step_sizes_func, alphas_func = approximation_parameters(method)
    return tuple(step_sizes_func(n_steps)), tuple(alphas_func(n_steps))


def _ig_fixed(seq, ids, x, baseline, length, steps, columns, width, causal, n_steps, method):
    step_sizes, alphas = _integration_rule(method, n_steps)
    sizes = torch.tensor(step_sizes).float().to(x.device)
    alphas = torch.tensor(alphas, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    with torch.no_grad():
        ends = seq(torch.cat([x, baseline]), length.repeat(2), _repeat(ids, 2))[:, columns]
    difference = (ends[0] - ends[1]).double()
    order = torch.argsort(steps, stable=True)
    blocks = [order]
    if causal:
        blocks = [b for b in order.tensor_split(min(_BLOCKS, len(order))) if len(b)]
        causal = _prefix_agrees(seq, ids, x, length, steps, columns, width, blocks[0], ends[0])
        if not causal:
            blocks = [order]
    attributions = torch.zeros((len(columns), *x.shape[1:]), dtype=x.dtype, device=x.device)
    for block in blocks:
        end = int(steps[block].max()) + 1 if causal else x.shape[1]
        block_columns = columns[block]
        scaled = (baseline[:, :end] + alphas * (x[:, :end] - baseline[:, :end])).requires_grad_()
        prefix_length = _prefix_length(seq, ids, length, end)
        out = seq(scaled, prefix_length.repeat(n_steps), _repeat(_cut(ids, end), n_steps))
        chosen = out[:, block_columns]
        # several outputs' backward passes at once (vmapped), in chunks bounding memory
        for rows, (grads,) in output_gradients(chosen, (scaled,)):
            total = (grads * sizes.view(1, -1, 1, 1)).sum(dim=1)  # (k, end, dim)
            attributions[block[rows], :end] = total * (x[0, :end] - baseline[0, :end])
        del out, chosen, scaled
    if causal:
        attributions = _mask_future(attributions, steps)
    delta = attributions.double().sum(dim=(1, 2)) - difference
    return OutputsResult(attributions.detach(), delta.detach(), n_steps, causal)


def _repeat(ids: Tensor | None, n: int) -> Tensor | None:
    return None if ids is None else ids.repeat(n, 1)


def _cut(ids: Tensor | None, end: int) -> Tensor | None:
    return None if ids is None else ids[:, :end]


def _prefix_length(seq, ids, length, end) -> Tensor:
    if ids is not None:
        return seq.padding_mask(ids[:, :end]).sum(dim=1)
    return length.clamp(max=end)


def _prefix_agrees(seq, ids, x, length, steps, columns, width, block, full) -> bool:
    """Check on the input itself that the shortest prefix gives the first block's outputs
    as the whole sequence does (the model really is causal)."""
    end = int(steps[block].max()) + 1
    with torch.no_grad():
        out = seq(x[:, :end], _prefix_length(seq, ids, length, end), _cut(ids, end))
    if out.shape[1] != end * width:
        return False
    return bool(torch.allclose(out[0, columns[block]], full[block], rtol=1e-5, atol=1e-6))
