"""The model contract: ``adapt(model)`` turns any sequence model into a :class:`SequenceModel`.

Every entry point of captum-rnn takes the user's own ``nn.Module`` or
``LightningModule`` and calls :func:`adapt` on it. The contract answers, in one place,
the questions that were once guessed with ``getattr`` all over the package:

* ``embedding``: the ``nn.Embedding`` that feeds the sequence layers (token models);
* ``pad_id``: the padding token id (the embedding's ``padding_idx`` or a hint; never 0
  by default);
* ``batch_first``: the layout of the model's input (a hint, or its ``nn.RNN``/``LSTM``/
  ``GRU``/attention layers when they agree);
* ``lengths_arg`` / ``mask_arg``: how the forward takes the true lengths or a padding
  mask (from its signature);
* ``output``: ``"logits"``, ``"probs"``, ``"log_probs"`` or ``"regression"``, and
  ``num_classes``: from the loss the model trains with (``_output_kind``) and the first
  output it returns (or hints);
* ``output_steps``: whether the model returns one output per step ``(batch, steps,
  classes)`` (a tagger, a multi-step forecaster); ``None`` refuses such an output with
  an error naming the hint, ``True`` flattens it to ``(batch, steps * classes)``.

Each property is given, inferred (and from what), or a ``ValueError`` that names the
keyword to pass. A model may also declare its own hints with a method
``sequence_model_hints()`` returning a dict of the keywords (captum-rnn's models do).

A :class:`SequenceModel` always speaks batch-first to the rest of the package:
``forward(inputs, lengths, ids)`` takes ``(batch, time)`` ids or ``(batch, time, dim)``
features or embeddings, moves them to the model's own layout, passes lengths or masks
as the model's forward wants them, and returns ``(batch, outputs)``.
"""

from __future__ import annotations

import inspect
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from captum_rnn.models._output_kind import kind_for_width, loss_evidence, normalises

__all__ = [
    "HINT_NAMES",
    "OUTPUT_KINDS",
    "SequenceModel",
    "adapt",
    "adapt_if_readable",
    "pop_hints",
    "readable_module",
]

#: What a model's output means: class scores before softmax, probabilities,
#: log-probabilities (``NLLLoss`` style) or regression values.
OUTPUT_KINDS = ("logits", "probs", "log_probs", "regression")
_KIND_WORDS = {
    "logits": "class logits",
    "probs": "probabilities",
    "log_probs": "log-probabilities",
    "regression": "regression values",
}

_LENGTH_NAMES = ("lengths", "length", "text_lengths", "seq_len", "seq_lens", "lens", "src_len")
# 1 = real token (Hugging Face's convention)
_MASK_REAL = ("mask", "attention_mask", "src_mask_real")
# True = padding (PyTorch's convention)
_MASK_PAD = ("src_key_padding_mask", "key_padding_mask", "padding_mask")
#: The keywords of :func:`adapt`; every entry point accepts them and passes them on.
HINT_NAMES = (
    "pad_id",
    "batch_first",
    "output",
    "embedding",
    "num_classes",
    "lengths_arg",
    "mask_arg",
    "mask_marks",
    "output_steps",
    "target_arg",
    "target_embedding",
    "output_offset",
    "forward_kwargs",
    "channels_first",
)
# An encoder-decoder's forward takes the target (teacher forcing) under one of these names.
_TARGET_NAMES = (
    "trg",
    "tgt",
    "target",
    "tgt_in",
    "trg_in",
    "tgt_input",
    "decoder_input",
    "decoder_inputs",
    "decoder_input_ids",
    "target_ids",
)
_FORCING_NAMES = ("teacher_forcing_ratio", "teacher_forcing", "tf_ratio")
#: Layers that mark the module holding a sequence network (for wrappers passing *args on).
_SEQUENCE_LAYERS = (nn.RNNBase, nn.Embedding, nn.MultiheadAttention, nn.Conv1d)
#: Whether a model ignores padding after its sequences, by module and way of calling it
#: (see SequenceModel.check_trailing_padding).
_TRAILING_PADDING: weakref.WeakKeyDictionary[nn.Module, dict[tuple, bool]] = (
    weakref.WeakKeyDictionary()
)


def _forward_parameters(module: nn.Module) -> list[inspect.Parameter]:
    """The named parameters of ``module.forward``; for a wrapper whose forward only
    passes ``*args, **kwargs`` on (a LightningModule around the network), those of the
    one child that holds the sequence layers."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return []
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if named:
        return named
    delegate = _delegate(module)
    return _forward_parameters(delegate) if delegate is not None else []


def _delegate(module: nn.Module) -> nn.Module | None:
    """For a wrapper whose forward only passes ``*args, **kwargs`` on, the one child that
    holds the sequence layers (the network it wraps); else ``None``."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    passes_on = {p.kind for p in params} == {
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    }
    if not passes_on:
        return None
    holders = [
        child
        for child in module.children()
        if any(isinstance(m, _SEQUENCE_LAYERS) for m in child.modules())
    ]
    return holders[0] if len(holders) == 1 else None


def _takes_any_keyword(module: nn.Module) -> bool:
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD for p in params)


