"""Attention explanations as Captum attributions.

Four :class:`captum.attr.Attribution` subclasses, each returning one score per input
position ``(batch, time)`` for the model's pooled output, exactly 0 at padding:

* :class:`AttentionWeights`: one layer's attention (head-fused) as read by the output;
* :class:`AttentionRollout`: attention rollout through all layers (Abnar and Zuidema, 2020);
* :class:`AttentionFlow`: attention flow, exact max-flow (Abnar and Zuidema, 2020);
* :class:`GradientAttentionRollout`: gradient-weighted rollout (Chefer, Gur and Wolf,
  ICCV 2021): ``R = I``, then per layer ``R = R + mean_heads((grad * A)^+) R``.

Where the attention comes from, in this order:

0. ``attention_modules=[...]`` given to the class: the user's own attention modules
   (see below); the model is then run through the model contract
   (:func:`captum_rnn.adapt`), so ``inputs`` are batch-first ``(batch, time)`` ids (or
   features) whatever the model's own layout;
1. :class:`~captum_rnn.models.transformer.AttentionTap` modules (``TransformerClassifier``);
2. the attention pooling layer of a captum-rnn recurrent model (``attention="additive"``
   or ``"dot"``);
3. every ``nn.MultiheadAttention`` of any other model, including those inside
   ``nn.TransformerEncoderLayer``: forward hooks make the call return per-head weights
   (``need_weights=True, average_attn_weights=False``) and PyTorch's fused fast path is
   switched off for the call (it skips the attention module). Their
   ``key_padding_mask`` tells which positions are padding.

Custom attention modules (``attention_modules=``), one entry per module, each:

* ``"decoder.attention"``: the module's output is the weights (a tensor; or a tuple of
  which exactly one tensor sums to 1 over its last dimension);
* ``("decoder.attention", "output")``: the same, said explicitly;
* ``("attn", 1)``: item 1 of the tuple the module returns (``(context, weights)``);
* ``("attn", "weights_attr_name")``: the attribute the module stores them in during
  its forward (read right after each call).

The weights may be ``(batch, time)`` (bentrevett's ``Attention``), ``(batch, 1, time)``,
``(batch, time, 1)``, the time-major ``(time, batch)`` / ``(time, batch, 1)`` (read as
batch-first when ``batch == time``), ``(batch, time, time)`` self-attention or
``(batch, heads, query, time)``. Padding is told by the contract (the padding id and
the lengths), and the result is ``(batch, time)``, one relevance per input position,
exactly 0 at padding. A module called several times in one forward (a decoder step
loop) gives one attention call per call. The contract's hints (``pad_id``,
``batch_first``, ``lengths_arg``, ...) are keywords of the classes.

In every case a row that is all padding is a ``ValueError`` naming the row.

Hooks are removed, the fast-path flag and ``model.attention_maps`` restored, in
``finally``. Gradient paths run inside :func:`captum_rnn.gradient_context`.

Which output position is explained (``position``): ``"mean"`` (the mean of the real
positions' rows, what a mean-pooled classifier reads), ``"first"`` (a classification
token at position 0), ``"last"`` (the last real position) or an int. ``None`` follows
the model's ``pooling`` attribute, else ``"mean"``. A last attention layer with a
single query (attention pooling) is itself the output's row and is used as is.

Attention RNNs. A captum-rnn recurrent model with attention has one attention layer,
and its single query (the pooled output) reads recurrent *states*, not tokens: state
``t`` has read tokens ``1..t`` (and ``t..T`` backwards). There is no residual path from
the output to a state, so rollout and flow over that one layer equal its attention
weights, read as if state ``t`` were token ``t``. To map through the recurrent states
to tokens, pass ``through_states=True``: every state's contribution to the target
output (``grad_pooled . h_t``) is attributed to the tokens by gradient x input, the
absolute values of each state's row are normalised to sum to 1, and the attention
over states is multiplied by that state-to-token matrix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from captum.attr import Attribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_rnn._utils.grad import gradient_context
from captum_rnn._utils.targets import resolve_target
from captum_rnn.attr._methods import AttributionMethod, MethodResult
from captum_rnn.attr._rollout import (
    DEFAULT_MAX_FLOW_COST,
    flow_cost,
    flow_from_fused,
    fuse_attention,
)
from captum_rnn.models.protocol import SequenceModel, adapt, readable_module
from captum_rnn.models.recurrent import RecurrentModel
from captum_rnn.models.transformer import AttentionTap, TransformerClassifier

__all__ = [
    "AttentionFlow",
    "AttentionRollout",
    "AttentionWeights",
    "GradientAttentionRollout",
    "capture_attention",
]

_MHA_ARGS = (
    "query",
    "key",
    "value",
    "key_padding_mask",
    "need_weights",
    "attn_mask",
    "average_attn_weights",
    "is_causal",
)
_POSITIONS = ("mean", "first", "last")
_MISSING = object()


# ------------------------------------------------------------------------- capture
@dataclass
class _Record:
    """One attention call: ``grad_tensor`` is in the autograd graph, ``weights`` is it
    viewed as ``(batch, heads, query, key)``."""

    grad_tensor: Tensor
    weights: Tensor
    #: maps a gradient of ``grad_tensor`` to ``weights``' layout (default: a reshape)
    view: Any = None


@dataclass
class _Capture:
    output: Any
    records: list[_Record]
    key_mask: Tensor | None = None  # (batch, key), True at real positions


def _parse_attention_modules(model: nn.Module, entries: Any) -> list[tuple[str, nn.Module, Any]]:
    """``attention_modules`` as ``[(name, module, spec)]``; spec: ``"output"``, int or str."""
    if isinstance(entries, (str, tuple)):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            "attention_modules must be a non-empty list of module names or (name, spec) "
            f"pairs, got {entries!r}"
        )
    named = dict(model.named_modules())
    parsed = []
    for entry in entries:
        if isinstance(entry, str):
            name, spec = entry, "output"
        elif isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str):
            name, spec = entry
        else:
            raise ValueError(
                f"attention_modules entry {entry!r}: expected 'name', (name, 'output'), "
                "(name, index of the returned tuple) or (name, 'attribute_name')"
            )
        if isinstance(spec, bool) or not isinstance(spec, (str, int)) or spec == "":
            raise ValueError(
                f"attention_modules entry {entry!r}: the spec must be 'output', an int "
                "index or an attribute name"
            )
        if name not in named or name == "":
            raise ValueError(
                f"attention_modules: the model has no submodule {name!r}; known: "
                f"{sorted(n for n in named if n)[:20]}"
            )
        parsed.append((name, named[name], spec))
    return parsed


def _pick_weights(out: Any, name: str) -> Any:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)):
        found = [
            x
            for x in out
            if isinstance(x, Tensor)
            and x.is_floating_point()
            and x.numel() > 0
            and torch.allclose(
                x.detach().sum(-1).float(), torch.ones((), device=x.device), atol=1e-4
            )
        ]
        if len(found) == 1:
            return found[0]
    raise ValueError(
        f"attention module {name!r} returned {type(out).__name__}: say which item holds the "
        f"weights, e.g. attention_modules=[({name!r}, 1)], or the attribute that stores them"
    )


def _custom_record(value: Any, name: str, batch: int, time: int) -> _Record:
    """A custom module's weights as ``(batch, heads, query, time)``."""
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(
            f"attention module {name!r} gave {type(value).__name__}, not floating-point weights"
        )
    shape = tuple(value.shape)

    def rec(view: Any) -> _Record:
        return _Record(value, view(value), view)

    if value.dim() == 2 or (value.dim() == 3 and shape[-1] == 1):
        if shape[:2] == (batch, time):
            return rec(lambda w: w.reshape(batch, time)[:, None, None, :])
        if shape[:2] == (time, batch):
            return rec(lambda w: w.reshape(time, batch).transpose(0, 1)[:, None, None, :])
    if value.dim() == 3 and shape[0] == batch and shape[-1] == time:
        return rec(lambda w: w[:, None])
    if value.dim() == 4 and shape[0] == batch and shape[-1] == time:
        return rec(lambda w: w)
    raise ValueError(
        f"attention module {name!r} gave weights of shape {tuple(value.shape)}; expected "
        f"(batch, time) = ({batch}, {time}), (batch, 1, time), (batch, time, 1), the "
        "time-major (time, batch[, 1]), (batch, time, time) or (batch, heads, query, time)"
    )


