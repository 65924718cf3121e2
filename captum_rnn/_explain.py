"""``captum_rnn.explain``: one call from a model and some sequences to explanations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from captum_rnn._explain_seq2seq import explain_seq2seq
from captum_rnn._utils.finite import fill_non_finite_padding
from captum_rnn._utils.grad import gradient_context, prepare_tensors
from captum_rnn._utils.state import preserve_state
from captum_rnn._utils.targets import resolve_target
from captum_rnn.attr._methods import (
    DEFAULT_MEMORY_BUDGET,
    activation_bytes,
    check_options,
    resolve_method,
)
from captum_rnn.attr._outputs import attribute_outputs, is_unidirectional
from captum_rnn.explanation import Explanation, Explanations
from captum_rnn.models.protocol import SequenceModel, adapt, pop_hints

__all__ = ["explain", "prepare_inputs"]


def _as_sequences(inputs: Any, vocab: Any) -> list[Tensor]:
    """Turn strings or lists of ids into a list of 1-D id tensors."""
    if isinstance(inputs, Mapping):
        raise TypeError(
            f"inputs is a mapping with keys {sorted(map(str, inputs))} (a tokenizer's batch?): "
            "pass the token ids themselves, e.g. explain(model, batch['input_ids']); the "
            "model's mask is built from pad_id"
        )
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    sequences = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            if vocab is None:
                raise TypeError("inputs are strings: pass vocab= to turn them into token ids")
            item = vocab.encode(item)
        seq = torch.as_tensor(item)
        if seq.numel() == 0:
            raise ValueError(f"inputs[{i}] is empty: every sequence needs at least one token")
        if seq.dim() != 1 or seq.dtype.is_floating_point:
            raise TypeError(
                f"inputs[{i}] must be a string or a 1-D sequence of token ids, "
                f"got shape {tuple(seq.shape)} and dtype {seq.dtype}"
            )
        sequences.append(seq.long())
    if not sequences:
        raise ValueError("inputs is empty: pass at least one sequence")
    return sequences


def prepare_inputs(
    model: SequenceModel, inputs: Any, lengths: Any = None, vocab: Any = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Check and batch ``inputs`` for ``model``; return them batch-first on its device.

    Args:
        model: a :class:`~captum_rnn.models.SequenceModel` (see :func:`captum_rnn.adapt`).
        inputs: token ids in the model's own layout (``(batch, time)``, or
            ``(time, batch)`` for a time-major model) or ``(time,)``; a string or list of
            strings (with ``vocab``); a list of id lists; or continuous input
            ``(batch, time, features)`` (time-major: ``(time, batch, features)``) or
            ``(time, features)``.
        lengths: optional true lengths ``(batch,)``; from the padding for token ids.
        vocab: a ``captum_rnn.data.Vocabulary`` for string input.

    Returns:
        ``(inputs, lengths, real)``: a batch-first padded batch, a LongTensor of lengths
        and a boolean ``(batch, time)`` mask of the real (non-padding) steps.

    Raises:
        TypeError/ValueError: naming the argument that does not fit.
    """
    device = next(model.parameters()).device
    if model.is_token_model:
        if not isinstance(inputs, Tensor):
            sequences = _as_sequences(inputs, vocab)
            inputs = torch.nn.utils.rnn.pad_sequence(
                sequences, batch_first=True, padding_value=model.pad_id
            )
        elif inputs.dim() == 2:
            inputs = model.to_batch_first(inputs)
        if inputs.dtype not in (torch.int64, torch.int32, torch.int16):
            raise TypeError(
                f"inputs must be token ids (an int64, int32 or int16 tensor) for this token "
                f"model, got dtype {inputs.dtype}"
            )
        if inputs.dim() == 1:
            inputs = inputs.unsqueeze(0)
        if inputs.dim() != 2:
            raise ValueError(
                f"inputs must be token ids of shape (batch, time) or (time,), "
                f"got shape {tuple(inputs.shape)}"
            )
        if inputs.shape[0] == 0 or inputs.shape[1] == 0:
            raise ValueError(f"inputs is empty (shape {tuple(inputs.shape)})")
        inputs = inputs.long()
        low, high, size = int(inputs.min()), int(inputs.max()), model.vocab_size
        if low < 0 or (size is not None and high >= size):
            raise ValueError(
                f"inputs holds token id {low if low < 0 else high} outside the vocabulary "
                f"(the embedding's range [0, {size}))"
            )
        real = model.padding_mask(inputs)
        empty = ~real.any(dim=1)
        if bool(empty.any()):
            raise ValueError(f"inputs[{int(empty.nonzero()[0])}] is empty: it holds only padding")
        counted = real.sum(dim=1)
        if lengths is not None:
            lengths = _check_lengths(lengths, inputs.shape[0], inputs.shape[1])
            if not torch.equal(lengths.cpu(), counted.cpu()):
                raise ValueError(
                    f"lengths {lengths.tolist()} disagree with the padding "
                    f"(pad_id={model.pad_id}) in inputs, which gives {counted.tolist()}"
                )
        lengths = counted
    else:
        if not isinstance(inputs, Tensor):
            inputs = torch.as_tensor(inputs)
        if not inputs.dtype.is_floating_point:
            raise TypeError(
                f"inputs must be a float tensor (batch, time, features) for this "
                f"continuous model, got dtype {inputs.dtype}"
            )
        if inputs.dim() == 2:
            inputs = inputs.unsqueeze(1 if not model.batch_first else 0)
        if inputs.dim() != 3:
            raise ValueError(
                f"inputs must have shape (batch, time, features) or (time, features), "
                f"got {tuple(inputs.shape)}"
            )
        inputs = model.to_batch_first(inputs)
        if inputs.shape[0] == 0 or inputs.shape[1] == 0:
            raise ValueError(f"inputs is empty (shape {tuple(inputs.shape)})")
        model.check_channels(inputs)
        batch, time = inputs.shape[0], inputs.shape[1]
        if lengths is not None:
            lengths = _check_lengths(lengths, batch, time)
        # NaN padding (as tslearn pads) becomes 0; NaN at a real step is an error
        inputs = fill_non_finite_padding(inputs, lengths)
        if lengths is None:
            lengths = torch.full((batch,), time, dtype=torch.long)
        if not model.takes_lengths and bool((lengths < time).any()):
            raise ValueError(
                "lengths are shorter than the batch but the model's forward takes no "
                "lengths or mask: pass sequences of one length, or lengths_arg= / mask_arg= "
                "naming the forward's parameter"
            )
    inputs, lengths = inputs.to(device), lengths.to(device)
    real = torch.arange(inputs.shape[1], device=device)[None, :] < lengths[:, None]
    if model.is_token_model:
        real = model.padding_mask(inputs)
    return inputs, lengths, real


