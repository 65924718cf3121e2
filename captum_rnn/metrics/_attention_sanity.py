"""May attention be read as explanation for this model? Sanity checks for attention.

After Jain and Wallace (NAACL 2019, "Attention is not Explanation"), Wiegreffe and
Pinter (EMNLP 2019, "Attention is not not Explanation") and Adebayo et al. (2018):

* agreement: Kendall tau-b between the attention over tokens and (a) gradient
  importance (``|sum over the embedding of IG|`` or another registered gradient method),
  (b) leave-one-out output drops (:func:`~captum_rnn.metrics.leave_one_out`);
* permutation: shuffle the attention weights over the real (unpadded) positions
  inside the model's attention layers, keep everything else, and measure how much the
  output distribution moves (total variation, change of the predicted class's
  probability, flip rate). When it barely moves, the output does not depend on where
  the model attends, and attention is no explanation of it;
* uniform baseline: replace attention by the uniform distribution over the real
  positions: the output change and the accuracy drop;
* model-parameter randomisation (:func:`~captum_rnn.metrics.model_randomization_test`)
  for the attention methods: attention that stays the same when the weights are
  re-initialised from the top does not reflect the trained model.

Intervening on attention: :func:`attention_intervention` is a context manager that
registers forward hooks replacing the attention module's output (``AttentionTap`` of
``TransformerClassifier``; the ``attention`` pooling layer of attention RNNs, whose
pooled vector is recomputed from the new weights and the states; ``nn.MultiheadAttention``
in users' models, whose output is recomputed from the new per-head weights and its value
projection). Hooks are removed, the fused attention fast path and
``model.attention_maps`` restored in ``finally``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_rnn._utils.options import check_int
from captum_rnn._utils.state import preserve_state, seeded
from captum_rnn.attr._attention import _MHA_ARGS
from captum_rnn.metrics._base import (
    _adapt,
    _call_explainer,
    _check_batch_size,
    _device,
    _model_outputs,
    _nanmean,
    _native,
    _prepare,
    _resolve_explainer,
    _resolve_target,
)
from captum_rnn.metrics._faithfulness import DROP_TIE, kendall_tau, leave_one_out
from captum_rnn.metrics._sanity import RandomizationResult, model_randomization_test
from captum_rnn.models.protocol import SequenceModel

__all__ = ["AttentionSanityReport", "attention_intervention", "attention_sanity"]

#: ``replace(weights, key_mask, query_mask, generator) -> new weights``; weights are
#: ``(batch, heads, query, key)``, masks boolean ``(batch, key)`` and ``(batch, query)``.
Replacement = Callable[[Tensor, Tensor, Tensor, torch.Generator | None], Tensor]
_MODES = ("shuffle", "uniform")
_ATTENTION = ("auto", "weights", "rollout")


# ---------------------------------------------------------------------- replacements
def shuffle_attention(
    weights: Tensor, key_mask: Tensor, query_mask: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Permute every row's weights at random over that row's real keys (padding stays 0).

    The random draws depend only on the real lengths, not on how far a batch is padded.
    """
    batch, heads, queries, keys = weights.shape
    n_keys = max(int(key_mask.sum(-1).max()), 1)
    n_queries = max(int(query_mask.sum(-1).max()), 1)
    draws = torch.rand(batch, heads, n_queries, n_keys, generator=generator)
    draws = draws.to(weights.device)
    query_rank = (query_mask.long().cumsum(-1) - 1).clamp(0, n_queries - 1)
    key_rank = (key_mask.long().cumsum(-1) - 1).clamp(0, n_keys - 1)
    draws = draws.gather(2, query_rank[:, None, :, None].expand(batch, heads, queries, n_keys))
    draws = draws.gather(3, key_rank[:, None, None, :].expand(batch, heads, queries, keys))
    real = key_mask[:, None, None, :].expand_as(weights)
    draws = draws.masked_fill(~real, math.inf)
    source = draws.argsort(dim=-1)  # real keys first, in random order; then padding
    slots = (~real).to(torch.uint8).argsort(dim=-1, stable=True)  # real keys first, in order
    shuffled = torch.zeros_like(weights).scatter(-1, slots, weights.gather(-1, source))
    return shuffled * real.to(weights.dtype)