def _sources(model: nn.Module) -> tuple[str, list[nn.Module]]:
    taps = [m for m in model.modules() if isinstance(m, AttentionTap)]
    if taps:
        return "tap", taps
    if isinstance(model, RecurrentModel):
        if model.attention is None:
            raise ValueError(
                "model has no attention layer (it was built with attention=None); "
                "build it with attention='additive' or 'dot', or use a gradient method"
            )
        return "recurrent", [model.attention]
    mhas = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if mhas:
        return "mha", mhas
    raise TypeError(
        f"model ({type(model).__name__}) has no attention captum-rnn can read: expected "
        "AttentionTap modules (TransformerClassifier), a captum-rnn recurrent model with "
        "attention, or nn.MultiheadAttention / nn.TransformerEncoderLayer modules (for "
        "Seq2SeqAttention read model.attention_maps, and use Captum with model.step_function)"
    )


def _as_args(additional_forward_args: Any) -> tuple:
    if additional_forward_args is None:
        return ()
    if isinstance(additional_forward_args, tuple):
        return additional_forward_args
    return (additional_forward_args,)


def capture_attention(
    model: nn.Module, inputs: Tensor, additional_forward_args: Any = None
) -> tuple[Any, list[Tensor], Tensor | None]:
    """Run ``model(inputs, *additional_forward_args)`` and return its per-head attention.

    Works on captum-rnn models and on any model built from ``nn.MultiheadAttention`` or
    ``nn.TransformerEncoderLayer`` (see the module docstring). Hooks are always removed.
    Gradients flow to the returned maps when grad mode is on.

    Args:
        model: the model.
        inputs: its first forward argument.
        additional_forward_args: further positional forward arguments.

    Returns:
        ``(output, maps, key_mask)``: the model output, one ``(batch, heads, query, key)``
        tensor per attention call (input-side first), and a ``(batch, key)`` boolean mask
        of real positions when the model passed a ``key_padding_mask``, else ``None``.

    Example:
        >>> layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
        >>> _, maps, _ = capture_attention(layer, torch.randn(3, 5, 8))
        >>> maps[0].shape
        torch.Size([3, 2, 5, 5])
    """
    kind, modules = _sources(model)
    capture = _capture(model, kind, modules, inputs, _as_args(additional_forward_args))
    return capture.output, [r.weights for r in capture.records], capture.key_mask