def _check_lengths(lengths: Any, batch: int, time: int) -> Tensor:
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if int(lengths.min()) < 1 or int(lengths.max()) > time:
        raise ValueError(f"lengths must be in [1, {time}], got {lengths.tolist()}")
    return lengths.long()


def _baselines(model: SequenceModel, baselines: Any, inputs: Tensor, embedded: Tensor) -> Tensor:
    """The reference in the space the RNN reads: padding embeddings (token models) or
    zeros (continuous models) unless the caller gives token ids, one token id or a tensor."""
    if baselines is None:
        if model.is_token_model:
            return model.embed(torch.full_like(inputs, model.pad_id))
        return torch.zeros_like(embedded)
    if isinstance(baselines, int) and not isinstance(baselines, bool):
        if not model.is_token_model:
            raise TypeError("baselines must be a tensor for continuous input, got an int")
        if not 0 <= baselines < model.vocab_size:
            raise ValueError(f"baselines token id {baselines} is outside [0, {model.vocab_size})")
        ids = torch.where(inputs == model.pad_id, inputs, torch.full_like(inputs, baselines))
        return model.embed(ids)
    baselines = torch.as_tensor(baselines, device=embedded.device)
    if model.is_token_model and not baselines.dtype.is_floating_point:
        return model.embed(_batch_first(model, baselines, inputs, "baselines of token ids"))
    baselines = _batch_first(model, baselines, embedded, "baselines")
    if not bool(torch.isfinite(baselines).all()):
        raise ValueError("baselines contains NaN or infinite values")
    return baselines.to(embedded.dtype)