def uniform_attention(
    weights: Tensor, key_mask: Tensor, query_mask: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Uniform weights over the real keys in every real query row (padding rows stay 0)."""
    keys = key_mask[:, None, None, :].to(weights.dtype)
    rows = query_mask[:, None, :, None].to(weights.dtype)
    uniform = keys / keys.sum(-1, keepdim=True).clamp_min(1.0)
    return (uniform * rows).expand_as(weights).clone()


def _attention_modules(model: nn.Module) -> tuple[str, list[nn.Module]]:
    """``(kind, modules)``: ``"tap"``, ``"recurrent"`` or ``"mha"`` and the modules."""
    from captum_rnn.attr._attention import _sources

    return _sources(model)


def _mha_output(module: nn.MultiheadAttention, value: Tensor, weights: Tensor) -> Tensor:
    """``MultiheadAttention``'s output for given per-head ``weights`` ``(batch, heads,
    query, key)`` and its ``value`` input (laid out as the module takes it)."""
    if module.bias_k is not None or module.add_zero_attn:
        raise ValueError(
            "attention interventions do not support nn.MultiheadAttention with add_bias_kv "
            "or add_zero_attn (the keys are not the input positions)"
        )
    embed, heads = module.embed_dim, module.num_heads
    unbatched = value.dim() == 2
    if unbatched:
        value = value.unsqueeze(0 if module.batch_first else 1)
    if not module.batch_first:
        value = value.transpose(0, 1)
    if module._qkv_same_embed_dim:
        w_v = module.in_proj_weight[2 * embed :]
    else:
        w_v = module.v_proj_weight
    b_v = None if module.in_proj_bias is None else module.in_proj_bias[2 * embed :]
    batch, keys = value.shape[:2]
    v = F.linear(value, w_v, b_v).reshape(batch, keys, heads, embed // heads).transpose(1, 2)
    out = (weights.to(v.dtype) @ v).transpose(1, 2).reshape(batch, -1, embed)
    out = module.out_proj(out)
    if not module.batch_first:
        out = out.transpose(0, 1)
    return out.squeeze(0 if module.batch_first else 1) if unbatched else out


@contextlib.contextmanager
def attention_intervention(
    model: nn.Module,
    replace: str | Replacement = "shuffle",
    *,
    seed: int = 0,
    layers: Sequence[int] | None = None,
) -> Iterator[None]:
    """Replace the model's attention weights on every forward inside the block.

    Args:
        model: a ``TransformerClassifier``, a captum-rnn recurrent model with attention,
            or a model built from ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``
            (its attention output is recomputed from the replaced per-head weights and its
            value projection; padded keys are read from ``key_padding_mask``).
        replace: ``"shuffle"`` (permute each row over its real positions),
            ``"uniform"`` (uniform over the real positions) or a callable
            ``(weights, key_mask, query_mask, generator) -> weights`` on
            ``(batch, heads, query, key)`` tensors.
        seed: seeds the generator passed to ``replace`` (one per block: each forward
            inside draws anew).
        layers: which attention layers (forward order) to replace; default all.

    Yields:
        Nothing; forwards inside the block use the replaced attention.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, attention="dot").eval()
        >>> with attention_intervention(model, "uniform"):
        ...     logits = model(torch.tensor([[4, 5, 0]]))
        ...     weights = model.attention_maps[0]
        >>> weights[0, 0, 0]
        tensor([0.5000, 0.5000, 0.0000])
    """
    if isinstance(replace, str):
        if replace not in _MODES:
            raise ValueError(f"replace must be one of {_MODES} or a callable, got {replace!r}")
        function: Replacement = shuffle_attention if replace == "shuffle" else uniform_attention
    elif callable(replace):
        function = replace
    else:
        raise TypeError(f"replace must be one of {_MODES} or a callable, got {replace!r}")
    kind, modules = _attention_modules(model)
    if layers is None:
        chosen = modules
    else:
        if isinstance(layers, int | str) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in layers
        ):
            raise TypeError(f"layers must be a sequence of ints, got {layers!r}")
        for i in layers:
            if not -len(modules) <= i < len(modules):
                raise ValueError(f"layers must be in [0, {len(modules)}), got {i}")
        chosen = [modules[i] for i in layers]
    generator = torch.Generator().manual_seed(int(seed))

    def checked(new: Tensor, old: Tensor) -> Tensor:
        if not isinstance(new, Tensor) or new.shape != old.shape:
            raise ValueError(
                f"replace must return weights of shape {tuple(old.shape)}, got "
                f"{getattr(new, 'shape', type(new).__name__)}"
            )
        return new.to(old.dtype)

    def tap_hook(module: nn.Module, inputs: Any, probs: Tensor) -> Tensor:
        # Padded query rows are all 0 and real rows sum to 1; in self-attention the real
        # keys are the real queries.
        mask = probs.detach().sum(dim=-1).amax(dim=1) > 0.5
        return checked(function(probs, mask, mask, generator), probs)

    def pooling_hook(module: nn.Module, inputs: Any, output: Any) -> tuple[Tensor, Tensor]:
        states, mask = inputs[0], inputs[1]
        weights = output[1][:, None, None, :]
        query = torch.ones(mask.shape[0], 1, dtype=torch.bool, device=mask.device)
        new = checked(function(weights, mask, query, generator), weights)[:, 0, 0, :]
        return torch.bmm(new.unsqueeze(1), states).squeeze(1), new

    asked: list[tuple[bool, bool]] = []  # per MultiheadAttention call: what the caller wanted

    def mha_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs = dict(kwargs)
        for name, value in zip(_MHA_ARGS[3:], args[3:], strict=False):
            kwargs[name] = value
        asked.append((kwargs.get("need_weights", True), kwargs.get("average_attn_weights", True)))
        kwargs["need_weights"] = True
        kwargs["average_attn_weights"] = False
        if kwargs.get("is_causal") and kwargs.get("attn_mask") is not None:
            kwargs["is_causal"] = False  # the mask already says it; the weights path needs that
        return tuple(args[:3]), kwargs

    def mha_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> tuple:
        need_weights, average = asked.pop()
        weights = output[1]
        unbatched = weights.dim() == 3
        if unbatched:
            weights = weights[None]
        batch, _, queries, keys = weights.shape
        padding = kwargs.get("key_padding_mask")
        if padding is None:
            key_mask = torch.ones(batch, keys, dtype=torch.bool, device=weights.device)
        else:
            padding = padding.reshape(batch, keys)
            key_mask = ~padding if padding.dtype == torch.bool else ~torch.isneginf(padding)
        query_mask = torch.ones(batch, queries, dtype=torch.bool, device=weights.device)
        new = checked(function(weights, key_mask, query_mask, generator), weights)
        out = _mha_output(module, args[2], new)
        if not need_weights:
            return out, None
        new = new.mean(dim=1) if average else new
        return out, new[0] if unbatched else new

    saved_maps = vars(model).get("attention_maps")  # the model's own record, restored
    fast_path = torch.backends.mha.get_fastpath_enabled()
    handles = []
    try:
        for module in chosen:
            if kind == "mha":
                handles.append(module.register_forward_pre_hook(mha_pre_hook, with_kwargs=True))
                handles.append(module.register_forward_hook(mha_hook, with_kwargs=True))
            else:
                hook = tap_hook if kind == "tap" else pooling_hook
                handles.append(module.register_forward_hook(hook))
        if kind == "mha":
            # the fused fast path never calls the module's forward (and so its hooks)
            torch.backends.mha.set_fastpath_enabled(False)
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.backends.mha.set_fastpath_enabled(fast_path)
        if saved_maps is not None:
            model.attention_maps = saved_maps


# ---------------------------------------------------------------------- report
@dataclass
class AttentionSanityReport:
    """What the attention sanity checks returned (per sequence and aggregated).

    Attributes:
        attention: which attention was compared (``"attention_weights"`` or
            ``"attention_rollout"``).
        gradient_method: the gradient method of ``tau_gradient``.
        tau_gradient: per sequence, Kendall tau-b between attention and
            ``|gradient importance|`` over the real tokens (NaN when undefined).
        tau_loo: per sequence, Kendall tau-b between attention and the leave-one-out drops.
        permutation_tv: per sequence, the mean total variation between the output
            distribution and that with shuffled attention (over ``permutations`` draws).
        permutation_max_change: per sequence, the mean absolute change of the predicted
            class's probability under shuffling.
        permutation_flip_rate: share of (sequence, draw) pairs whose predicted class changed.
        uniform_tv: per sequence, total variation with uniform attention.
        uniform_max_change: per sequence, change of the predicted class's probability.
        uniform_flip_rate: share of sequences whose prediction changed with uniform attention.
        accuracy: accuracy with the model's attention (``None`` without ``labels``).
        uniform_accuracy: accuracy with uniform attention (``None`` without ``labels``).
        randomization: the model-parameter randomisation test per attention method.
        threshold: total variation under which attention is deemed not to matter.
    """

    attention: str
    gradient_method: str
    tau_gradient: list[float]
    tau_loo: list[float]
    permutation_tv: list[float]
    permutation_max_change: list[float]
    permutation_flip_rate: float
    uniform_tv: list[float]
    uniform_max_change: list[float]
    uniform_flip_rate: float
    accuracy: float | None = None
    uniform_accuracy: float | None = None
    randomization: dict[str, RandomizationResult] = field(default_factory=dict)
    threshold: float = 0.05

    @staticmethod
    def _mean(values: list[float]) -> float:
        return _nanmean(torch.tensor(values, dtype=torch.float64))

    @property
    def accuracy_drop(self) -> float | None:
        """Accuracy lost with uniform attention (``None`` without labels)."""
        if self.accuracy is None or self.uniform_accuracy is None:
            return None
        return self.accuracy - self.uniform_accuracy

    @property
    def attention_matters(self) -> bool:
        """True when shuffling attention moves the output (mean TV above ``threshold``)."""
        tv = self._mean(self.permutation_tv)
        return not math.isnan(tv) and tv > self.threshold

    def summary(self) -> dict[str, float | None]:
        """The aggregated figures: means over sequences (NaNs skipped)."""
        out: dict[str, float | None] = {
            "tau_gradient": self._mean(self.tau_gradient),
            "tau_loo": self._mean(self.tau_loo),
            "permutation_tv": self._mean(self.permutation_tv),
            "permutation_tv_median": float(
                torch.tensor(self.permutation_tv, dtype=torch.float64).median()
            ),
            "permutation_max_change": self._mean(self.permutation_max_change),
            "permutation_flip_rate": self.permutation_flip_rate,
            "uniform_tv": self._mean(self.uniform_tv),
            "uniform_max_change": self._mean(self.uniform_max_change),
            "uniform_flip_rate": self.uniform_flip_rate,
            "accuracy": self.accuracy,
            "uniform_accuracy": self.uniform_accuracy,
            "accuracy_drop": self.accuracy_drop,
        }
        for name, result in self.randomization.items():
            out[f"randomization_similarity[{name}]"] = result.similarity
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN written as ``None``)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return {
            "attention": self.attention,
            "gradient_method": self.gradient_method,
            "threshold": self.threshold,
            "attention_matters": self.attention_matters,
            "summary": {k: clean(v) for k, v in self.summary().items()},
            "per_sequence": {
                name: clean(getattr(self, name))
                for name in (
                    "tau_gradient",
                    "tau_loo",
                    "permutation_tv",
                    "permutation_max_change",
                    "uniform_tv",
                    "uniform_max_change",
                )
            },
            "randomization": {k: v.to_dict() for k, v in self.randomization.items()},
        }

    def __str__(self) -> str:
        s = self.summary()

        def f(value: float | None) -> str:
            return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"

        lines = [
            f"attention sanity ({self.attention}):",
            f"  Kendall tau with |{self.gradient_method}|: {f(s['tau_gradient'])}",
            f"  Kendall tau with leave-one-out drops: {f(s['tau_loo'])}",
            f"  shuffled attention: mean TV {f(s['permutation_tv'])}, median TV "
            f"{f(s['permutation_tv_median'])}, predicted-class prob change "
            f"{f(s['permutation_max_change'])}, flip rate {f(s['permutation_flip_rate'])}",
            f"  uniform attention: mean TV {f(s['uniform_tv'])}, predicted-class prob change "
            f"{f(s['uniform_max_change'])}, flip rate {f(s['uniform_flip_rate'])}",
        ]
        if self.accuracy is not None:
            lines.append(
                f"  accuracy {f(self.accuracy)} -> {f(self.uniform_accuracy)} with uniform "
                f"attention (drop {f(self.accuracy_drop)})"
            )
        for result in self.randomization.values():
            lines.append(f"  {result.reason}")
        verdict = (
            "the output depends on where the model attends"
            if self.attention_matters
            else "the output hardly depends on where the model attends: do not read "
            "attention as explanation"
        )
        lines.append(f"  verdict: {verdict} (TV threshold {self.threshold})")
        return "\n".join(lines)


# ---------------------------------------------------------------------- the checks
def _attention_explainer(name: str) -> Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]:
    from captum_rnn.attr import AttentionRollout, AttentionWeights, GradientAttentionRollout

    cls = {
        "attention_weights": AttentionWeights,
        "attention_rollout": AttentionRollout,
        "gradient_attention_rollout": GradientAttentionRollout,
    }[name]

    def explainer(model: nn.Module, x: Tensor, lengths: Tensor, target: Tensor) -> Tensor:
        with preserve_state(model):
            return cls(model).attribute(x, target=target, additional_forward_args=(lengths,))

    explainer.__name__ = name
    return explainer


def _probabilities(seq: SequenceModel, outputs: Tensor) -> Tensor:
    """Class probabilities for a classifier (from what it returns), else the outputs."""
    outputs = outputs.double()
    return seq.probabilities(outputs) if seq.is_classifier else outputs


def _changes(
    before: Tensor, after: Tensor, predicted: Tensor, classify: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Per sequence: total variation (mean |change| for raw outputs), change of the
    predicted output, whether the prediction flipped."""
    if classify:
        tv = 0.5 * (before - after).abs().sum(dim=-1)
        flipped = after.argmax(dim=-1) != predicted
    else:
        tv = (before - after).abs().mean(dim=-1)
        flipped = torch.zeros_like(tv, dtype=torch.bool)
    change = (before.gather(1, predicted[:, None]) - after.gather(1, predicted[:, None])).abs()
    return tv, change[:, 0], flipped