def _capture_custom(
    seq: SequenceModel, entries: list[tuple[str, nn.Module, Any]], inputs: Tensor, lengths: Any
) -> _Capture:
    """Run ``seq(inputs, lengths)`` recording the user's attention modules' weights."""
    raw: list[tuple[str, Any]] = []
    handles = []

    def hook(name: str, spec: Any) -> Any:
        def record(module: nn.Module, args: Any, out: Any) -> None:
            if spec == "output":
                value = _pick_weights(out, name)
            elif isinstance(spec, int):
                if not isinstance(out, (tuple, list)) or not -len(out) <= spec < len(out):
                    raise ValueError(
                        f"attention_modules: ({name!r}, {spec}) indexes the module's output, "
                        f"which is a {type(out).__name__}"
                        + (f" of {len(out)} items" if isinstance(out, (tuple, list)) else "")
                    )
                value = out[spec]
            else:
                value = getattr(module, spec, _MISSING)
                if value is _MISSING:
                    raise ValueError(
                        f"attention_modules: module {name!r} has no attribute {spec!r} after "
                        "its forward"
                    )
            raw.append((name, value))

        return record

    try:
        for name, module, spec in entries:
            handles.append(module.register_forward_hook(hook(name, spec)))
        output = seq(inputs, lengths)
    finally:
        for handle in handles:
            handle.remove()
    if not raw:
        names = [name for name, _, _ in entries]
        raise RuntimeError(f"the forward pass called none of the attention modules {names}")
    batch, time = inputs.shape[0], inputs.shape[1]
    return _Capture(output, [_custom_record(v, n, batch, time) for n, v in raw])


def _capture(
    model: nn.Module, kind: str, modules: list[nn.Module], inputs: Tensor, args: tuple
) -> _Capture:
    records: list[_Record] = []
    key_masks: list[Tensor] = []
    handles = []

    def tap_hook(module: nn.Module, inp: Any, out: Tensor) -> None:
        records.append(_Record(out, out))

    def pooling_hook(module: nn.Module, inp: Any, out: Any) -> None:
        weights = out[1]
        records.append(_Record(weights, weights[:, None, None, :]))

    def mha_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs = dict(kwargs)
        for name, value in zip(_MHA_ARGS[3:], args[3:], strict=False):
            kwargs[name] = value
        kwargs["need_weights"] = True
        kwargs["average_attn_weights"] = False
        if kwargs.get("is_causal") and kwargs.get("attn_mask") is not None:
            kwargs["is_causal"] = False  # the mask already says it; the weights path needs that
        if kwargs.get("key_padding_mask") is not None and not key_masks:
            key_masks.append(kwargs["key_padding_mask"])
        return tuple(args[:3]), kwargs

    def mha_hook(module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        weights = out[1]
        if weights.dim() == 3:  # unbatched call
            weights = weights[None]
        base = weights._base
        # MultiheadAttention returns a view of the tensor it multiplied with the values.
        usable = base is not None and base.numel() == weights.numel() and base.is_contiguous()
        records.append(_Record(base if usable else weights, weights))

    fast_path = torch.backends.mha.get_fastpath_enabled()
    try:
        for module in modules:
            if kind == "tap":
                handles.append(module.register_forward_hook(tap_hook))
            elif kind == "recurrent":
                handles.append(module.register_forward_hook(pooling_hook))
            else:
                handles.append(module.register_forward_pre_hook(mha_pre_hook, with_kwargs=True))
                handles.append(module.register_forward_hook(mha_hook, with_kwargs=True))
        if kind == "mha":
            torch.backends.mha.set_fastpath_enabled(False)
        output = model(inputs, *args)
    finally:
        for handle in handles:
            handle.remove()
        torch.backends.mha.set_fastpath_enabled(fast_path)
    if not records:
        raise RuntimeError(
            f"the forward pass of {type(model).__name__} called none of its attention modules"
        )
    key_mask = None
    if key_masks:
        kpm = key_masks[0]
        key_mask = ~kpm if kpm.dtype == torch.bool else ~torch.isneginf(kpm)
    return _Capture(output, records, key_mask)


# ------------------------------------------------------------------------- helpers
def _check_inputs(inputs: Any) -> Tensor:
    if isinstance(inputs, tuple) and len(inputs) == 1:
        inputs = inputs[0]
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dim() < 2 or inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(
            f"inputs must be (batch, time) token ids or (batch, time, features), "
            f"non-empty, got shape {tuple(inputs.shape)}"
        )
    return inputs


def _split_layers(records: list[_Record]) -> tuple[list[int], int | None, int]:
    """Indices of the square (self-attention) records, of a final pooling record, and T."""
    time = records[0].weights.shape[-1]
    square, pooled = [], None
    for i, record in enumerate(records):
        w = record.weights
        if w.dim() != 4 or w.shape[-1] != time:
            raise ValueError(
                f"attention call {i} gave weights of shape {tuple(w.shape)}; expected "
                f"(batch, heads, query, {time}) like the first call"
            )
        if w.shape[-2] == time:
            square.append(i)
        elif w.shape[-2] == 1 and i == len(records) - 1:
            pooled = i
        else:
            raise ValueError(
                f"attention call {i} has {w.shape[-2]} queries over {time} keys: only "
                "self-attention layers and a final single-query pooling layer are "
                "supported (for cross-attention see Seq2SeqAttention)"
            )
    return square, pooled, time


def _given_lengths(args: tuple) -> Tensor | None:
    first = args[0] if args else None
    if isinstance(first, Tensor) and first.dim() == 1 and not first.dtype.is_floating_point:
        return first
    return None


def _contract_mask(
    seq: SequenceModel,
    inputs: Tensor,
    args: tuple,
    time: int,
    device: torch.device,
    native: bool = False,
) -> Tensor | None:
    """``(batch, time)`` True at real positions from the lengths or the padding id;
    ``native``: ``inputs`` are in the model's own layout (time-major ids are transposed)."""
    lengths = _given_lengths(args)
    if lengths is not None:
        return torch.arange(time, device=device)[None, :] < lengths.to(device)[:, None]
    if seq.is_token_model and not inputs.dtype.is_floating_point and inputs.dim() == 2:
        ids = seq.to_batch_first(inputs) if native else inputs
        return seq.padding_mask(ids).to(device)
    return None


def _check_rows(mask: Tensor) -> Tensor:
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"row {empty[0]} of the batch is all padding (no real position)"
            + (f"; so are rows {empty[1:]}" if len(empty) > 1 else "")
            + ": every sequence needs at least one real token"
        )
    return mask