def _batch_first(model: SequenceModel, baselines: Tensor, like: Tensor, what: str) -> Tensor:
    """``baselines`` in the batch-first layout of ``like``: a time-major model's baselines
    (the model's own layout) are transposed; any other shape is an error."""
    if baselines.dim() == like.dim():
        baselines = model.to_batch_first(baselines)
    if baselines.shape != like.shape:
        raise ValueError(
            f"{what} must have shape {tuple(like.shape)} (batch-first), "
            f"got {tuple(baselines.shape)}"
        )
    return baselines


def explain(
    model: nn.Module,
    inputs: Any,
    method: str = "integrated_gradients",
    target: Any = None,
    vocab: Any = None,
    *,
    lengths: Any = None,
    baselines: Any = None,
    labels: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    outputs: Any = None,
    **kwargs: Any,
) -> Explanations:
    """Explain a model's outputs for some sequences with one attribution method.

    Works on any sequence model through the model contract (:func:`captum_rnn.adapt`):
    the hints ``pad_id``, ``batch_first``, ``output``, ``embedding``, ``num_classes``,
    ``lengths_arg`` and ``mask_arg`` are passed to it. Token models are explained in
    the embedding's output space, the way ``LayerIntegratedGradients`` does (the model's
    own forward runs on the ids; only the embedding's output is replaced). Gradient
    methods run inside :func:`captum_rnn.gradient_context`, so this works in eval mode
    on CUDA, inside ``torch.inference_mode()`` and on tensors made there. The model is
    in eval mode for the call and every submodule's mode comes back as it was.

    Args:
        model: any ``nn.Module`` / ``LightningModule`` over sequences, or a
            ``SequenceModel``.
        inputs: token ids in the model's own layout, ``(time,)``, strings (with
            ``vocab``), lists of ids, or continuous input ``(batch, time, features)``
            (``(time, batch, features)`` for a time-major model).
        method: a function ``fn(model, inputs, lengths, target)`` returning attributions
            (see :class:`~captum_rnn.attr.CallableMethod`), or a registered name:
            ``"integrated_gradients"`` (default), ``"saliency"``,
            ``"input_x_gradient"``, ``"deeplift"``, ``"gradient_shap"``,
            ``"feature_ablation"``, ``"occlusion"``, ``"lime"`` or ``"kernel_shap"``
            (see ``captum_rnn.attr.available_methods()``).
        target: output index to explain: an int, one per sequence, or ``None`` for the
            predicted class (regression: output 0; a one-logit binary model: its logit).
            For an encoder-decoder, the target sentences ``<s> y_1 .. y_n`` as ids (every
            token explained on the source and the prefix; ``None`` decodes greedily);
            its methods are ``"integrated_gradients"``, ``"feature_ablation"``,
            ``"occlusion"``, ``"kernel_shap"`` and ``"attention"``, with ``contrast=``.
        vocab: turns strings into ids and ids back into tokens.
        lengths: true lengths; from the padding for token ids.
        baselines: reference input: ``None`` (padding embedding / zeros), a token id put
            at every real position, token ids like ``inputs``, or a tensor in the
            embedded space.
        labels: optional true labels, stored on the explanations.
        feature_names: names of continuous input features, for plots.
        class_names: names of the classes, for titles and reports.
        outputs: for a model with one output per step (a tagger returning
            ``(batch, steps, classes)``, a forecaster returning ``(batch, horizon)`` with
            ``output="regression"`` or ``(batch, horizon, features)``): which output steps
            to explain, ``"all"``, a list of step indices or a ``slice``. ``None``
            explains every step of a per-step output and one output otherwise. Each
            explanation then has one row of scores per output step
            (``Explanation.output_labels``); ``target`` is the class per step (``None``:
            the predicted one; an int; or a ``(batch, steps)`` tensor), for regression
            with features the feature explained at each step (default 0 when there is one).
        kwargs: the model contract's hints where the model does not say them
            (``pad_id``, ``batch_first``, ``output``, ``embedding``, ``num_classes``,
            ``lengths_arg``, ``mask_arg``: see :func:`captum_rnn.adapt`), and the method's
            options, e.g. ``n_steps``, ``max_steps``, ``rtol`` for IG, ``n_samples`` for
            Lime.

    Returns:
        :class:`~captum_rnn.Explanations`, one :class:`~captum_rnn.Explanation` per
        sequence with padding stripped (wherever it stands).

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4)
        >>> [e] = explain(model, torch.tensor([[4, 5, 6, 0]]))
        >>> len(e.scores)
        3
    """
    hints = pop_hints(kwargs)
    hints.setdefault("output_steps", True)  # per-step outputs are recognised by their rank
    seq = adapt(model, **hints)
    if seq.is_seq2seq:  # an encoder-decoder: every target token (captum_rnn/_explain_seq2seq.py)
        with preserve_state(seq.module), gradient_context(seq.module):
            src = prepare_inputs(seq, prepare_tensors(inputs), prepare_tensors(lengths), vocab)
            return explain_seq2seq(
                seq, *src[:2], method, target, vocab, baselines=baselines, labels=labels, **kwargs
            )
    seq.step_shape = None
    method_cls = resolve_method(method)
    check_options(method_cls, kwargs)
    with preserve_state(seq.module), gradient_context(seq.module):
        inputs = prepare_tensors(inputs)
        lengths = prepare_tensors(lengths)
        baselines = prepare_tensors(baselines)
        inputs, lengths, real = prepare_inputs(seq, inputs, lengths, vocab)
        if labels is not None and len(labels) != inputs.shape[0]:
            raise ValueError(f"labels must have {inputs.shape[0]} entries, got {len(labels)}")
        embedded = seq.embed(inputs) if seq.is_token_model else inputs
        reference = _baselines(seq, baselines, inputs, embedded)
        first = _first_forward(seq, inputs, lengths)
        if seq.step_shape is not None or outputs is not None:
            return _explain_outputs(
                seq, method_cls, inputs, lengths, real, embedded, reference, first, target,
                outputs, vocab, labels, feature_names, class_names, kwargs,
            )  # fmt: skip
        outputs = first
        seq.observe(outputs)
        if not bool(torch.isfinite(outputs).all()):
            bad = int((~torch.isfinite(outputs)).any(dim=-1).nonzero()[0])
            raise ValueError(f"the model returned NaN or infinite outputs for inputs[{bad}]")
        one_logit = seq.is_classifier and outputs.shape[-1] == 1
        if one_logit:
            if target is not None and not (isinstance(target, int) and target == 1):
                raise ValueError(
                    "the model has one output logit: it is explained as the evidence for "
                    "class 1; pass target=None or target=1"
                )
            target = torch.zeros(outputs.shape[0], dtype=torch.long, device=outputs.device)
        else:
            target = resolve_target(target, outputs, seq.is_classifier)
        ids = inputs if seq.is_token_model else None
        result = method_cls(seq, ids=ids).attribute(embedded, reference, target, lengths, **kwargs)

    del embedded, reference  # large batches: free what is no longer needed
    attributions = (result.attributions.detach() * real[..., None]).cpu()
    if result.step_scores is not None:
        step_scores = (result.step_scores.to(real.device) * real).detach().cpu().double()
    else:  # summed in float64 a few rows at a time (no float64 copy of the whole batch)
        step_scores = torch.cat([a.double().sum(dim=-1) for a in attributions.split(64)])
    probabilities = seq.probabilities(outputs.double()).cpu() if seq.is_classifier else None
    outputs_cpu, target_cpu, real = outputs.detach().double().cpu(), target.cpu(), real.cpu()
    explanations = Explanations()
    for i in range(inputs.shape[0]):
        keep = real[i].nonzero()[:, 0]
        if seq.is_token_model:
            ids_i = inputs[i].cpu()[keep].tolist()
            tokens = vocab.decode(ids_i) if vocab is not None else [str(t) for t in ids_i]
            feature_scores = None
        else:
            tokens = [f"t{j}" for j in range(len(keep))]
            feature_scores = attributions[i, keep].double().tolist()
        predicted = int(probabilities[i].argmax()) if probabilities is not None else None
        explanations.append(
            Explanation(
                tokens=list(tokens),
                scores=step_scores[i, keep].tolist(),
                method=method_cls.name,
                target=1 if one_logit else int(target_cpu[i]),
                predicted=predicted,
                probability=float(probabilities[i, predicted]) if predicted is not None else None,
                output=float(outputs_cpu[i, target_cpu[i]]),
                delta=float(result.delta[i]) if result.delta is not None else None,
                n_steps=int(result.n_steps[i]) if result.n_steps is not None else None,
                feature_scores=feature_scores,
                feature_names=list(feature_names) if feature_names is not None else None,
                label=_plain(labels[i]) if labels is not None else None,
                class_names=list(class_names) if class_names is not None else None,
                extra=(
                    {"forward_passes": int(result.forward_passes[i])}
                    if result.forward_passes is not None
                    else {}
                ),
            )
        )
    return explanations