class SequenceModel(nn.Module):
    """A user's sequence model seen through the model contract. Build it with :func:`adapt`.

    Attributes:
        module: the user's model, unchanged.
        pad_id: padding token id (token models), else ``None``.
        batch_first: the layout of the model's own input.
        embedding: the token ``nn.Embedding`` (``None`` for continuous input).
        embedding_name: its dotted name in ``module``.
        lengths_arg / mask_arg: forward parameters taking lengths / a padding mask.
        output: one of :data:`OUTPUT_KINDS` (``None`` until the first output is seen).
        num_classes: output width for classifiers (``None`` for regression or until seen).
        output_steps: ``True`` when per-step outputs ``(batch, steps, classes)`` are
            accepted (flattened step-major to ``(batch, steps * classes)``).
        step_shape: ``(steps, classes)`` of the last per-step output seen, else ``None``.
        provenance: for each property, ``"given"`` or how it was inferred.
        ignores_trailing_padding: whether the outputs stay the same with trailing padding
            cut off (``None`` until :meth:`check_trailing_padding` has asked).
    """

    def __init__(self, module: nn.Module, **hints: Any) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(module).__name__}")
        unknown = set(hints) - set(HINT_NAMES)
        if unknown:
            raise TypeError(
                f"adapt() got unknown hints {sorted(unknown)}; known: {list(HINT_NAMES)}"
            )
        declared = {}
        declare = getattr(type(module), "sequence_model_hints", None)
        if callable(declare):
            declared = dict(module.sequence_model_hints())
        self.module = module
        self.hints = {k: v for k, v in hints.items() if v is not None}
        self.provenance: dict[str, str] = {}
        merged = {**declared, **self.hints}

        def source(name: str) -> str:
            return "given" if name in self.hints else "declared by the model"

        self._params = _forward_parameters(module)
        self._input_name = self._params[0].name if self._params else None
        name, found = self._find_embedding(merged, source)
        self.embedding_name = name
        # Not registered as a child: it already is one, inside ``module``.
        object.__setattr__(self, "_embedding", found)
        self.pad_id = self._find_pad(merged, source)
        self.batch_first = self._find_batch_first(merged, source)
        self._lengths_on_cpu = False  # set when the forward packs with CPU lengths only
        # whether outputs stay the same with trailing padding cut (None: not yet asked);
        # see check_trailing_padding
        self.ignores_trailing_padding: bool | None = None
        # checked on the first call when read off a recurrent layer (see _call_module)
        self._layout_checked = "batch_first" in merged or self._target_arg_given(merged)
        self.channels_first: bool | None = merged.get("channels_first")
        if self.channels_first is not None:
            if not isinstance(self.channels_first, bool):
                raise TypeError(f"channels_first must be a bool, got {self.channels_first!r}")
            if self.channels_first and (not self.batch_first or self.embedding is not None):
                raise ValueError(
                    "channels_first=True is for continuous input (batch, features, time): "
                    "the model must be batch-first and read features, not token ids"
                )
            self.provenance["channels_first"] = source("channels_first")
        self.lengths_arg, self.mask_arg = self._find_length_args(merged, source)
        self.mask_marks = self._find_mask_marks(merged, source)
        # read off the mask's name: checked on the first call that reaches attention
        self._mask_checked = "mask_marks" in merged or not any(
            isinstance(m, nn.MultiheadAttention) for m in module.modules()
        )
        self.output: str | None = None
        self.num_classes: int | None = None
        if "output" in merged:
            if merged["output"] not in OUTPUT_KINDS:
                raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {merged['output']!r}")
            self.output = merged["output"]
            self.provenance["output"] = source("output")
        if "num_classes" in merged:
            n = merged["num_classes"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"num_classes must be a positive int, got {n!r}")
            self.num_classes = n
            self.provenance["num_classes"] = source("num_classes")
        self.output_steps: bool | None = merged.get("output_steps")
        if self.output_steps is not None and not isinstance(self.output_steps, bool):
            raise ValueError(f"output_steps must be True, False or None, got {self.output_steps!r}")
        self.step_shape: tuple[int, int] | None = None
        self._find_target(merged, source)
        self.forward_kwargs = self._find_forward_kwargs(merged, source)
        self._check_required()

    # ------------------------------------------------------------------ inference
    def _find_embedding(self, hints: dict, source: Callable) -> tuple[str | None, nn.Module | None]:
        named = dict(self.module.named_modules())
        if "embedding" in hints:
            hint = hints["embedding"]
            if isinstance(hint, nn.Module):
                for name, sub in named.items():
                    if sub is hint:
                        self.provenance["embedding"] = source("embedding")
                        return name, hint
                raise ValueError("embedding= is a module that is not part of the model")
            if hint is False:  # continuous input although the model holds embeddings
                self.provenance["embedding"] = source("embedding") + " (none: continuous input)"
                return None, None
            if not isinstance(hint, str) or hint not in named:
                raise ValueError(
                    f"embedding={hint!r} names no submodule; the model's embeddings: "
                    f"{[n for n, m in named.items() if isinstance(m, nn.Embedding)]}"
                )
            self.provenance["embedding"] = source("embedding")
            return hint, named[hint]
        found = [(n, m) for n, m in named.items() if isinstance(m, nn.Embedding)]
        if len(found) > 1:
            names = [n for n, _ in found]
            raise ValueError(
                f"the model has several nn.Embedding layers {names}: pass embedding= naming "
                f"the one that embeds the input tokens, e.g. adapt(model, embedding={names[0]!r})"
            )
        if not found:
            self.provenance["embedding"] = "inferred: no nn.Embedding (continuous input)"
            return None, None
        self.provenance["embedding"] = "inferred: the model's only nn.Embedding"
        return found[0]

    def _find_pad(self, hints: dict, source: Callable) -> int | None:
        if self.embedding is None:
            if "pad_id" in hints:
                raise ValueError("pad_id= applies to token models; this model reads features")
            return None
        if "pad_id" in hints:
            pad = hints["pad_id"]
            if isinstance(pad, bool) or not isinstance(pad, int):
                raise TypeError(f"pad_id must be an int, got {pad!r}")
            size = getattr(self.embedding, "num_embeddings", None)
            if size is not None and not 0 <= pad < size:
                raise ValueError(f"pad_id={pad} is outside the embedding's range [0, {size})")
            self.provenance["pad_id"] = source("pad_id")
            return pad
        pad = getattr(self.embedding, "padding_idx", None)
        if pad is not None:
            self.provenance["pad_id"] = f"inferred: {self.embedding_name}.padding_idx"
            return int(pad)
        raise ValueError(
            f"cannot tell the padding id: {self.embedding_name} has no padding_idx. "
            "Pass pad_id=, e.g. adapt(model, pad_id=vocab.pad_index) "
            "(captum-rnn never assumes 0)"
        )

    def _find_batch_first(self, hints: dict, source: Callable) -> bool:
        if "batch_first" in hints:
            if not isinstance(hints["batch_first"], bool):
                raise TypeError(f"batch_first must be a bool, got {hints['batch_first']!r}")
            self.provenance["batch_first"] = source("batch_first")
            return hints["batch_first"]
        seen = {}
        for name, sub in self.module.named_modules():
            if isinstance(sub, (nn.RNNBase, nn.MultiheadAttention)):
                seen[name] = bool(sub.batch_first)
        if not seen:
            raise ValueError(
                "cannot tell the input layout: the model has no nn.RNN/LSTM/GRU or "
                "nn.MultiheadAttention to read batch_first from. Pass batch_first=True for "
                "(batch, time) input or batch_first=False for time-major (time, batch) input"
            )
        if len(set(seen.values())) > 1:
            raise ValueError(
                f"the model's layers disagree on batch_first ({seen}): pass batch_first= "
                "for the layout of the model's input"
            )
        value = next(iter(seen.values()))
        self.provenance["batch_first"] = f"inferred: batch_first of {', '.join(seen)}"
        return value

    def _target_arg_given(self, hints: dict) -> bool:
        """An encoder-decoder (its forward takes the target): its layers read two
        sequences, so the first recurrent layer says nothing about the input's layout."""
        names = self._param_names()[1:]
        return "target_arg" in hints or any(n in _TARGET_NAMES for n in names)

    def _param_names(self) -> list[str]:
        return [p.name for p in self._params]

    # ------------------------------------------------------------------ layout
    def to_batch_first(self, x: Tensor) -> Tensor:
        """Input in the model's own layout -> batch-first ``(batch, time, ...)``:
        time-major input is transposed, channels-first ``(batch, features, time)`` too."""
        if self.channels_first and x.dim() == 3:
            return x.transpose(1, 2)
        return x if self.batch_first or x.dim() < 2 else x.transpose(0, 1)

    def to_native(self, x: Tensor) -> Tensor:
        """Batch-first input ``(batch, time, ...)`` -> the model's own layout (the inverse
        of :meth:`to_batch_first`)."""
        return self.to_batch_first(x)  # each layout change is a transposition

    def check_channels(self, x: Tensor) -> None:
        """Refuse to guess the layout of continuous input ``x`` (batch-first view)
        ``(batch, time, features)`` when the model reads it with an ``nn.Conv1d`` whose
        channels match the time axis and not the features: a ``(batch, channels, time)``
        model would otherwise be explained with time and features swapped."""
        if self.channels_first is not None or x.dim() != 3 or not self.batch_first:
            return
        time, features = x.shape[1], x.shape[2]
        for name, sub in self.module.named_modules():
            if isinstance(sub, nn.Conv1d) and sub.in_channels == time != features:
                raise ValueError(
                    f"{name} is an nn.Conv1d with in_channels={time}, the size of the input's "
                    f"second axis (read as time, with {features} features): if the model reads "
                    "(batch, channels, time), pass channels_first=True; if the input really "
                    "is (batch, time, features), pass channels_first=False"
                )

    def _find_length_args(self, hints: dict, source: Callable) -> tuple[str | None, str | None]:
        names = self._param_names()[1:]
        lengths_arg = mask_arg = None
        for key in ("lengths_arg", "mask_arg"):
            if key in hints:
                value = hints[key]
                if value is not None and value not in names and not _takes_any_keyword(self.module):
                    raise ValueError(
                        f"{key}={value!r} is not a parameter of the model's forward{tuple(names)}"
                    )
                self.provenance[key] = source(key)
        if "lengths_arg" in hints:
            lengths_arg = hints["lengths_arg"]
        else:
            lengths_arg = next((n for n in names if n in _LENGTH_NAMES), None)
            if lengths_arg:
                self.provenance["lengths_arg"] = "inferred: the forward's signature"
        if "mask_arg" in hints:
            mask_arg = hints["mask_arg"]
        elif not lengths_arg:
            mask_arg = next((n for n in names if n in _MASK_REAL + _MASK_PAD), None)
            if mask_arg:
                self.provenance["mask_arg"] = "inferred: the forward's signature"
        for key, value in (("lengths_arg", lengths_arg), ("mask_arg", mask_arg)):
            if value is None and key not in self.provenance:
                self.provenance[key] = "inferred: the forward takes none"
        return lengths_arg, mask_arg

    def _find_mask_marks(self, hints: dict, source: Callable) -> str | None:
        """What a True / 1 in the forward's padding mask marks: ``"real"`` tokens (Hugging
        Face's ``attention_mask``) or ``"padding"`` (PyTorch's ``*key_padding_mask``)."""
        marks = hints.get("mask_marks")
        if marks is not None and marks not in ("real", "padding"):
            raise ValueError(f"mask_marks must be 'real' or 'padding', got {marks!r}")
        if self.mask_arg is None:
            if marks is not None:
                raise ValueError("mask_marks= describes a padding mask: pass mask_arg= too")
            return None
        if marks is not None:
            self.provenance["mask_marks"] = source("mask_marks")
            return marks
        if self.mask_arg in _MASK_PAD:
            self.provenance["mask_marks"] = "inferred: PyTorch's name (True = padding)"
            return "padding"
        if self.mask_arg in _MASK_REAL:
            self.provenance["mask_marks"] = "inferred: the name (1 = real token, as attention_mask)"
            return "real"
        raise ValueError(
            f"what does a True / 1 in the forward's {self.mask_arg!r} mark? pass "
            "mask_marks='real' (1 at real tokens, as Hugging Face's attention_mask) or "
            "mask_marks='padding' (True at padding, as PyTorch's src_key_padding_mask)"
        )

    def _find_target(self, hints: dict, source: Callable) -> None:
        """Encoder-decoders: the forward's target argument, its teacher-forcing switch, the
        target embedding and the offset of the first real output step."""
        names = self._param_names()[1:]
        self.target_arg: str | None = None
        if "target_arg" in hints:
            if hints["target_arg"] not in names:
                raise ValueError(
                    f"target_arg={hints['target_arg']!r} is not a parameter of the model's "
                    f"forward{tuple(names)}"
                )
            self.target_arg = hints["target_arg"]
            self.provenance["target_arg"] = source("target_arg")
        else:
            self.target_arg = next((n for n in names if n in _TARGET_NAMES), None)
            if self.target_arg:
                self.provenance["target_arg"] = "inferred: the forward's signature"
        self.forcing_arg = next((n for n in names if n in _FORCING_NAMES), None)
        offset = hints.get("output_offset")
        if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int)):
            raise ValueError(f"output_offset must be an int >= 0, got {offset!r}")
        if offset is not None and offset < 0:
            raise ValueError(f"output_offset must be an int >= 0, got {offset!r}")
        self.output_offset: int | None = offset
        found: nn.Module | None = None
        self.target_embedding_name: str | None = None
        if self.target_arg is not None:
            named = dict(self.module.named_modules())
            hint = hints.get("target_embedding")
            if isinstance(hint, nn.Module):
                hint = next((n for n, m in named.items() if m is hint), None)
                if hint is None:
                    raise ValueError("target_embedding= is a module that is not part of the model")
            others = [
                n
                for n, m in named.items()
                if isinstance(m, nn.Embedding) and m is not self.embedding
            ]
            if hint is None and len(others) != 1:
                raise ValueError(
                    f"cannot tell the decoder's target embedding among {others}: pass "
                    "target_embedding= naming the nn.Embedding that embeds the target tokens"
                )
            name = hint if hint is not None else others[0]
            if name not in named:
                raise ValueError(f"target_embedding={name!r} names no submodule; try {others}")
            self.target_embedding_name, found = name, named[name]
        object.__setattr__(self, "_target_embedding", found)

    @property
    def target_embedding(self) -> nn.Module | None:
        """The decoder's target ``nn.Embedding`` (encoder-decoders), else ``None``."""
        return self._target_embedding

    def recorded_attention(self, run: Callable[[], Any]) -> Tensor:
        """The cross-attention the model records while ``run()`` calls it, averaged over
        heads: ``(batch, query, key)``. Models keep it in ``attention_maps`` (as
        ``captum_rnn.models.Seq2SeqAttention`` does); this is the one place that asks.

        Raises:
            ValueError: when the model records no attention.
        """
        name = type(self.module).__name__
        if not isinstance(getattr(self.module, "attention_maps", None), list):
            raise ValueError(
                f"{name} records no attention_maps: method='attention' needs a model that "
                "stores its cross-attention (e.g. captum_rnn.models.Seq2SeqAttention)"
            )
        with torch.no_grad():
            run()
        maps = self.module.attention_maps
        if not maps:
            raise ValueError(f"{name}'s forward recorded no attention_maps")
        return maps[-1].mean(dim=1)

    @property
    def is_seq2seq(self) -> bool:
        """True for an encoder-decoder: the forward takes the target (``target_arg``)."""
        return self.target_arg is not None

    def _find_forward_kwargs(self, hints: dict, source: Callable) -> dict[str, Any]:
        extra = hints.get("forward_kwargs") or {}
        if not isinstance(extra, Mapping):
            raise TypeError(
                "forward_kwargs must map forward parameters to values (or to callables of "
                f"the batch size), got {type(extra).__name__}"
            )
        names = self._param_names()[1:]
        try:
            open_ended = any(
                p.kind is p.VAR_KEYWORD
                for p in inspect.signature(self.module.forward).parameters.values()
            )
        except (TypeError, ValueError):
            open_ended = True
        taken = {self.lengths_arg, self.mask_arg, self.target_arg} - {None}
        for key in extra:
            if key in taken:
                raise ValueError(f"forward_kwargs sets {key!r}, which captum-rnn fills itself")
            if key not in names and not open_ended:
                raise ValueError(
                    f"forward_kwargs names {key!r}, not a parameter of the model's forward"
                    f"{tuple(names)}"
                )
        if extra:
            self.provenance["forward_kwargs"] = source("forward_kwargs")
        return dict(extra)

    def extra_kwargs(self, batch: int, device: torch.device) -> dict[str, Any]:
        """The ``forward_kwargs`` hint for a batch of ``batch`` sequences: a callable value
        is called with the batch size (e.g. the model's ``init_hidden``); tensors are moved
        to ``device``."""

        def to_device(value: Any) -> Any:
            if isinstance(value, Tensor):
                return value.to(device)
            if isinstance(value, (tuple, list)):
                return type(value)(to_device(v) for v in value)
            return value

        return {
            key: to_device(value(batch) if callable(value) else value)
            for key, value in self.forward_kwargs.items()
        }

    def _check_required(self) -> None:
        known = {self._input_name, self.lengths_arg, self.mask_arg, self.target_arg}
        known |= set(self.forward_kwargs)
        for p in self._params[1:]:
            if p.default is p.empty and p.name not in known:
                raise ValueError(
                    f"the model's forward needs argument {p.name!r}, which captum-rnn cannot "
                    f"fill: if it takes the lengths pass lengths_arg={p.name!r}; if it takes a "
                    f"padding mask pass mask_arg={p.name!r} and mask_marks='real' (1 at real "
                    "tokens) or mask_marks='padding' (True at padding); for anything else (a hidden "
                    f"state, a flag) pass forward_kwargs={{{p.name!r}: value}}, where a callable "
                    "value gets the batch size (e.g. the model's init_hidden)"
                )

    # ------------------------------------------------------------------ properties
    @property
    def embedding(self) -> nn.Module | None:
        """The input ``nn.Embedding`` (``None`` for continuous input)."""
        return self._embedding

    @property
    def is_token_model(self) -> bool:
        """True when the model reads token ids through :attr:`embedding`."""
        return self.embedding is not None

    @property
    def vocab_size(self) -> int | None:
        """Number of token ids the embedding accepts (``None`` for continuous input)."""
        return getattr(self.embedding, "num_embeddings", None) if self.embedding else None

    @property
    def is_classifier(self) -> bool:
        """True unless the output is regression (``None`` output counts as unknown: False)."""
        return self.output in ("logits", "probs", "log_probs")

    @property
    def takes_lengths(self) -> bool:
        """True when the forward can be told which steps are padding."""
        return self.lengths_arg is not None or self.mask_arg is not None

    def __repr__(self) -> str:
        rows = [
            ("module", type(self.module).__name__, "given"),
            ("pad_id", self.pad_id, self.provenance.get("pad_id", "continuous input")),
            ("batch_first", self.batch_first, self.provenance.get("batch_first")),
            ("embedding", self.embedding_name, self.provenance.get("embedding")),
            ("num_classes", self.num_classes, self.provenance.get("num_classes", "not yet seen")),
            ("output", self.output, self.provenance.get("output", "not yet seen")),
            ("lengths_arg", self.lengths_arg, self.provenance.get("lengths_arg")),
            ("mask_arg", self.mask_arg, self.provenance.get("mask_arg")),
        ]
        if self.mask_arg is not None:
            rows.append(("mask_marks", self.mask_marks, self.provenance.get("mask_marks")))
        if self.channels_first is not None:
            rows.append(
                ("channels_first", self.channels_first, self.provenance.get("channels_first"))
            )
        if self.forward_kwargs:
            rows.append(
                ("forward_kwargs", self.forward_kwargs, self.provenance.get("forward_kwargs"))
            )
        body = "".join(f"\n  {k}={v!r}  # {how}" for k, v, how in rows)
        return f"SequenceModel({body}\n)"

    # ------------------------------------------------------------------ outputs
    def check_trailing_padding(
        self, row: Tensor, lengths: Tensor, n: int, ids: Tensor | None = None
    ) -> bool:
        """Whether the outputs of one batch-first ``row`` ``(1, time, ...)``, whose real
        steps are its first ``n``, stay the same with the padding after them cut off.

        A forward that packs, or masks a one-way RNN, ignores that padding; one told no
        lengths, or running a bidirectional RNN over the padded batch under a mask, reads
        it. The answer is structural, so it is asked once per module and way of calling it
        (two one-row forwards) and kept in :attr:`ignores_trailing_padding`. Whoever batches
        sequences of different lengths (perturbation metrics, the rules oracle) asks it.

        Args:
            row: batch-first input ``(1, time, ...)`` with padding after step ``n``.
            lengths: ``(1,)`` its length, as the model is told it.
            n: its real steps.
            ids: its token ids when ``row`` is embedded.

        Returns:
            ``True`` when cutting the padding changes no output.
        """
        key = (self.lengths_arg, self.mask_arg, self.batch_first, self.output_steps)
        known = _TRAILING_PADDING.setdefault(self.module, {})
        if key not in known:
            with torch.no_grad():
                full = self(row, lengths, ids)
                cut = self(row[:, :n], lengths, None if ids is None else ids[:, :n])
            known[key] = cut.shape == full.shape and bool(
                torch.allclose(full, cut, rtol=1e-5, atol=1e-6, equal_nan=True)
            )
        self.ignores_trailing_padding = known[key]
        return known[key]

    def observe(self, outputs: Tensor) -> None:
        """Infer ``output`` and ``num_classes`` from outputs ``(batch, width)`` once.

        Where the model declares no output kind, the loss it trains with decides (see
        :func:`~captum_rnn.models._output_kind.loss_evidence`), checked against the values;
        without one, the values do: rows summing to 1 are probabilities, rows whose
        exponentials do are log-probabilities, and anything else is read as class logits
        with a warning naming ``output=`` (it could be regression values).

        Raises:
            ValueError: for one value per sequence with nothing saying what it is, for
                independent labels (a sigmoid per output), and where the loss and the
                values disagree; each names the ``output=`` to pass.
        """
        width = outputs.shape[-1]
        if self.output is None:
            self.output, self.provenance["output"] = self._infer_output(outputs.detach(), width)
        if self.num_classes is None and self.output != "regression":
            self.num_classes = 2 if width == 1 else int(width)
            self.provenance["num_classes"] = "inferred: the output's width" + (
                " (one binary logit)" if width == 1 else ""
            )

    def _infer_output(self, outputs: Tensor, width: int) -> tuple[str, str]:
        values = outputs.double()
        finite = bool(torch.isfinite(values).all())
        sums = values.sum(dim=-1)
        ones = torch.ones_like(sums)
        # rows summing to 1 count only where the forward normalises (see normalises())
        normalised = width >= 2 and finite and normalises(self.module, _delegate(self.module))
        if normalised and bool((values >= 0).all()) and torch.allclose(sums, ones, atol=1e-4):
            by_values = "probs"
        elif (
            normalised
            and bool((values <= 0).all())
            and torch.allclose(values.exp().sum(-1), ones, atol=1e-4)
        ):
            by_values = "log_probs"
        else:
            by_values = None
        name = type(self.module).__name__
        evidence = loss_evidence(self.module)
        if evidence:
            kinds = {kind_for_width(e, width) for e in evidence}
            where = "; ".join(e.where for e in evidence)
            if None in kinds:
                raise ValueError(
                    f"{name} trains its {width} outputs as independent labels ({where}), "
                    "not as one classifier's classes: pass output='regression' to explain "
                    "each label's own value (target=the label's index), or output='logits' "
                    "if the classes exclude each other"
                )
            if len(kinds) > 1:
                raise ValueError(
                    f"{name}'s losses disagree about its outputs ({where}): pass output= "
                    f"one of {OUTPUT_KINDS}"
                )
            (kind,) = kinds
            if width == 1 and any(e.kind == "logits" for e in evidence):
                raise ValueError(
                    f"{name} returns one value per sequence but trains it as class scores "
                    f"({where}): pass output='logits' (binary logit) or output='regression'"
                )
            if kind == "logits" and by_values == "log_probs":
                kind = "log_probs"  # log_softmax then cross-entropy: the same training
            elif kind in ("logits", "log_probs") and by_values not in (None, kind):
                raise ValueError(
                    f"{name}'s outputs are {_KIND_WORDS[by_values]} but it trains them as "
                    f"{_KIND_WORDS[kind]} ({where}): pass output='{by_values}' to explain "
                    f"the outputs as they are, or output='{kind}'"
                )
            if kind == "log_probs" and by_values is None:
                raise ValueError(
                    f"{name}'s outputs are not log-probabilities but it trains them with "
                    f"{where}: pass output='logits' or output='log_probs'"
                )
            return kind, f"inferred: the model's loss ({where})"
        if width == 1:
            raise ValueError(
                "the model returns one value per sequence: pass output='logits' for a "
                "binary logit (sigmoid) or output='regression'"
            )
        if by_values is not None:
            return by_values, "inferred: the first output's values"
        in_unit = finite and bool(((values >= 0) & (values <= 1)).all())
        warnings.warn(
            f"{name} returns {width} unnormalised values per sequence and holds no loss "
            "that says what they are; they are read as class logits. Pass output='logits' "
            f"to confirm, or output='regression' for {width} regression outputs"
            + (" (or for independent sigmoid labels: all values lie in [0, 1])" if in_unit else "")
            + ".",
            UserWarning,
            stacklevel=4,
        )
        return "logits", "inferred: the first output's values (not normalised; no loss found)"

    def probabilities(self, outputs: Tensor) -> Tensor:
        """Class probabilities ``(batch, classes)`` from the model's outputs.

        Raises:
            ValueError: for regression outputs, which have no probabilities.
        """
        if self.output is None:
            self.observe(outputs)
        if self.output == "regression":
            raise ValueError("a regression model's outputs are not probabilities")
        if outputs.shape[-1] == 1:  # one binary logit / probability
            p = torch.sigmoid(outputs) if self.output == "logits" else outputs
            if self.output == "log_probs":
                p = outputs.exp()
            return torch.cat([1 - p, p], dim=-1)
        if self.output == "logits":
            return torch.softmax(outputs, dim=-1)
        if self.output == "log_probs":
            return outputs.exp()
        return outputs

    def scores(self, outputs: Tensor, target: Tensor) -> Tensor:
        """The explained number per sequence: probability of ``target`` for classifiers,
        the output itself for regression."""
        if self.output is None:
            self.observe(outputs)
        if self.output == "regression":
            return outputs.gather(-1, target[:, None].to(outputs.device))[:, 0]
        probs = self.probabilities(outputs)
        return probs.gather(-1, target[:, None].to(probs.device))[:, 0]

    # ------------------------------------------------------------------ calling
    def padding_mask(self, ids: Tensor) -> Tensor:
        """``(batch, time)`` True at real tokens, wherever the padding stands."""
        return ids != self.pad_id

    def lengths_of(self, ids: Tensor) -> Tensor:
        """Number of real tokens per sequence ``(batch,)``."""
        return self.padding_mask(ids).sum(dim=1)

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, ids: Tensor | None = None
    ) -> Tensor:
        """Run the model on a batch-first batch; return ``(batch, outputs)``.

        Args:
            inputs: token ids ``(batch, time)``; or, for a token model, embeddings
                ``(batch, time, embedding_dim)`` that replace the embedding layer's output
                (then ``ids`` gives the token ids the model also sees); or continuous
                features ``(batch, time, features)``.
            lengths: true lengths ``(batch,)``; from the padding when ``None``.
            ids: the token ids behind embedded ``inputs``.
        """
        embedded = None
        if self.is_token_model and inputs.dtype.is_floating_point:
            embedded = inputs
            if ids is None or ids.shape[:2] != inputs.shape[:2]:
                raise ValueError(
                    "embedded inputs need ids= of shape (batch, time), the token ids they "
                    f"stand for; got {None if ids is None else tuple(ids.shape)}"
                )
        elif self.is_token_model:
            ids = inputs
        batch, time = inputs.shape[0], inputs.shape[1]
        if lengths is None:
            if ids is not None:
                lengths = self.lengths_of(ids)
            else:
                lengths = torch.full((batch,), time, dtype=torch.long, device=inputs.device)
        elif lengths.shape[0] != batch:
            raise ValueError(f"lengths has {lengths.shape[0]} entries for a batch of {batch}")
        x = self.to_native(ids if self.is_token_model else inputs)
        kwargs = {**self.length_kwargs(ids, lengths, time), **self.extra_kwargs(batch, x.device)}
        if embedded is None:
            return self._as_matrix(
                self._call_module(x, kwargs, batch, time, lambda: None), time, lengths
            )
        replacement = self.to_native(embedded)
        calls = []

        def substitute(_module: nn.Module, _args: Any, output: Tensor) -> Tensor:
            calls.append(1)
            if len(calls) > 1:
                raise ValueError(
                    f"{self.embedding_name} ran more than once in one forward: captum-rnn "
                    "cannot tell which call embeds the input; pass embedding= naming the "
                    "input embedding"
                )
            if output.shape != replacement.shape:
                raise ValueError(
                    f"{self.embedding_name} returned shape {tuple(output.shape)}, expected "
                    f"{tuple(replacement.shape)}: is batch_first={self.batch_first} right?"
                )
            return replacement.to(output.dtype)

        handle = self.embedding.register_forward_hook(substitute)
        try:
            return self._as_matrix(
                self._call_module(x, kwargs, batch, time, calls.clear), time, lengths
            )
        finally:
            handle.remove()

    def _call_module(
        self, x: Tensor, kwargs: dict[str, Any], batch: int, time: int, retry: Callable
    ) -> Any:
        """Call the user's model. Until one call has told, when the layout was read off a
        recurrent layer, check that this layer gets the batch and time axes where the
        layout says: a forward that transposes its input before the layer would otherwise
        be explained with batch and time swapped. ``retry()`` resets the caller's per-call
        state before a second attempt (lengths moved to the CPU)."""
        layer = None
        if not self._layout_checked and batch != time:
            kinds = (nn.RNNBase, nn.MultiheadAttention)  # the first of these that there is
            layer = next(
                (m for kind in kinds for m in self.module.modules() if isinstance(m, kind)), None
            )
        if layer is None:
            return self._invoke(x, kwargs, retry)
        seen: list[Any] = []

        def check(_module: nn.Module, args: tuple) -> None:
            # in the pre-hook: attention given swapped axes fails inside on its mask's shape
            if seen:
                return
            seen.append(True)
            received = args[0] if args else None
            if not isinstance(received, Tensor) or received.dim() != 3:
                return
            expected = (batch, time) if layer.batch_first else (time, batch)
            if tuple(received.shape[:2]) == expected[::-1]:
                layout = "batch-first" if layer.batch_first else "time-major"
                raise ValueError(
                    f"the model's {type(layer).__name__} is {layout} but received "
                    f"{tuple(received.shape[:2])}, the input's batch and time axes swapped: "
                    f"the forward transposes its input, so pass "
                    f"batch_first={not self.batch_first} for the layout of the model's input"
                )

        handle = layer.register_forward_pre_hook(check)
        try:
            out = self._invoke(x, kwargs, retry)
        finally:
            handle.remove()
        self._layout_checked = True
        return out

    def _invoke(self, x: Tensor, kwargs: dict[str, Any], retry: Callable) -> Any:
        """``module(x, **kwargs)``; a forward that packs with lengths on the input's device
        (``pack_padded_sequence`` wants them on the CPU, and the user's own loop kept them
        there) is called again with CPU lengths, and from then on always."""
        if not self._mask_checked:
            return self._invoke_checking_mask(x, kwargs, retry)
        try:
            return self.module(x, **kwargs)
        except RuntimeError as error:
            lengths = kwargs.get(self.lengths_arg) if self.lengths_arg else None
            if not isinstance(lengths, Tensor) or "CPU int64 tensor" not in str(error):
                raise
            self._lengths_on_cpu = True
            retry()
            return self.module(x, **{**kwargs, self.lengths_arg: lengths.cpu()})

    def _invoke_checking_mask(self, x: Tensor, kwargs: dict[str, Any], retry: Callable) -> Any:
        """The first call when what the mask marks was read off its name: the
        ``key_padding_mask`` the model's ``nn.MultiheadAttention`` layers get must ignore
        the padding, not the real tokens (a forward naming ``mask`` what is True at padding
        would otherwise be explained with the real tokens hidden)."""
        seen: list[tuple[str, Tensor]] = []

        def record(name: str) -> Callable:
            def hook(_module: nn.Module, args: tuple, kw: dict) -> None:
                kpm = kw.get("key_padding_mask", args[3] if len(args) > 3 else None)
                if isinstance(kpm, Tensor):
                    seen.append((name, kpm))

            return hook

        self._mask_checked = True
        handles = [
            m.register_forward_pre_hook(record(n), with_kwargs=True)
            for n, m in self.module.named_modules()
            if isinstance(m, nn.MultiheadAttention)
        ]
        try:
            out = self._invoke(x, kwargs, retry)
        finally:
            for handle in handles:
                handle.remove()
        given = kwargs[self.mask_arg]
        real = ~given.bool() if self.mask_marks == "padding" else given.bool()
        for name, kpm in seen:
            ignored = kpm if kpm.dtype == torch.bool else kpm < 0
            if ignored.shape == real.shape and torch.equal(ignored, real.to(ignored.device)):
                other = "padding" if self.mask_marks == "real" else "real"
                raise ValueError(
                    f"the model's {name} ignores the real tokens and attends to the padding: "
                    f"a True / 1 in its {self.mask_arg!r} argument was read as marking "
                    f"{self.mask_marks} tokens ({self.provenance.get('mask_marks')}); pass "
                    f"mask_marks={other!r} if it marks {other} tokens"
                )
        return out

    def length_kwargs(
        self, ids: Tensor | None, lengths: Tensor, time: int | None = None
    ) -> dict[str, Any]:
        """The forward's keyword telling the padding: ``{lengths_arg: lengths}``, a mask
        under ``mask_arg`` (from ``ids``, else from ``lengths`` over ``time`` steps), or ``{}``."""
        if self.lengths_arg:
            return {self.lengths_arg: lengths.cpu() if self._lengths_on_cpu else lengths}
        if not self.mask_arg:
            return {}
        if ids is not None:
            real = self.padding_mask(ids)
        else:
            real = torch.arange(time, device=lengths.device)[None, :] < lengths[:, None]
        return {self.mask_arg: ~real if self.mask_marks == "padding" else real.long()}

    def _as_matrix(self, out: Any, time: int, lengths: Tensor) -> Tensor:
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
            out = out[0]
        elif isinstance(out, dict) and isinstance(out.get("logits"), Tensor):
            out = out["logits"]
        elif not isinstance(out, Tensor) and isinstance(getattr(out, "logits", None), Tensor):
            out = out.logits  # an output record (dataclass, namedtuple) with a logits field
        if not isinstance(out, Tensor):
            raise TypeError(
                f"the model returned {type(out).__name__}; expected a tensor of outputs "
                "(or a tuple / dict whose first item / 'logits' is one, or an object with a "
                "'logits' tensor)"
            )
        if out.dim() == 1:
            out = out[:, None]
        if out.dim() == 3 and self.output_steps:
            # one output per step, in the model's own layout: (steps, batch, classes) when
            # the model is time-major; step-major flattening: column = step * classes + c
            out = out if self.batch_first else out.transpose(0, 1)
            steps = out.shape[1]
            if self.takes_lengths and steps < time and steps == int(lengths.max()):
                # pad_packed_sequence without total_length returns as many steps as the
                # longest sequence of this call, not of the input: the missing steps are
                # padding everywhere, so they get zero outputs and the step columns stay
                # those of the input's steps whatever the batch
                out = torch.nn.functional.pad(out, (0, 0, 0, time - steps))
            self.step_shape = (out.shape[1], out.shape[2])
            return out.reshape(out.shape[0], -1)
        if out.dim() == 3 and self.output_steps is None:
            raise ValueError(
                f"the model returned shape {tuple(out.shape)}: one output per step? pass "
                "output_steps=True to explain every step (a tagger or forecaster), e.g. "
                "explain(model, inputs, outputs='all', output_steps=True)"
            )
        if out.dim() != 2:
            raise ValueError(
                f"the model returned shape {tuple(out.shape)}; expected (batch, outputs): "
                "one output vector per sequence"
            )
        return out

    def embed(self, ids: Tensor) -> Tensor:
        """The embedding of batch-first ``ids`` ``(batch, time, dim)``, detached."""
        return self.to_batch_first(self.embedding(self.to_native(ids)).detach())