def attention_sanity(
    model: nn.Module,
    inputs: Any,
    target: Any = None,
    *,
    lengths: Any = None,
    labels: Any = None,
    attention: str = "auto",
    gradient_method: str | Callable[..., Any] = "integrated_gradients",
    permutations: int = 20,
    randomization: bool = True,
    randomization_methods: Sequence[str] = ("attention_weights", "attention_rollout"),
    threshold: float = 0.05,
    seed: int = 0,
    batch_size: int = 256,
    **hints: Any,
) -> AttentionSanityReport:
    """Run the attention sanity checks on a batch and return the figures.

    Args:
        model: a ``TransformerClassifier`` or a captum-rnn recurrent model with attention
            (``RNNClassifier(..., attention="additive")``); it is not modified.
        inputs: token ids ``(batch, time)`` (padding: the model's pad id), or a list of
            sequences.
        target: the explained output per sequence (default the predicted class).
        lengths: true lengths (inferred from padding by default).
        labels: true classes ``(batch,)``; gives the accuracy with and without attention.
        attention: ``"weights"`` (:class:`~captum_rnn.attr.AttentionWeights`),
            ``"rollout"`` (:class:`~captum_rnn.attr.AttentionRollout`) or ``"auto"``
            (rollout when the model has several attention layers, else weights).
        gradient_method: a registered gradient method name (``"integrated_gradients"``,
            ``"input_x_gradient"``, ``"saliency"``...) or a callable
            ``(model, inputs, lengths, target) -> (batch, time)``; its absolute per-token
            score is the gradient importance.
        permutations: random shuffles of the attention per sequence.
        randomization: run the model-parameter randomisation test.
        randomization_methods: attention methods for it: ``"attention_weights"``,
            ``"attention_rollout"``, ``"gradient_attention_rollout"``.
        threshold: mean total variation under shuffling above which attention "matters".
        seed: seeds the shuffles, the randomisation and sampling methods.
        batch_size: forward-pass chunk size.
        hints: ``pad_id``, ``batch_first``, ``output``, ... for :func:`captum_rnn.adapt`.

    Returns:
        An :class:`AttentionSanityReport` (``summary()``, ``to_dict()``, ``str()``).

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, attention="additive").eval()
        >>> report = attention_sanity(model, torch.tensor([[4, 5, 6, 7]]), permutations=2,
        ...                           randomization=False)
        >>> len(report.permutation_tv)
        1
    """
    kind, modules = _attention_modules(model)
    if kind == "mha":
        raise TypeError(
            "attention_sanity runs on TransformerClassifier and captum-rnn attention RNNs "
            f"(it reads their padding and embeddings), got {type(model).__name__}; for a "
            "model built from nn.MultiheadAttention use attention_intervention directly"
        )
    if attention not in _ATTENTION:
        raise ValueError(f"attention must be one of {_ATTENTION}, got {attention!r}")
    permutations = check_int("permutations", permutations, 1)
    names = ("attention_weights", "attention_rollout", "gradient_attention_rollout")
    for name in randomization_methods:
        if name not in names:
            raise ValueError(f"randomization_methods must be drawn from {names}, got {name!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    batch_size = _check_batch_size(batch_size)
    seq, _ = _adapt(model, **hints)
    model = seq.module
    batch = _prepare(seq, inputs, lengths)
    if not batch.is_token:
        raise TypeError("inputs must be token ids (batch, time): attention checks need tokens")
    device = _device(model)
    saved_maps = vars(model).get("attention_maps")  # the model's own record, restored
    try:
        outputs = _model_outputs(seq, batch, batch_size)
        classify = seq.is_classifier
        target = _resolve_target(seq, batch, target, batch_size, outputs)
        before = _probabilities(seq, outputs)
        predicted = outputs.argmax(dim=-1)
        if labels is not None:
            labels = torch.as_tensor(labels, device=outputs.device)
            if labels.dtype.is_floating_point or labels.shape != (batch.size,):
                raise ValueError(
                    f"labels must be integer classes of shape ({batch.size},), got "
                    f"{labels.dtype} {tuple(labels.shape)}"
                )

        # agreement with gradient and leave-one-out importance
        name = attention if attention != "auto" else ("rollout" if len(modules) > 1 else "weights")
        attention_name = f"attention_{name}"
        with seeded(seed, device):
            scores = _call_explainer(_attention_explainer(attention_name), seq, batch, target)
            gradient = _call_explainer(
                _resolve_explainer(gradient_method), seq, batch, target
            ).abs()
        tau_gradient = kendall_tau(scores, gradient, batch.mask)
        drops = leave_one_out(
            seq,
            _native(seq, batch.x),
            target,
            lengths=batch.lengths,
            batch_size=batch_size,
            cells=False,  # attention weighs steps
        )
        tau_loo = kendall_tau(scores, drops, batch.mask, b_atol=DROP_TIE)

        # permutation test
        tv_sum = torch.zeros(batch.size, dtype=torch.float64, device=outputs.device)
        change_sum = torch.zeros_like(tv_sum)
        flips = 0
        for draw in range(permutations):
            with attention_intervention(model, "shuffle", seed=seed * 1_000_003 + draw):
                after = _probabilities(seq, _model_outputs(seq, batch, batch_size))
            tv, change, flipped = _changes(before, after, predicted, classify)
            tv_sum += tv
            change_sum += change
            flips += int(flipped.sum())

        # uniform baseline
        with attention_intervention(model, "uniform"):
            uniform_outputs = _model_outputs(seq, batch, batch_size)
        uniform_tv, uniform_change, uniform_flipped = _changes(
            before, _probabilities(seq, uniform_outputs), predicted, classify
        )
        accuracy = uniform_accuracy = None
        if labels is not None:
            accuracy = float((predicted == labels).double().mean())
            uniform_accuracy = float((uniform_outputs.argmax(-1) == labels).double().mean())

        results: dict[str, RandomizationResult] = {}
        if randomization:
            for method in randomization_methods:
                explainer = _attention_explainer(method)
                reference = scores if method == attention_name else None
                results[method] = model_randomization_test(
                    seq,
                    _native(seq, batch.x),
                    explainer,
                    target,
                    lengths=batch.lengths,
                    seed=seed,
                    reference=reference,
                )
    finally:
        if saved_maps is not None:
            model.attention_maps = saved_maps
    return AttentionSanityReport(
        attention=attention_name,
        gradient_method=getattr(gradient_method, "__name__", str(gradient_method)),
        tau_gradient=tau_gradient.tolist(),
        tau_loo=tau_loo.tolist(),
        permutation_tv=(tv_sum / permutations).tolist(),
        permutation_max_change=(change_sum / permutations).tolist(),
        permutation_flip_rate=flips / (permutations * batch.size) if classify else math.nan,
        uniform_tv=uniform_tv.tolist(),
        uniform_max_change=uniform_change.tolist(),
        uniform_flip_rate=float(uniform_flipped.double().mean()) if classify else math.nan,
        accuracy=accuracy,
        uniform_accuracy=uniform_accuracy,
        randomization=results,
        threshold=float(threshold),
    )
