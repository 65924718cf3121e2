"""``ExplainingModule``: a LightningModule whose ``predict_step`` explains each batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from captum_rnn.callbacks._explainers import (
    check_hints,
    check_methods,
    explainer_name,
    run_method,
    sequence_model,
)
from captum_rnn.callbacks._probe import unpack_batch
from captum_rnn.explanation import Explanations
from captum_rnn.models.protocol import pop_hints

__all__ = ["ExplainingModule", "explain_batch"]


def explanations_to_arrays(
    explanations: Explanations, inputs: Tensor | None
) -> dict[str, np.ndarray]:
    """Pack explanations of one batch into padded NumPy arrays (what shards hold).

    Keys: ``lengths``, ``scores`` ``(batch, time)``, ``target``, ``predicted`` (-1 when
    none), ``probability``, ``output``, ``delta``, ``n_steps`` (NaN / -1 when none),
    ``inputs`` (token ids, token models only), ``feature_scores``
    ``(batch, time, features)`` (continuous models only), ``label`` (numeric labels).
    Sequence-output explanations (taggers, forecasters) keep both axes: ``scores``
    ``(batch, outputs, time)``, ``n_outputs``, the per-output fields ``(batch, outputs)``
    and ``output_labels`` / ``output_steps``.
    """
    n = len(explanations)
    if n and explanations[0].is_sequence_output:
        return _step_arrays(explanations, inputs)
    lengths = np.array([len(e) for e in explanations], dtype=np.int64)
    time = int(lengths.max()) if n else 0
    scores = np.zeros((n, time), dtype=np.float64)
    for i, e in enumerate(explanations):
        scores[i, : lengths[i]] = e.scores
    arrays: dict[str, np.ndarray] = {
        "lengths": lengths,
        "scores": scores,
        "target": np.array(
            [-1 if e.target is None else e.target for e in explanations], dtype=np.int64
        ),
        "predicted": np.array(
            [-1 if e.predicted is None else e.predicted for e in explanations], dtype=np.int64
        ),
        "probability": np.array(
            [np.nan if e.probability is None else e.probability for e in explanations]
        ),
        "output": np.array([np.nan if e.output is None else e.output for e in explanations]),
        "delta": np.array([np.nan if e.delta is None else e.delta for e in explanations]),
        "n_steps": np.array(
            [-1 if e.n_steps is None else e.n_steps for e in explanations], dtype=np.int64
        ),
    }
    if inputs is not None and not inputs.dtype.is_floating_point:
        arrays["inputs"] = inputs[:, :time].detach().cpu().numpy().astype(np.int64)
    if n and explanations[0].feature_scores is not None:
        features = len(explanations[0].feature_scores[0])
        block = np.zeros((n, time, features), dtype=np.float32)
        for i, e in enumerate(explanations):
            block[i, : lengths[i]] = np.asarray(e.feature_scores, dtype=np.float32)
        arrays["feature_scores"] = block
    labels = [e.label for e in explanations]
    if n and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in labels
    ):
        arrays["label"] = np.asarray(labels)
    return arrays


def explain_batch(
    model: Any,
    batch: Any,
    method: str = "integrated_gradients",
    target: Any = None,
    vocab: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    explainer: Callable[..., Any] | None = None,
    batch_to_inputs: Callable[[Any], Any] | None = None,
    model_hints: Mapping[str, Any] | None = None,
    **method_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Explain one batch as a data loader yields it; return padded NumPy arrays.

    Works under ``torch.inference_mode()`` (as in ``trainer.predict``): gradient
    methods run inside :func:`captum_rnn.gradient_context`. Autocast is switched off,
    so a mixed-precision trainer still explains in the model's own precision.

    Args:
        model: any sequence model (``nn.Module`` / ``LightningModule``), seen through
            the model contract (:func:`captum_rnn.adapt`).
        batch: ``(inputs, lengths, targets)`` as ``pad_collate`` returns, ``(inputs,
            targets)``, a dict with common keys or a bare tensor, inputs in the model's
            own layout; anything else with ``batch_to_inputs``.
        method: a method name (see ``captum_rnn.callbacks.available_explainers()``).
        target: ``None`` (predicted class), an int, or ``"label"`` (the batch's targets).
        vocab: a vocabulary (tokens are not stored; ids are).
        class_names: class names stored on the explanations.
        explainer: a callable ``explainer(model, inputs, lengths, target)`` returning
            attributions ``(batch, time)`` or ``(batch, time, features)``, used instead
            of ``method``.
        batch_to_inputs: a callable ``batch -> (inputs, lengths or None, labels or None)``.
        model_hints: the model contract's hints (see :func:`captum_rnn.adapt`); they may
            also be given among ``method_kwargs`` (``pad_id=1``).
        method_kwargs: options of the method.

    Returns:
        The arrays described in :func:`explanations_to_arrays`.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4)
        >>> out = explain_batch(model, (torch.tensor([[4, 5, 0]]), torch.tensor([2]), torch.tensor([1])))
        >>> out["scores"].shape
        (1, 2)
    """
    hints = check_hints(model_hints, pop_hints(method_kwargs))
    seq = sequence_model(model, hints)
    inputs, lengths, labels = unpack_batch(batch, batch_to_inputs)
    inputs = torch.as_tensor(inputs)
    inputs = seq.to_batch_first(inputs)  # batch-first from here on
    if lengths is not None:
        lengths = torch.as_tensor(lengths)
    label_list = None
    if labels is not None and torch.as_tensor(labels).dim() == 1:
        label_list = torch.as_tensor(labels).tolist()
    if target == "label":
        if labels is None:
            raise ValueError("target='label' needs batches with targets")
        target = torch.as_tensor(labels).long().view(-1)
    device_type = next(model.parameters()).device.type
    if explainer is not None:
        method = explainer_name(explainer)
    # Lightning runs predict_step under autocast with mixed precision; explanations
    # (and IG's convergence delta) are computed in the model's own precision.
    with torch.autocast(device_type, enabled=False):
        output = run_method(
            seq,
            method,
            inputs,
            lengths,
            target=target,
            vocab=vocab,
            labels=label_list,
            class_names=class_names,
            kwargs=method_kwargs,
            explainer=explainer,
        )
    if output.explanations is None:
        raise ValueError(
            f"method {method!r} does not score positions and cannot be written per sequence"
        )
    return explanations_to_arrays(output.explanations, inputs)