def adapt_if_readable(model: nn.Module, **hints: Any) -> SequenceModel | None:
    """:func:`adapt` where the model can be read, else ``None`` (for entry points that also
    take plain callables or feature extractors). With hints, or a ``SequenceModel``, the
    contract's errors are raised as they are: they name the hint to pass."""
    given = {k: v for k, v in hints.items() if v is not None}
    if isinstance(model, SequenceModel) or given:
        return adapt(model, **given)
    try:
        return adapt(model)
    except (TypeError, ValueError):
        return None


def readable_module(model: Any, **hints: Any) -> tuple[nn.Module, SequenceModel | None]:
    """For classes that keep the user's module: the module and, where the contract can
    read it (:func:`adapt_if_readable`), its :class:`SequenceModel`; a ``SequenceModel``
    given is unwrapped to its module.

    Raises:
        TypeError: when ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seq = adapt_if_readable(model, **hints)
    return (model if seq is None else seq.module), seq


def pop_hints(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the contract's hints from ``kwargs`` and return the ones that were given.

    Entry points take the hints among their keyword arguments and hand them to
    :func:`adapt`; what is left are their own options.

    Example:
        >>> options = {"pad_id": 1, "n_steps": 32, "output": None}
        >>> pop_hints(options), options
        ({'pad_id': 1}, {'n_steps': 32})
    """
    hints = {name: kwargs.pop(name) for name in HINT_NAMES if name in kwargs}
    return {k: v for k, v in hints.items() if v is not None}