def _checked_mask(mask: Any, batch: int, time: int, device: torch.device) -> Tensor:
    mask = torch.as_tensor(mask, device=device)
    if mask.shape != (batch, time):
        raise ValueError(f"mask must have shape ({batch}, {time}), got {tuple(mask.shape)}")
    if mask.dtype.is_floating_point:
        raise TypeError(f"mask must be boolean (True at real positions), got {mask.dtype}")
    return _check_rows(mask.bool())


def _real_mask(
    seq: SequenceModel | None,
    inputs: Tensor,
    args: tuple,
    mask: Any,
    capture: _Capture,
    batch: int,
    time: int,
    contract: bool = False,
) -> Tensor:
    device = capture.records[0].weights.device
    found = None
    if mask is not None:
        return _checked_mask(mask, batch, time, device)
    if seq is not None and (contract or seq.takes_lengths):
        found = _contract_mask(seq, inputs, args, time, device, native=not contract)
        if found is None:
            found = torch.ones(batch, time, dtype=torch.bool, device=device)
    elif capture.key_mask is not None:
        found = capture.key_mask.to(device)
    else:
        found = torch.ones(batch, time, dtype=torch.bool, device=device)
    return _check_rows(found)


def _row_weights(
    position: Any, model: nn.Module, mask: Tensor, dtype: torch.dtype, required: bool = False
) -> Tensor:
    """``(batch, T)`` weights over output rows for the explained position; ``required``:
    no default for a model whose pooling captum-rnn cannot read (a user's transformer)."""
    if position is None and required and not isinstance(model, TransformerClassifier):
        raise ValueError(
            f"which position's attention does {type(model).__name__}'s output read? pass "
            "position='mean' (mean pooling over the real positions), 'first' (a "
            "classification token), 'last' (the last real position) or an int, e.g. "
            "explain(model, inputs, method='attention_rollout', position='mean')"
        )
    if position is None:
        position = model.pooling if isinstance(model, TransformerClassifier) else "mean"
        if position not in _POSITIONS:
            position = "mean"
    batch, time = mask.shape
    real = mask.to(dtype)
    if isinstance(position, str):
        if position not in _POSITIONS:
            raise ValueError(f"position must be one of {_POSITIONS} or an int, got {position!r}")
        if position == "mean":
            return real / real.sum(dim=1, keepdim=True)
        if position == "first":
            index = torch.zeros(batch, dtype=torch.long, device=mask.device)
        else:
            steps = torch.arange(time, device=mask.device)
            index = torch.where(mask, steps, -1).amax(dim=1)
    else:
        if isinstance(position, bool) or not isinstance(position, int):
            raise TypeError(f"position must be a str or an int, got {type(position).__name__}")
        if not -time <= position < time:
            raise ValueError(f"position must be in [0, {time}), got {position}")
        index = torch.full((batch,), position % time, dtype=torch.long, device=mask.device)
    if not bool(mask.gather(1, index[:, None]).all()):
        raise ValueError(f"position {position!r} is padding in some sequence of the batch")
    return torch.zeros(batch, time, dtype=dtype, device=mask.device).scatter_(
        1, index[:, None], 1.0
    )


def _fuse_heads(weights: Tensor, head_fusion: str) -> Tensor:
    if head_fusion == "mean":
        return weights.mean(dim=1)
    if head_fusion == "max":
        return weights.amax(dim=1)
    if head_fusion == "min":
        return weights.amin(dim=1)
    raise ValueError(f"head_fusion must be one of ('mean', 'max', 'min'), got {head_fusion!r}")


def _pooled_row(weights: Tensor, head_fusion: str, mask: Tensor) -> Tensor:
    """A single-query pooling layer as a row-stochastic ``(batch, T)`` over real positions."""
    row = _fuse_heads(weights, head_fusion)[:, 0] * mask.to(weights.dtype)
    total = row.sum(dim=-1, keepdim=True)
    return row / torch.where(total > 0, total, torch.ones_like(total))


def _resolve_target(output: Any, target: Any) -> Tensor:
    """The summed selected outputs, a scalar to differentiate."""
    if not isinstance(output, Tensor):
        raise TypeError(f"the model must return a tensor, got {type(output).__name__}")
    if output.dim() == 1:
        output = output[:, None]
    if output.dim() != 2:
        raise ValueError(
            f"the model output must be (batch, outputs), got {tuple(output.shape)}; "
            "for sequence outputs wrap the model to return one step"
        )
    index = resolve_target(target, output, classifier=True)
    return output.gather(1, index.long()[:, None]).sum()