def _first_forward(seq: SequenceModel, inputs: Tensor, lengths: Tensor) -> Tensor:
    """The model's outputs for the batch, a memory budget's worth of sequences at a time
    (a whole large batch at once would hold every step's states); a failure inside the
    user's forward is reported against ``inputs``, not as a bare error from deep inside."""
    embedded_width = inputs.shape[-1] if inputs.dim() == 3 else 1
    probe = inputs.new_empty((1, inputs.shape[1], embedded_width), dtype=torch.float32)
    rows = max(1, 4 * DEFAULT_MEMORY_BUDGET // activation_bytes(seq, probe))
    try:
        with torch.no_grad():
            return torch.cat(
                [
                    seq(inputs[i : i + rows], lengths[i : i + rows])
                    for i in range(0, len(inputs), rows)
                ]
            )
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        layout = "batch-first" if seq.batch_first else "time-major"
        raise ValueError(
            f"the model's forward failed on inputs of shape {tuple(inputs.shape)} "
            f"(batch-first here; the model is {layout}): {error}"
        ) from error


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, Tensor) and value.numel() == 1 else value


def _output_steps(selection: Any, n: int) -> list[int]:
    """The output steps ``outputs=`` selects among ``n``."""
    if selection is None or (isinstance(selection, str) and selection == "all"):
        return list(range(n))
    if isinstance(selection, slice):
        return list(range(n))[selection]
    if isinstance(selection, str):
        raise ValueError(
            f"outputs must be 'all', a list of step indices or a slice, got {selection!r}"
        )
    steps = [int(s) for s in torch.as_tensor(selection).reshape(-1).tolist()]
    bad = [s for s in steps if not -n <= s < n]
    if bad:
        raise ValueError(f"outputs holds steps {bad} outside the model's {n} output steps")
    return sorted({s % n for s in steps})