class ExplainingModule(pl.LightningModule):
    """Wrap a model so that ``trainer.predict`` explains every sequence of a data set.

    ``predict_step`` returns the explanation arrays of the batch (see
    :func:`explain_batch`); pair it with :class:`ExplanationWriter` and
    ``return_predictions=False`` so nothing accumulates in memory. Works with the
    default ``inference_mode=True``, on CPU and GPU, on one process or under DDP.

    The wrapped model is any ``nn.Module`` / ``LightningModule`` over sequences (seen
    through :func:`captum_rnn.adapt`); it needs no ``predict_step`` of its own.

    Args:
        model: the model to explain: captum-rnn's or your own.
        method: a method name, default integrated gradients.
        target: ``None`` (predicted class), an int, or ``"label"``.
        vocab: a vocabulary; the writer saves it so ``read_explanations`` shows tokens.
        class_names: names of the classes.
        explainer: a callable ``explainer(model, inputs, lengths, target)`` returning
            attributions ``(batch, time)`` or ``(batch, time, features)``, used instead
            of ``method`` (written as ``"explainer:<its __name__>"``).
        batch_to_inputs: a callable ``batch -> (inputs, lengths or None, labels or None)``
            for batches the default cannot read.
        model_hints: the model contract's hints (see :func:`captum_rnn.adapt`).
        method_kwargs: options of the method (``n_steps=...``), and the contract's
            hints as keywords (``pad_id=1``).

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> module = ExplainingModule(RNNClassifier(2, vocab_size=20), n_steps=32)
        >>> # trainer.predict(module, loader, callbacks=[ExplanationWriter("out")],
        >>> #                 return_predictions=False)
    """

    def __init__(
        self,
        model: pl.LightningModule,
        method: str = "integrated_gradients",
        target: Any = None,
        vocab: Any = None,
        class_names: Sequence[str] | None = None,
        *,
        explainer: Callable[..., Any] | None = None,
        batch_to_inputs: Callable[[Any], Any] | None = None,
        model_hints: Mapping[str, Any] | None = None,
        **method_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"model must be a sequence model (an nn.Module), got {type(model).__name__}"
            )
        if not isinstance(method, str):
            raise TypeError(f"method must be a method name, got {method!r}")
        if explainer is not None and not callable(explainer):
            raise TypeError("explainer must be callable(model, inputs, lengths, target)")
        if batch_to_inputs is not None and not callable(batch_to_inputs):
            raise TypeError("batch_to_inputs must be callable(batch) -> (inputs, lengths, labels)")
        self.model = model
        self.model_hints = check_hints(model_hints, pop_hints(method_kwargs))
        self.explainer = explainer
        self.batch_to_inputs = batch_to_inputs
        self.method = explainer_name(explainer) if explainer is not None else method
        self.target = target
        self.vocab = vocab
        self.class_names = list(class_names) if class_names is not None else None
        self.method_kwargs = dict(method_kwargs)

    @property
    def explained_model(self) -> pl.LightningModule:
        """The wrapped model."""
        return self.model

    def setup(self, stage: str) -> None:
        check_methods((self.method,), "method")

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.model(*args, **kwargs)

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, np.ndarray]:
        """Explain the batch; returns its arrays (see :func:`explain_batch`)."""
        return explain_batch(
            self.model,
            batch,
            self.method,
            self.target,
            vocab=self.vocab,
            class_names=self.class_names,
            explainer=self.explainer,
            batch_to_inputs=self.batch_to_inputs,
            model_hints=self.model_hints,
            **self.method_kwargs,
        )