def _state_token_map(
    model: nn.Module, inputs: Tensor, mask: Tensor, target: Any, args: tuple
) -> Tensor:
    """Row-stochastic ``(batch, states, tokens)``: each state's target contribution,
    attributed to the tokens by |gradient x input|. Call inside ``gradient_context``."""
    if not isinstance(model, RecurrentModel) or model.attention is None:
        raise ValueError(
            "through_states=True needs a captum-rnn recurrent model with attention "
            f"(RNNClassifier(..., attention='additive')), got {type(model).__name__}"
        )
    if model.is_token_model and not inputs.dtype.is_floating_point:
        embedded = model.embedding(inputs)
    else:
        embedded = inputs
    embedded = embedded.detach().clone().requires_grad_(True)
    lengths = mask.sum(dim=1)
    boxes: dict[str, Tensor] = {}
    handles = [
        model.step_states.register_forward_hook(lambda m, i, o: boxes.__setitem__("states", o)),
        model.representation.register_forward_hook(lambda m, i, o: boxes.__setitem__("pooled", o)),
    ]
    try:
        output = model(embedded, lengths, *args[1:])
    finally:
        for handle in handles:
            handle.remove()
    score = _resolve_target(output, target)
    direction = torch.autograd.grad(score, boxes["pooled"], retain_graph=True)[0].detach()
    contribution = (boxes["states"] * direction[:, None, :]).sum(dim=-1)  # (batch, states)
    batch, time = mask.shape
    mapping = torch.zeros(batch, time, time, dtype=embedded.dtype, device=embedded.device)
    live = mask.any(dim=0).nonzero().flatten().tolist()
    for n, t in enumerate(live):
        grad = torch.autograd.grad(
            contribution[:, t].sum(), embedded, retain_graph=n < len(live) - 1
        )[0]
        mapping[:, t] = (grad * embedded.detach()).sum(dim=-1).abs()
    real = (mask[:, :, None] & mask[:, None, :]).to(mapping.dtype)
    mapping = mapping * real
    total = mapping.sum(dim=-1, keepdim=True)
    return mapping / torch.where(total > 0, total, torch.ones_like(total))


#: The arguments that the attention attributions' ``attribute`` methods document alike;
#: :func:`_documented` puts them where a docstring line reads ``{inputs}`` or ``{where}``.
_SHARED_ARGS = {
    "inputs": """\
inputs: the model's first forward argument (token ids or embedded input).
target: unused (attention does not depend on it) unless ``through_states``.
additional_forward_args: further forward arguments (e.g. ``(lengths,)``).""",
    "where": """\
position: the output position explained (see the module docstring).
mask: ``(batch, time)`` True at real positions; default from the model.
through_states: attention RNNs only: map states to tokens (module docstring).""",
}


def _documented(method: Any) -> Any:
    """Fill the ``{inputs}`` / ``{where}`` lines of ``method``'s docstring from
    ``_SHARED_ARGS``, at the line's indentation, so that ``help()`` shows every argument."""

    def fill(match: re.Match) -> str:
        indent = match.group(1)
        return "\n".join(indent + line for line in _SHARED_ARGS[match.group(2)].splitlines())

    if method.__doc__:  # None under python -OO
        method.__doc__ = re.sub(r"^( *)\{(\w+)\}$", fill, method.__doc__, flags=re.MULTILINE)
    return method


# ------------------------------------------------------------------------- classes
class _AttentionAttribution(Attribution):
    """Shared plumbing: capture, masks, output rows, restoring the model."""

    uses_gradients: ClassVar[bool] = False
    #: True: the model runs through the contract (``self.seq``) on batch-first inputs,
    #: as ``explain`` runs a user's model; False: it is called as is, in its own layout.
    _contract: bool = False

    def __init__(
        self,
        model: nn.Module,
        attention_modules: Any = None,
        **hints: Any,
    ) -> None:
        model, seq = readable_module(model, **hints)
        self.seq = seq
        self.attention_modules = None
        if attention_modules is not None:
            if seq is None:
                seq = self.seq = adapt(model)  # the error names the hint to pass
            self.attention_modules = _parse_attention_modules(model, attention_modules)
        super().__init__(model)
        self.model = model

    def _explain(
        self,
        inputs: Any,
        target: Any,
        additional_forward_args: Any,
        mask: Any,
        through_states: bool,
        compute: Any,
    ) -> Tensor:
        inputs = _check_inputs(inputs)
        args = _as_args(additional_forward_args)
        if self.attention_modules is not None:
            kind, modules = "custom", []
        else:
            kind, modules = _sources(self.model)
        if through_states and kind != "recurrent":
            raise ValueError(
                "through_states=True maps attention over recurrent states to tokens; "
                f"{type(self.model).__name__} attends over tokens already"
            )
        contract = kind == "custom" or self._contract
        self._check_padding_rows(inputs, args, mask, contract)
        saved_maps = vars(self.model).get("attention_maps", _MISSING)

        def run(inputs: Tensor, args: tuple) -> _Capture:
            if kind == "custom":
                if len(args) > 1 or (args and _given_lengths(args) is None):
                    raise ValueError(
                        "with attention_modules the model runs through the model contract: "
                        "additional_forward_args may only be (lengths,)"
                    )
                return _capture_custom(
                    self.seq, self.attention_modules, inputs, _given_lengths(args)
                )
            return _capture(self.seq if contract else self.model, kind, modules, inputs, args)

        try:
            if self.uses_gradients or through_states:
                with gradient_context(self.model) as ctx:
                    inputs, args = ctx.prepare(inputs), ctx.prepare(args)
                    if inputs.dtype.is_floating_point and not inputs.requires_grad:
                        # A graph to the attention even when the parameters are frozen.
                        inputs = inputs.detach().requires_grad_(True)
                    capture = run(inputs, args)
                    result, mask = self._finish(
                        compute, capture, inputs, args, mask, target, through_states, kind
                    )
            else:
                with torch.no_grad():
                    capture = run(inputs, args)
                    result, mask = self._finish(
                        compute, capture, inputs, args, mask, target, through_states, kind
                    )
        finally:
            if saved_maps is not _MISSING:
                self.model.attention_maps = saved_maps
        return (result * mask.to(result.dtype)).detach()

    def _check_padding_rows(self, inputs: Tensor, args: tuple, mask: Any, contract: bool) -> None:
        """All-padding rows are refused before the model runs (it may fail or give NaN)."""
        seq = self.seq
        view = inputs if contract or seq is None else seq.to_batch_first(inputs)
        batch, time = view.shape[0], view.shape[1]
        if mask is not None:
            _checked_mask(mask, batch, time, inputs.device)
            return
        if seq is not None and (contract or seq.takes_lengths):
            found = _contract_mask(seq, inputs, args, time, inputs.device, native=not contract)
            if found is not None and found.shape == (batch, time):
                _check_rows(found)

    def _finish(
        self,
        compute: Any,
        capture: _Capture,
        inputs: Tensor,
        args: tuple,
        mask: Any,
        target: Any,
        through_states: bool,
        kind: str = "",
    ) -> tuple[Tensor, Tensor]:
        square, pooled, time = _split_layers(capture.records)
        batch = capture.records[0].weights.shape[0]
        if kind == "custom" and mask is None:
            found = _contract_mask(self.seq, inputs, args, time, capture.records[0].weights.device)
            if found is None:
                found = torch.ones(batch, time, dtype=torch.bool, device=inputs.device)
            mask = found
        contract = kind == "custom" or self._contract
        mask = _real_mask(self.seq, inputs, args, mask, capture, batch, time, contract)
        scores = compute(capture, square, pooled, mask, target)
        if through_states:
            mapping = _state_token_map(self.model, inputs, mask, target, args)
            scores = torch.bmm(scores[:, None, :].to(mapping.dtype), mapping)[:, 0]
        return scores, mask


