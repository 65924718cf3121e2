"""``captum_rnn.explain``: one call from a model and some sequences to explanations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from captum_rnn._utils.grad import gradient_context, prepare_tensors
from captum_rnn._utils.targets import resolve_target
from captum_rnn.attr._methods import get_method
from captum_rnn.explanation import Explanation, Explanations
from captum_rnn.models.recurrent import RecurrentModel
from captum_rnn.models.transformer import TransformerClassifier

# Models whose forward takes ids, embeddings or continuous input with lengths.
_EXPLAINABLE = (RecurrentModel, TransformerClassifier)

__all__ = ["explain", "prepare_inputs"]


def _as_sequences(inputs: Any, vocab: Any) -> list[Tensor]:
    """Turn strings or lists of ids into a list of 1-D id tensors."""
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
    model: RecurrentModel, inputs: Any, lengths: Any = None, vocab: Any = None
) -> tuple[Tensor, Tensor]:
    """Check and batch ``inputs`` for ``model``; return ``(inputs, lengths)`` on its device.

    Args:
        model: a captum-rnn recurrent model.
        inputs: token ids ``(batch, time)`` or ``(time,)``; a string or list of strings
            (with ``vocab``); a list of id lists; or continuous input
            ``(batch, time, features)`` or ``(time, features)``.
        lengths: optional true lengths ``(batch,)``; inferred from padding for token ids.
        vocab: a ``captum_rnn.data.Vocabulary`` for string input.

    Returns:
        ``(inputs, lengths)``: a padded batch and a LongTensor of lengths.

    Raises:
        TypeError/ValueError: naming the argument that does not fit.
    """
    device = next(model.parameters()).device
    if model.is_token_model:
        if not isinstance(inputs, Tensor):
            sequences = _as_sequences(inputs, vocab)
            if lengths is None:
                lengths = torch.tensor([len(s) for s in sequences])
            inputs = torch.nn.utils.rnn.pad_sequence(
                sequences, batch_first=True, padding_value=model.padding_idx
            )
        if inputs.dtype.is_floating_point or inputs.dtype == torch.bool:
            raise TypeError(
                f"inputs must be token ids (an integer tensor) for this token model, "
                f"got dtype {inputs.dtype}"
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
        if lengths is None:
            empty = (inputs == model.padding_idx).all(dim=1)
            if bool(empty.any()):
                i = int(empty.nonzero()[0])
                raise ValueError(f"inputs[{i}] is empty: it holds only padding")
    else:
        if not isinstance(inputs, Tensor):
            inputs = torch.as_tensor(inputs)
        if not inputs.dtype.is_floating_point:
            raise TypeError(
                f"inputs must be a float tensor (batch, time, {model.input_dim}) for this "
                f"continuous model, got dtype {inputs.dtype}"
            )
        if inputs.dim() == 2:
            inputs = inputs.unsqueeze(0)
        if inputs.dim() != 3 or inputs.shape[-1] != model.input_dim:
            raise ValueError(
                f"inputs must have shape (batch, time, {model.input_dim}) or "
                f"(time, {model.input_dim}), got {tuple(inputs.shape)}"
            )
        if inputs.shape[0] == 0 or inputs.shape[1] == 0:
            raise ValueError(f"inputs is empty (shape {tuple(inputs.shape)})")
        if not bool(torch.isfinite(inputs).all()):
            raise ValueError("inputs contains NaN or infinite values")
    inputs = inputs.to(device)
    # The model checks token ids against the vocabulary and lengths against the shape.
    _, lengths = model.embed(inputs, None if lengths is None else torch.as_tensor(lengths))
    return inputs, lengths


def _resolve_target(target: Any, model: RecurrentModel, logits: Tensor) -> Tensor:
    return resolve_target(target, logits, getattr(model, "num_classes", None) is not None)


def _baselines(model: RecurrentModel, baselines: Any, inputs: Tensor, embedded: Tensor) -> Tensor:
    """The reference in the space the RNN reads: padding embeddings (token models) or
    zeros (continuous models) unless the caller gives token ids, one token id or a tensor."""
    if baselines is None:
        if model.is_token_model:
            return model.embedding(torch.full_like(inputs, model.padding_idx)).detach()
        return torch.zeros_like(embedded)
    if isinstance(baselines, int) and not isinstance(baselines, bool):
        if not model.is_token_model:
            raise TypeError("baselines must be a tensor for continuous input, got an int")
        if not 0 <= baselines < model.vocab_size:
            raise ValueError(f"baselines token id {baselines} is outside [0, {model.vocab_size})")
        ids = torch.where(inputs == model.padding_idx, inputs, torch.full_like(inputs, baselines))
        return model.embedding(ids).detach()
    baselines = torch.as_tensor(baselines, device=embedded.device)
    if model.is_token_model and not baselines.dtype.is_floating_point:
        if baselines.shape != inputs.shape:
            raise ValueError(
                f"baselines of token ids must have the inputs' shape {tuple(inputs.shape)}, "
                f"got {tuple(baselines.shape)}"
            )
        return model.embedding(baselines).detach()
    if baselines.shape != embedded.shape:
        raise ValueError(
            f"baselines must have shape {tuple(embedded.shape)}, got {tuple(baselines.shape)}"
        )
    return baselines.to(embedded.dtype)


def explain(
    model: RecurrentModel,
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
    **kwargs: Any,
) -> Explanations:
    """Explain a model's outputs for some sequences with one attribution method.

    Gradient methods run inside :func:`captum_rnn.gradient_context`, so this works in
    eval mode on CUDA, inside ``torch.inference_mode()`` and on tensors made there.
    The model is put in eval mode for the call and left exactly as it was.

    Args:
        model: a captum-rnn model: ``RNNClassifier``, ``RNNRegressor`` or
            ``TransformerClassifier``.
        inputs: token ids ``(batch, time)`` or ``(time,)``, strings (with ``vocab``),
            lists of ids, or continuous input ``(batch, time, features)``.
        method: ``"integrated_gradients"`` (default), ``"saliency"``,
            ``"input_x_gradient"``, ``"deeplift"``, ``"gradient_shap"``,
            ``"feature_ablation"``, ``"occlusion"``, ``"lime"`` or ``"kernel_shap"``
            (see ``captum_rnn.attr.available_methods()``).
        target: output index to explain: an int, one per sequence, or ``None`` for the
            predicted class (regression: output 0).
        vocab: turns strings into ids and ids back into tokens.
        lengths: true lengths; inferred from ``padding_idx`` for token ids.
        baselines: reference input: ``None`` (padding embedding / zeros), a token id put
            at every real position, token ids like ``inputs``, or a tensor in the
            embedded space.
        labels: optional true labels, stored on the explanations.
        feature_names: names of continuous input features, for plots.
        class_names: names of the classes, for titles and reports.
        kwargs: method options, e.g. ``n_steps``, ``max_steps``, ``rtol`` for IG,
            ``n_samples`` for Lime.

    Returns:
        :class:`~captum_rnn.Explanations`, one :class:`~captum_rnn.Explanation` per
        sequence with padding stripped.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4)
        >>> [e] = explain(model, torch.tensor([[4, 5, 6, 0]]))
        >>> len(e.scores)
        3
    """
    if not isinstance(model, _EXPLAINABLE):
        raise TypeError(
            "model must be a captum_rnn recurrent model or TransformerClassifier, got "
            f"{type(model).__name__}; "
            "for other models call Captum inside captum_rnn.gradient_context(model)"
        )
    method_cls = get_method(method)
    was_training = model.training
    try:
        model.eval()
        with gradient_context(model):
            inputs = prepare_tensors(inputs)
            lengths = prepare_tensors(lengths)
            baselines = prepare_tensors(baselines)
            inputs, lengths = prepare_inputs(model, inputs, lengths, vocab)
            if labels is not None and len(labels) != inputs.shape[0]:
                raise ValueError(f"labels must have {inputs.shape[0]} entries, got {len(labels)}")
            embedded = model.embedding(inputs).detach() if model.is_token_model else inputs
            reference = _baselines(model, baselines, inputs, embedded)
            with torch.no_grad():
                outputs = model(embedded, lengths)
            target = _resolve_target(target, model, outputs)
            result = method_cls(model).attribute(embedded, reference, target, lengths, **kwargs)
    finally:
        model.train(was_training)

    time = inputs.shape[1]
    mask = torch.arange(time, device=lengths.device)[None, :] < lengths[:, None]
    attributions = (result.attributions * mask[..., None]).detach().cpu().double()
    is_classifier = getattr(model, "num_classes", None) is not None
    probabilities = torch.softmax(outputs.double(), dim=-1).cpu() if is_classifier else None
    outputs_cpu, target_cpu = outputs.detach().double().cpu(), target.cpu()
    explanations = Explanations()
    for i in range(inputs.shape[0]):
        n = int(lengths[i])
        if model.is_token_model:
            ids = inputs[i, :n].tolist()
            tokens = vocab.decode(ids) if vocab is not None else [str(t) for t in ids]
            feature_scores = None
        else:
            tokens = [f"t{j}" for j in range(n)]
            feature_scores = attributions[i, :n].tolist()
        predicted = int(probabilities[i].argmax()) if probabilities is not None else None
        explanations.append(
            Explanation(
                tokens=list(tokens),
                scores=attributions[i, :n].sum(dim=-1).tolist(),
                method=method_cls.name,
                target=int(target_cpu[i]),
                predicted=predicted,
                probability=float(probabilities[i, predicted]) if predicted is not None else None,
                output=float(outputs_cpu[i, target_cpu[i]]),
                delta=float(result.delta[i]) if result.delta is not None else None,
                n_steps=int(result.n_steps[i]) if result.n_steps is not None else None,
                feature_scores=feature_scores,
                feature_names=list(feature_names) if feature_names is not None else None,
                label=_plain(labels[i]) if labels is not None else None,
                class_names=list(class_names) if class_names is not None else None,
            )
        )
    return explanations


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, Tensor) and value.numel() == 1 else value