def adapt(
    model: nn.Module,
    *,
    pad_id: int | None = None,
    batch_first: bool | None = None,
    output: str | None = None,
    embedding: str | nn.Module | None = None,
    num_classes: int | None = None,
    lengths_arg: str | None = None,
    mask_arg: str | None = None,
    mask_marks: str | None = None,
    output_steps: bool | None = None,
    target_arg: str | None = None,
    target_embedding: str | nn.Module | None = None,
    output_offset: int | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    channels_first: bool | None = None,
) -> SequenceModel:
    """Turn a user's sequence model into a :class:`SequenceModel` (idempotent).

    Args:
        model: any ``nn.Module`` or ``LightningModule`` whose forward takes a batch of
            sequences first; or a :class:`SequenceModel` (returned as is, or re-adapted
            when hints are given).
        pad_id: padding token id, when the embedding has no ``padding_idx``.
        batch_first: the layout of the model's input, when its layers do not say it.
        output: ``"logits"``, ``"probs"``, ``"log_probs"`` or ``"regression"``; by
            default read off the loss the model trains with, else off its outputs.
            Independent labels (a sigmoid per output): ``"regression"`` explains each
            label's own value.
        embedding: name (or module) of the input ``nn.Embedding`` when there are several;
            ``False`` for a model that reads features although it holds embeddings.
        num_classes: number of classes when the output width does not tell it.
        lengths_arg: the forward's parameter that takes lengths ``(batch,)``.
        mask_arg: the forward's parameter that takes a padding mask ``(batch, time)``
            (``mask``/``attention_mask``: 1 = real; ``*key_padding_mask``: True = pad).
        mask_marks: what a True / 1 in that mask marks: ``"real"`` tokens or ``"padding"``
            (read off the name otherwise; checked against ``nn.MultiheadAttention``).
        output_steps: ``True`` for a model returning one output per step
            ``(batch, steps, classes)`` (time-major models: ``(steps, batch, classes)``).
        target_arg: an encoder-decoder's forward parameter taking the target ids (teacher
            forcing; a ``teacher_forcing_ratio`` parameter is set to 1 when explaining).
        target_embedding: name (or module) of the decoder's target ``nn.Embedding``.
        output_offset: the index of the first real output step (1 for tutorial models
            that emit a dummy step 0 before the first prediction).
        forward_kwargs: other arguments the forward needs, passed on every call, e.g.
            ``{"hidden": None}``; a callable value is called with the batch size, e.g.
            ``{"hidden": model.init_hidden}`` (its tensors are moved to the input's device).
        channels_first: ``True`` for continuous input laid out ``(batch, features, time)``
            (a model that starts with ``nn.Conv1d``); explanations are per time step all
            the same. Asked for when an ``nn.Conv1d`` makes the layout ambiguous.

    Returns:
        A :class:`SequenceModel`; ``print`` it to see what was given and inferred.

    Raises:
        ValueError: naming the hint to pass where a property cannot be inferred.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class Tagger(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.emb = nn.Embedding(10, 4, padding_idx=1)
        ...         self.rnn = nn.GRU(4, 8, batch_first=True)
        ...         self.fc = nn.Linear(8, 3)
        ...     def forward(self, text, text_lengths):
        ...         return self.fc(self.rnn(self.emb(text))[1][-1])
        >>> seq = adapt(Tagger())
        >>> seq.pad_id, seq.batch_first, seq.lengths_arg
        (1, True, 'text_lengths')
    """
    hints = {
        "pad_id": pad_id,
        "batch_first": batch_first,
        "output": output,
        "embedding": embedding,
        "num_classes": num_classes,
        "lengths_arg": lengths_arg,
        "mask_arg": mask_arg,
        "mask_marks": mask_marks,
        "output_steps": output_steps,
        "target_arg": target_arg,
        "target_embedding": target_embedding,
        "output_offset": output_offset,
        "forward_kwargs": forward_kwargs,
        "channels_first": channels_first,
    }
    given = {k: v for k, v in hints.items() if v is not None}
    if isinstance(model, SequenceModel):
        if not given:
            return model
        return SequenceModel(model.module, **{**model.hints, **given})
    return SequenceModel(model, **given)