class AttentionWeights(_AttentionAttribution):
    """The attention weights of one layer as read by the explained output position.

    For a self-attention layer this is the head-fused row of the output position (or
    the mean of the real rows); for an attention-pooling layer (attention RNNs) it is
    the pooling weights over the states.

    Args:
        model: a captum-rnn attention model, or any model whose attention runs through
            ``nn.MultiheadAttention`` (see the module docstring).

    Example:
        >>> from captum_rnn.models import TransformerClassifier
        >>> model = TransformerClassifier(2, vocab_size=20).eval()
        >>> AttentionWeights(model).attribute(torch.tensor([[4, 5, 6, 0]])).shape
        torch.Size([1, 4])
    """

    @log_usage()
    @_documented
    def attribute(
        self,
        inputs: Tensor,
        target: Any = None,
        additional_forward_args: Any = None,
        *,
        layer: int = -1,
        head_fusion: str = "mean",
        position: str | int | None = None,
        mask: Tensor | None = None,
        through_states: bool = False,
    ) -> Tensor:
        """Return the attention of one layer over the input positions, ``(batch, time)``.

        Args:
            {inputs}
            layer: which attention call, in forward order (default the last one).
            head_fusion: ``"mean"``, ``"max"`` or ``"min"`` over heads.
            {where}

        Returns:
            ``(batch, time)``; 0 at padding.
        """

        def compute(capture, square, pooled, mask, target):
            records = capture.records
            if (
                isinstance(layer, bool)
                or not isinstance(layer, int)
                or not -len(records) <= layer < len(records)
            ):
                raise ValueError(f"layer must be in [-{len(records)}, {len(records)}), got {layer}")
            fused = _fuse_heads(records[layer].weights, head_fusion)
            if layer % len(records) == pooled:
                return fused[:, 0]
            rows = _row_weights(position, self.model, mask, fused.dtype, self._contract)
            return torch.bmm(rows[:, None, :], fused)[:, 0]

        return self._explain(inputs, target, additional_forward_args, mask, through_states, compute)


class AttentionRollout(_AttentionAttribution):
    """Attention rollout (Abnar and Zuidema, 2020) of the explained output position.

    The self-attention layers are rolled out with
    :func:`~captum_rnn.attr.attention_rollout` (heads fused, padding cut out, residual
    ``0.5 A + 0.5 I``, ``R = A_L ... A_1``); the explained row is then read off, or a
    final attention-pooling layer is applied to ``R`` as the output's row. On a
    one-layer attention RNN this equals the attention weights (module docstring).

    Args:
        model: a captum-rnn attention model or a model built from ``nn.MultiheadAttention``.

    Example:
        >>> from captum_rnn.models import TransformerClassifier
        >>> model = TransformerClassifier(2, vocab_size=20).eval()
        >>> scores = AttentionRollout(model).attribute(torch.tensor([[4, 5, 6, 0]]))
        >>> scores.shape, round(float(scores.sum()), 4), float(scores[0, 3])
        (torch.Size([1, 4]), 1.0, 0.0)
    """

    @log_usage()
    @_documented
    def attribute(
        self,
        inputs: Tensor,
        target: Any = None,
        additional_forward_args: Any = None,
        *,
        head_fusion: str = "mean",
        discard_ratio: float = 0.0,
        residual: bool = True,
        position: str | int | None = None,
        mask: Tensor | None = None,
        through_states: bool = False,
    ) -> Tensor:
        """Return the rollout relevance of each input position, ``(batch, time)``.

        Args:
            {inputs}
            head_fusion, discard_ratio, residual: as in :func:`attention_rollout`.
            {where}

        Returns:
            ``(batch, time)``, summing to 1 over the real positions; 0 at padding.
        """

        def compute(capture, square, pooled, mask, target):
            records = capture.records
            if square:
                fused = fuse_attention(
                    [records[i].weights for i in square], head_fusion, discard_ratio, residual, mask
                )
                rollout = fused[0]
                for layer in fused[1:]:
                    rollout = torch.bmm(layer, rollout)
            else:
                _check_fusion(head_fusion, discard_ratio)
                rollout = None
            if pooled is not None:
                row = _pooled_row(records[pooled].weights, head_fusion, mask)
            else:
                row = _row_weights(
                    position, self.model, mask, records[0].weights.dtype, self._contract
                )
            if rollout is None:
                return row
            return torch.bmm(row[:, None, :], rollout)[:, 0]

        return self._explain(inputs, target, additional_forward_args, mask, through_states, compute)