def _explain_outputs(
    seq, method_cls, inputs, lengths, real, embedded, reference, flat, target, selection,
    vocab, labels, feature_names, class_names, options,
) -> Explanations:  # fmt: skip
    """``explain`` for a model with one output per step: one row per output step."""
    batch, time = inputs.shape[0], inputs.shape[1]
    if seq.step_shape is None:  # (batch, horizon): a multi-step forecaster
        if seq.output is None:
            seq.observe(flat)
        if seq.output != "regression":
            raise ValueError(
                f"outputs= explains one output per step, but the model returns one vector "
                f"per sequence {tuple(flat.shape)} (read as {seq.output} over classes): for a "
                "multi-step forecaster pass output='regression'; a tagger returns "
                "(batch, steps, classes)"
            )
        n_out, width = flat.shape[1], 1
    else:
        n_out, width = seq.step_shape
        seq.observe(flat.reshape(batch * n_out, width))
    if not bool(torch.isfinite(flat).all()):
        raise ValueError("the model returned NaN or infinite outputs")
    per_step = flat.reshape(batch, n_out, width)
    classes = _step_targets(seq, target, per_step)
    probabilities = (
        seq.probabilities(per_step.reshape(-1, width).double()).reshape(batch, n_out, -1)
        if seq.is_classifier
        else None
    )
    aligned = seq.step_shape is not None and n_out == time
    causal = aligned and is_unidirectional(seq)
    chosen = _output_steps(selection, n_out)
    ids = inputs if seq.is_token_model else None
    explanations = Explanations()
    for i in range(batch):
        row_steps = [t for t in chosen if not aligned or bool(real[i, t])]
        if not row_steps:
            raise ValueError(
                f"inputs[{i}] has no output step to explain among outputs={selection!r}"
            )
        steps = torch.tensor(row_steps, device=inputs.device)
        row = slice(i, i + 1)
        result = attribute_outputs(
            method_cls, seq, None if ids is None else ids[row], embedded[row], reference[row],
            lengths[row], real[i], steps, classes[i, steps], width, aligned, causal, **options,
        )  # fmt: skip
        keep = real[i].nonzero()[:, 0].cpu()
        attributions = result.attributions.detach().cpu()[:, keep]
        explanations.append(
            _steps_explanation(
                seq, method_cls.name, inputs[i].cpu()[keep], attributions, result, row_steps,
                classes[i].cpu(), per_step[i].detach().double().cpu(),
                None if probabilities is None else probabilities[i].cpu(), width, vocab,
                feature_names, class_names, None if labels is None else _plain(labels[i]),
            )
        )  # fmt: skip
    return explanations