def _step_arrays(explanations: Explanations, inputs: Tensor | None) -> dict[str, np.ndarray]:
    """Padded arrays of sequence-output explanations: both axes kept."""
    n = len(explanations)
    lengths = np.array([len(e) for e in explanations], dtype=np.int64)
    counts = np.array([e.n_outputs for e in explanations], dtype=np.int64)
    time, outs = int(lengths.max()), int(counts.max())
    arrays: dict[str, np.ndarray] = {"lengths": lengths, "n_outputs": counts}
    arrays["scores"] = np.zeros((n, outs, time), dtype=np.float64)
    for name, fill, dtype in (
        ("target", -1, np.int64),
        ("predicted", -1, np.int64),
        ("n_steps", -1, np.int64),
        ("probability", np.nan, np.float64),
        ("output", np.nan, np.float64),
        ("delta", np.nan, np.float64),
    ):
        block = np.full((n, outs), fill, dtype=dtype)
        for i, e in enumerate(explanations):
            values = getattr(e, name) or [None] * e.n_outputs
            block[i, : e.n_outputs] = [fill if v is None else v for v in values]
        arrays[name] = block
    width = max(len(label) for e in explanations for label in e.output_labels)
    arrays["output_labels"] = np.full((n, outs), "", dtype=f"<U{max(width, 1)}")
    arrays["output_steps"] = np.full((n, outs), -1, dtype=np.int64)
    for i, e in enumerate(explanations):
        arrays["scores"][i, : e.n_outputs, : lengths[i]] = e.scores
        arrays["output_labels"][i, : e.n_outputs] = e.output_labels
        steps = e.extra.get("output_steps")
        if steps is not None:
            arrays["output_steps"][i, : e.n_outputs] = steps
    if explanations[0].feature_scores is not None:
        features = len(explanations[0].feature_scores[0][0])
        block = np.zeros((n, outs, time, features), dtype=np.float32)
        for i, e in enumerate(explanations):
            block[i, : e.n_outputs, : lengths[i]] = np.asarray(e.feature_scores)
        arrays["feature_scores"] = block
    if inputs is not None and not inputs.dtype.is_floating_point:
        arrays["inputs"] = inputs[:, :time].detach().cpu().numpy().astype(np.int64)
    return arrays