class AttentionFlow(_AttentionAttribution):
    """Attention flow (Abnar and Zuidema, 2020) of the explained output position.

    Exact max-flow over the layered attention graph (see
    :func:`~captum_rnn.attr.attention_flow`); only the rows the explained position needs
    are solved (one row for ``"first"`` or an int, all rows for ``"mean"``). A final
    attention-pooling layer becomes one more layer whose single node is the source.

    Args:
        model: a captum-rnn attention model or a model built from ``nn.MultiheadAttention``.

    Example:
        >>> from captum_rnn.models import TransformerClassifier
        >>> model = TransformerClassifier(2, vocab_size=20, num_layers=3).eval()
        >>> AttentionFlow(model).attribute(torch.tensor([[4, 5, 6, 0]])).shape
        torch.Size([1, 4])
    """

    @log_usage()
    @_documented
    def attribute(
        self,
        inputs: Tensor,
        target: Any = None,
        additional_forward_args: Any = None,
        *,
        head_fusion: str = "mean",
        discard_ratio: float = 0.0,
        residual: bool = True,
        position: str | int | None = None,
        mask: Tensor | None = None,
        through_states: bool = False,
        max_cost: float = DEFAULT_MAX_FLOW_COST,
    ) -> Tensor:
        """Return the flow relevance of each input position, ``(batch, time)``.

        Args:
            {inputs}
            head_fusion, discard_ratio, residual, max_cost: as in :func:`attention_flow`.
            {where}

        Returns:
            ``(batch, time)``, summing to 1 over the real positions; 0 at padding.

        Raises:
            ValueError: when the flow problem is larger than ``max_cost`` allows.
        """

        def compute(capture, square, pooled, mask, target):
            records = capture.records
            _check_fusion(head_fusion, discard_ratio)
            dtype = records[0].weights.dtype
            batch, time = mask.shape
            fused = []
            if square:
                fused = fuse_attention(
                    [records[i].weights.detach().double() for i in square],
                    head_fusion,
                    discard_ratio,
                    residual,
                    mask,
                )
            if pooled is not None:
                row = _pooled_row(records[pooled].weights.detach().double(), head_fusion, mask)
                fused.append(row[:, None, :].expand(batch, time, time))
                weights, rows = None, torch.zeros(1, dtype=torch.long, device=mask.device)
            else:
                weights = _row_weights(position, self.model, mask, torch.float64, self._contract)
                rows = weights.abs().sum(dim=0).nonzero().flatten()
            cost = flow_cost(batch * rows.numel() * time, len(fused), time)
            if len(fused) > 2 and cost > max_cost:
                raise ValueError(
                    f"attention flow over {len(fused)} layers x {time} positions for "
                    f"{rows.numel()} output rows and batch {batch} has a work estimate of "
                    f"{cost:.2g}, above max_cost={max_cost:.2g}: it would take minutes. "
                    "Use AttentionRollout, position='first' or an int, shorter inputs, "
                    "or raise max_cost."
                )
            flow = flow_from_fused(fused, rows)  # (batch, rows, T)
            if weights is None:
                return flow[:, 0].to(dtype)
            return torch.bmm(weights[:, None, rows], flow)[:, 0].to(dtype)

        return self._explain(inputs, target, additional_forward_args, mask, through_states, compute)