def _step_targets(seq: SequenceModel, target: Any, per_step: Tensor) -> Tensor:
    """``(batch, steps)`` class (or regression feature) explained at each output step."""
    batch, n_out, width = per_step.shape
    if target is None:
        if seq.is_classifier and width > 1:
            return per_step.argmax(dim=-1)
        if width > 1:
            raise ValueError(
                f"the model forecasts {width} features per step: pass target= the feature "
                "to explain (an int, or a (batch, steps) tensor)"
            )
        return torch.zeros((batch, n_out), dtype=torch.long, device=per_step.device)
    target = torch.as_tensor(target, device=per_step.device)
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.dim() == 0:
        target = target.expand(batch, n_out)
    if target.shape != (batch, n_out):
        raise ValueError(
            f"target must be an int or a (batch, steps) = {(batch, n_out)} tensor of class "
            f"indices per output step, got shape {tuple(target.shape)}"
        )
    if int(target.min()) < 0 or int(target.max()) >= width:
        raise ValueError(f"target holds indices outside [0, {width}) (classes per step)")
    return target.long()


def _steps_explanation(
    seq, name, ids_or_steps, attributions, result, steps, classes, per_step, probabilities,
    width, vocab, feature_names, class_names, label,
) -> Explanation:  # fmt: skip
    """One sequence-output :class:`Explanation` from its ``(outputs, time, dim)`` rows."""
    if seq.is_token_model:
        ids_i = ids_or_steps.tolist()
        tokens = vocab.decode(ids_i) if vocab is not None else [str(t) for t in ids_i]
        feature_scores = None
    else:
        tokens = [f"t{j}" for j in range(attributions.shape[1])]
        feature_scores = attributions.double().tolist()
    picked = [int(classes[t]) for t in steps]
    names = list(class_names) if class_names is not None else None
    if seq.is_classifier:
        predicted = [int(probabilities[t].argmax()) for t in steps]
        probability = [float(probabilities[t, p]) for t, p in zip(steps, predicted, strict=True)]
        output_labels = [
            names[c] if names is not None and c < len(names) else str(c) for c in picked
        ]
    else:
        predicted = probability = None
        suffix = [f":{c}" if width > 1 else "" for c in picked]
        output_labels = [f"t+{t + 1}{s}" for t, s in zip(steps, suffix, strict=True)]
    delta = None if result.delta is None else [float(d) for d in result.delta]
    return Explanation(
        tokens=list(tokens),
        scores=attributions.double().sum(dim=-1).tolist(),
        method=name,
        target=picked,
        predicted=predicted,
        probability=probability,
        output=[float(per_step[t, c]) for t, c in zip(steps, picked, strict=True)],
        delta=delta,
        n_steps=None if result.n_steps is None else result.n_steps.tolist(),
        feature_scores=feature_scores,
        feature_names=list(feature_names) if feature_names is not None else None,
        label=label,
        class_names=names,
        extra={"output_steps": list(steps), "causal": result.causal},
        output_labels=output_labels,
    )