class GradientAttentionRollout(_AttentionAttribution):
    """Gradient-weighted attention rollout (Chefer, Gur and Wolf, ICCV 2021).

    With ``A_l`` each layer's per-head attention and ``grad_l`` the gradient of the
    target output with respect to it, ``Abar_l = mean_heads((grad_l * A_l)^+)`` (padding
    cut out), ``R = I`` and, input-side layer first, ``R = R + Abar_l R``. The result is
    the explained row of ``R - I``: the relevance that reached the output through
    attention (with one layer, ``Abar`` itself). A final attention-pooling layer is
    applied as ``Abar_pool R``; on a one-layer attention RNN that is
    ``(grad * alpha)^+`` over the states.

    Args:
        model: a captum-rnn attention model or a model built from ``nn.MultiheadAttention``.

    Example:
        >>> from captum_rnn.models import TransformerClassifier
        >>> model = TransformerClassifier(2, vocab_size=20).eval()
        >>> GradientAttentionRollout(model).attribute(torch.tensor([[4, 5, 6]]), target=1).shape
        torch.Size([1, 3])
    """

    uses_gradients = True

    @log_usage()
    @_documented
    def attribute(
        self,
        inputs: Tensor,
        target: Any = None,
        additional_forward_args: Any = None,
        *,
        position: str | int | None = None,
        mask: Tensor | None = None,
        through_states: bool = False,
    ) -> Tensor:
        """Return the gradient-weighted rollout relevance, ``(batch, time)``.

        Args:
            inputs: the model's first forward argument (token ids or embedded input).
            target: the output index to explain: an int, one per sequence, or ``None``
                for the predicted class (the argmax).
            additional_forward_args: further forward arguments (e.g. ``(lengths,)``).
            {where}

        Returns:
            ``(batch, time)``, non-negative; 0 at padding.
        """

        def compute(capture, square, pooled, mask, target):
            records = capture.records
            score = _resolve_target(capture.output, target)
            tensors = [r.grad_tensor for r in records]
            if not all(t.requires_grad for t in tensors):
                raise RuntimeError(
                    "the attention weights are not part of an autograd graph: the model's "
                    "parameters are frozen and its inputs are token ids; pass embedded "
                    "inputs or unfreeze the parameters"
                )
            try:
                grads = torch.autograd.grad(score, tensors, allow_unused=True)
            except RuntimeError as err:
                raise RuntimeError(
                    "could not differentiate the output with respect to the attention "
                    f"weights ({err}); is the model's output computed from them?"
                ) from err
            real = (mask[:, :, None] & mask[:, None, :]).to(records[0].weights.dtype)
            cams = []
            for record, grad in zip(records, grads, strict=True):
                if grad is None:
                    grad = torch.zeros_like(record.grad_tensor)
                grad = record.view(grad) if record.view else grad.reshape(record.weights.shape)
                cam = (grad * record.weights).clamp_min(0).mean(dim=1).detach()
                if cam.shape[-2] == 1:
                    cams.append(cam * mask[:, None, :].to(cam.dtype))
                else:
                    cams.append(cam * real)
            batch, time = mask.shape
            eye = torch.diag_embed(mask.to(real.dtype))
            relevance = eye
            for i in square:
                relevance = relevance + torch.bmm(cams[i], relevance)
            if pooled is not None:
                return torch.bmm(cams[pooled], relevance)[:, 0]
            rows = _row_weights(position, self.model, mask, relevance.dtype, self._contract)
            return torch.bmm(rows[:, None, :], relevance - eye)[:, 0]

        return self._explain(inputs, target, additional_forward_args, mask, through_states, compute)


def _check_fusion(head_fusion: str, discard_ratio: float) -> None:
    if head_fusion not in ("mean", "max", "min"):
        raise ValueError(f"head_fusion must be one of ('mean', 'max', 'min'), got {head_fusion!r}")
    if isinstance(discard_ratio, bool) or not 0.0 <= float(discard_ratio) < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio!r}")


# ------------------------------------------------------- captum_rnn.explain methods
class _ExplainAttention(AttributionMethod):
    """Runs an attention attribution for ``captum_rnn.explain``: on captum-rnn's attention
    models, and on a user's model built from ``nn.MultiheadAttention`` (such as
    ``nn.TransformerEncoderLayer``), which runs through the contract on its token ids,
    in its own layout and with its own padding mask.

    The per-step score is spread evenly over the step's embedding dimensions, so that
    summing over them gives the score once.
    """

    attribution: ClassVar[type[_AttentionAttribution]]
    uses_gradients = False

    @staticmethod
    def applies_to(model: nn.Module) -> bool:
        """A TransformerClassifier, a recurrent model with an attention layer, or a model
        with ``nn.MultiheadAttention`` layers."""
        if isinstance(model, TransformerClassifier):
            return True
        if isinstance(model, RecurrentModel):
            return model.attention is not None
        return any(isinstance(m, nn.MultiheadAttention) for m in model.modules())

    def attribute(self, inputs, baselines, target, lengths, **kwargs):
        module = self.model.module
        if isinstance(module, (TransformerClassifier, RecurrentModel)):
            scores = self.attribution(module).attribute(
                inputs, target=target, additional_forward_args=(lengths,), **kwargs
            )
        else:
            # A user's model runs through the contract: its own layout, padding mask and
            # output record, on the token ids (or features) rather than the embedding.
            attribution = self.attribution(self.model)
            attribution._contract = True
            if self.ids is not None:
                scores = attribution.attribute(self.ids, target=target, **kwargs)
            else:
                scores = attribution.attribute(
                    inputs, target=target, additional_forward_args=(lengths,), **kwargs
                )
        dim = inputs.shape[-1]
        return MethodResult((scores[..., None] / dim).expand_as(inputs).clone())


class AttentionWeightsMethod(_ExplainAttention):
    """``explain(..., method="attention_weights")``: :class:`AttentionWeights`."""

    name = "attention_weights"
    attribution = AttentionWeights


class AttentionRolloutMethod(_ExplainAttention):
    """``explain(..., method="attention_rollout")``: :class:`AttentionRollout`."""

    name = "attention_rollout"
    attribution = AttentionRollout


class AttentionFlowMethod(_ExplainAttention):
    """``explain(..., method="attention_flow")``: :class:`AttentionFlow`."""

    name = "attention_flow"
    attribution = AttentionFlow


class GradientAttentionRolloutMethod(_ExplainAttention):
    """``explain(..., method="gradient_attention_rollout")``: :class:`GradientAttentionRollout`."""

    name = "gradient_attention_rollout"
    attribution = GradientAttentionRollout
    uses_gradients = True
