"""Sanity checks (Adebayo et al. 2018): does an explanation depend on the model at all?

* Model-parameter randomisation: re-initialise the weights, from the output layer
  down (cascading), and compare the explanations before and after. An explanation that
  stays the same explains the input, not the model.
* Data-label randomisation: train the same architecture on shuffled labels and
  compare. An explanation that stays the same does not reflect what was learned.

Similarity is the Spearman rank correlation of the per-token attributions over the
real positions of each sequence (of their absolute values by default, as the paper
reports), averaged over sequences. A check passes when the mean similarity after
randomisation is below ``threshold``. The model passed in is never modified: the
checks work on copies, and the caller's random state is left alone.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from captum_rnn._utils.state import preserve_state, seeded
from captum_rnn.metrics._base import (
    _adapt,
    _as_scores,
    _Batch,
    _call_explainer,
    _device,
    _explainer_name,
    _nanmean,
    _prepare,
    _resolve_explainer,
    _resolve_target,
)
from captum_rnn.metrics._plausibility import spearman
from captum_rnn.models.protocol import SequenceModel, adapt

__all__ = [
    "RandomizationResult",
    "data_randomization_test",
    "explanation_similarity",
    "label_randomized_copy",
    "model_randomization_test",
    "randomize_parameters",
]

_MEASURES = ("spearman_abs", "spearman")


@dataclass
class RandomizationResult:
    """Outcome of a randomisation sanity check for one method.

    Attributes:
        method: the method's name.
        test: ``"model_parameters"`` or ``"data_labels"``.
        similarity: mean similarity between the original explanations and those of the
            fully randomised model (lower is better: 1 means unchanged).
        per_sequence: the similarity of each sequence (NaN where undefined).
        threshold: the check passes when ``similarity < threshold``.
        measure: ``"spearman_abs"`` or ``"spearman"``.
        stages: for the cascading parameter test, ``(modules randomised so far, mean
            similarity)`` after each stage, output layer first.
        details: extra numbers (e.g. the label-randomised model's training accuracy).
    """

    method: str
    test: str
    similarity: float
    per_sequence: list[float]
    threshold: float
    measure: str
    stages: list[tuple[str, float]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when the explanations changed enough (similarity below the threshold)."""
        return not math.isnan(self.similarity) and self.similarity < self.threshold

    @property
    def reason(self) -> str:
        """One sentence saying what was measured and what it means."""
        what = (
            "randomising the model's weights"
            if self.test == "model_parameters"
            else "training on shuffled labels"
        )
        verdict = (
            "it depends on the model, as it should"
            if self.passed
            else "it does not depend on what the model learned, so it does not explain it"
        )
        return (
            f"{self.method}: rank similarity {self.similarity:.2f} after {what} "
            f"(threshold {self.threshold:.2f}): {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""

        def clean(v: float) -> float | None:
            return None if math.isnan(v) else v

        return {
            "method": self.method,
            "test": self.test,
            "similarity": clean(self.similarity),
            "passed": self.passed,
            "threshold": self.threshold,
            "measure": self.measure,
            "stages": [[name, clean(v)] for name, v in self.stages],
            "reason": self.reason,
            "details": self.details,
        }

    def plot(self, ax: Any = None) -> Figure:
        """Similarity after each cascading stage (or the single value); returns the Figure."""
        if ax is None:
            fig = Figure(figsize=(5, 3.2), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        stages = self.stages or [("randomised", self.similarity)]
        names = ["original"] + [name for name, _ in stages]
        values = [1.0] + [v for _, v in stages]
        ax.plot(range(len(values)), values, marker="o", label=self.method)
        ax.axhline(self.threshold, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize="small")
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(f"similarity ({self.measure})")
        ax.set_title(f"{self.test.replace('_', ' ')} randomisation")
        ax.legend(loc="best", fontsize="small")
        return fig


def explanation_similarity(
    a: Tensor, b: Tensor, mask: Tensor, measure: str = "spearman_abs"
) -> Tensor:
    """Per-sequence rank similarity of two attributions ``(batch, time)`` over ``mask``.

    Identical rows give 1 (also when constant); a constant row against a varying one
    gives 0; otherwise the Spearman correlation (of absolute values for
    ``"spearman_abs"``). One-token sequences give NaN.

    Returns:
        float64 ``(batch,)``.
    """
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {_MEASURES}, got {measure!r}")
    out = []
    for i in range(a.shape[0]):
        x, y = a[i][mask[i]].double().cpu(), b[i][mask[i]].double().cpu()
        if measure == "spearman_abs":
            x, y = x.abs(), y.abs()
        if x.numel() < 2:
            out.append(math.nan)
        elif torch.allclose(x, y, rtol=1e-6, atol=1e-12):
            out.append(1.0)
        elif bool((x == x[0]).all()) or bool((y == y[0]).all()):
            out.append(0.0)
        else:
            out.append(spearman(x, y))
    return torch.tensor(out, dtype=torch.float64)


def _stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level children that hold parameters, output side first."""
    stages = [
        (name, child)
        for name, child in model.named_children()
        if any(True for _ in child.parameters())
    ]
    if not stages and any(True for _ in model.parameters(recurse=False)):
        stages = [("model", model)]
    return stages[::-1]


def randomize_parameters(module: nn.Module) -> None:
    """Re-initialise every parameter of ``module`` in place.

    Modules with ``reset_parameters`` (``nn.Linear``, ``nn.LSTM``, ``nn.Embedding``,
    ...) use it (an embedding's padding row stays 0); any other parameter is redrawn
    from a normal distribution with the same standard deviation. Seed torch first for
    reproducible draws.
    """
    covered: set[int] = set()
    for sub in module.modules():
        if hasattr(sub, "reset_parameters") and callable(sub.reset_parameters):
            sub.reset_parameters()
            covered.update(id(p) for p in sub.parameters())
    with torch.no_grad():
        for p in module.parameters():
            if id(p) not in covered:
                std = float(p.std()) if p.numel() > 1 else 1.0
                p.normal_(0.0, std if std > 0 else 1.0 / math.sqrt(max(p.numel(), 1)))


def _copy_model(model: nn.Module) -> nn.Module:
    trainer = getattr(model, "_trainer", None)
    try:
        # A Lightning module keeps a reference to its last trainer: do not copy that.
        if trainer is not None:
            model._trainer = None
        return copy.deepcopy(model)
    finally:
        if trainer is not None:
            model._trainer = trainer


def _explain_both(
    original: nn.Module, other: nn.Module, explainer: Any, batch: _Batch, target: Tensor, seed: int
) -> tuple[Tensor, Tensor]:
    device = _device(original)
    with seeded(seed, device):
        before = _call_explainer(explainer, original, batch, target)
    with seeded(seed, device):
        after = _call_explainer(explainer, other, batch, target)
    return before, after


def _explained_batch(
    model, inputs, lengths, target, method, method_kwargs, reference, seed, hints
) -> tuple[SequenceModel, Any, Any, Tensor, Tensor]:
    """What both randomization tests start from: the adapted model, the explainer, the
    prepared batch, its target and the reference explanation (computed under ``seed``
    unless given, then checked against the batch)."""
    explainer = _resolve_explainer(method, method_kwargs)
    model, _ = _adapt(model, **hints)
    batch = _prepare(model, inputs, lengths)
    target = _resolve_target(model, batch, target, 256)
    if reference is None:
        with seeded(seed, _device(model)):
            reference = _call_explainer(explainer, model, batch, target)
    else:
        reference = _as_scores(reference, batch, "reference")
    return model, explainer, batch, target, reference


def model_randomization_test(
    model: nn.Module,
    inputs: Any,
    method: Any = "integrated_gradients",
    target: Any = None,
    *,
    lengths: Any = None,
    cascade: bool = True,
    measure: str = "spearman_abs",
    threshold: float = 0.5,
    seed: int = 0,
    method_kwargs: dict[str, Any] | None = None,
    reference: Tensor | None = None,
    **hints: Any,
) -> RandomizationResult:
    """The model-parameter randomisation test for one attribution method.

    Explains ``inputs`` with the model, then with a copy whose weights are
    re-initialised. With ``cascade`` the layers are randomised one after the other from
    the output side (``head``, ``attention``, ``rnn``, ``embedding`` for captum-rnn
    models) and the similarity is recorded after each stage; the verdict uses the
    fully randomised model. The explained target stays the original model's.

    Args:
        model: a module with ``forward(x, lengths)``; it is not modified.
        inputs: token ids ``(batch, time)`` or continuous input ``(batch, time, features)``.
        method: a name from ``captum_rnn.attr.available_methods()`` or a callable
            ``(model, inputs, lengths, target) -> scores (batch, time)``.
        target: output explained (default: the original model's predicted class).
        lengths: true lengths; inferred from padding for token ids.
        cascade: randomise layer by layer (else all at once).
        measure: ``"spearman_abs"`` (rank correlation of ``|attribution|``) or
            ``"spearman"``.
        threshold: the check passes when the mean similarity is below it.
        seed: seeds the re-initialisation and sampling methods.
        method_kwargs: options for a named method.
        reference: the original model's explanations ``(batch, time)`` when already
            computed (saves one explanation).
        hints: ``pad_id``, ``batch_first``, ``output``, ``embedding``, ``num_classes``,
            ``lengths_arg``, ``mask_arg`` for :func:`captum_rnn.adapt`.

    Returns:
        A :class:`RandomizationResult` (``passed``, ``similarity``, ``stages``, ``reason``).

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> result = model_randomization_test(model, torch.tensor([[4, 5, 6, 7]]), "saliency")
        >>> result.test
        'model_parameters'
    """
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {_MEASURES}, got {measure!r}")
    model, explainer, batch, target, reference = _explained_batch(
        model, inputs, lengths, target, method, method_kwargs, reference, seed, hints
    )
    device = _device(model)
    randomized = adapt(_copy_model(model.module), **model.hints)
    stages = _stages(randomized.module)
    if not stages:
        raise ValueError("model has no parameters to randomise")
    groups = [[s] for s in stages] if cascade else [stages]
    results: list[tuple[str, float]] = []
    per_sequence = torch.full((batch.size,), math.nan, dtype=torch.float64)
    done: list[str] = []
    for number, group in enumerate(groups):
        with seeded(seed + number, device):
            for _, module in group:
                randomize_parameters(module)
        done.extend(name for name, _ in group)
        with seeded(seed, device):
            after = _call_explainer(explainer, randomized, batch, target)
        per_sequence = explanation_similarity(reference, after, batch.mask, measure)
        results.append(("+".join(done) if not cascade else done[-1], _nanmean(per_sequence)))
    return RandomizationResult(
        method=_explainer_name(method),
        test="model_parameters",
        similarity=results[-1][1],
        per_sequence=per_sequence.tolist(),
        threshold=threshold,
        measure=measure,
        stages=results if cascade else [],
    )


def _training_items(train_data: Any) -> tuple[list[Tensor], Tensor]:
    if hasattr(train_data, "to_dataset"):
        train_data = train_data.to_dataset()
    if hasattr(train_data, "sequences") and hasattr(train_data, "targets"):
        return list(train_data.sequences), torch.as_tensor(train_data.targets)
    if isinstance(train_data, tuple) and len(train_data) == 2:
        sequences, labels = train_data
        return list(sequences), torch.as_tensor(labels)
    try:
        items = [train_data[i] for i in range(len(train_data))]
    except TypeError:
        raise TypeError(
            "train_data must be a SequenceDataset, PlantedCues, a (sequences, labels) "
            f"pair or a dataset of (sequence, label) items, got {type(train_data).__name__}"
        ) from None
    return [it[0] for it in items], torch.stack([torch.as_tensor(it[1]) for it in items])


def data_randomization_test(
    model: nn.Module,
    train_data: Any,
    inputs: Any,
    method: Any = "integrated_gradients",
    target: Any = None,
    *,
    lengths: Any = None,
    epochs: int = 5,
    batch_size: int = 32,
    measure: str = "spearman_abs",
    threshold: float = 0.5,
    seed: int = 0,
    method_kwargs: dict[str, Any] | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    reference: Tensor | None = None,
    **hints: Any,
) -> RandomizationResult:
    """The data-label randomisation test for one attribution method.

    Trains a freshly initialised copy of ``model`` (same architecture and optimiser
    settings, via its Lightning ``training_step``) on ``train_data`` with the labels
    shuffled, then compares its explanations of ``inputs`` with the original model's.

    Args:
        model: a LightningModule (e.g. ``RNNClassifier``) trained on the true labels;
            it is not modified.
        train_data: a ``SequenceDataset``, ``PlantedCues``, ``(sequences, labels)`` or a
            dataset of ``(sequence, label)`` items.
        inputs: the sequences to explain (as :func:`model_randomization_test`).
        epochs: training epochs on the shuffled labels.
        batch_size: training batch size.
        trainer_kwargs: extra ``pytorch_lightning.Trainer`` arguments.
        Other arguments: as :func:`model_randomization_test`.

    Returns:
        A :class:`RandomizationResult`; ``details["train_accuracy"]`` is the shuffled-label
        model's accuracy on its own (shuffled) training labels.
    """
    import pytorch_lightning as pl

    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {_MEASURES}, got {measure!r}")
    module = model.module if isinstance(model, SequenceModel) else model
    if not isinstance(module, pl.LightningModule):
        raise TypeError(
            "model must be a LightningModule (its training_step trains the shuffled-label "
            f"copy), got {type(module).__name__}"
        )
    model, explainer, batch, target, reference = _explained_batch(
        model, inputs, lengths, target, method, method_kwargs, reference, seed, hints
    )
    device = _device(model)
    randomized, accuracy = label_randomized_copy(
        model,
        train_data,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        trainer_kwargs=trainer_kwargs,
    )
    randomized = adapt(randomized, **model.hints)
    with seeded(seed, device):
        after = _call_explainer(explainer, randomized, batch, target)
    per_sequence = explanation_similarity(reference, after, batch.mask, measure)
    return RandomizationResult(
        method=_explainer_name(method),
        test="data_labels",
        similarity=_nanmean(per_sequence),
        per_sequence=per_sequence.tolist(),
        threshold=threshold,
        measure=measure,
        details={"train_accuracy_on_shuffled_labels": accuracy, "epochs": epochs},
    )


def label_randomized_copy(
    model: nn.Module,
    train_data: Any,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    seed: int = 0,
    trainer_kwargs: dict[str, Any] | None = None,
    **hints: Any,
) -> tuple[nn.Module, float | None]:
    """A freshly initialised copy of ``model`` trained on ``train_data`` with shuffled labels.

    Share it between methods: one training serves every method's data-label check.

    ``model`` is the user's model (or a ``SequenceModel``; ``hints`` as for
    :func:`captum_rnn.adapt`); the batches are padded with its ``pad_id``.

    Returns:
        ``(copy of the user's model in eval mode on the model's device, its accuracy on
        the shuffled labels)`` (accuracy ``None`` for regressors).
    """
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from captum_rnn.data import SequenceDataset, pad_collate

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    seq, _ = _adapt(model, **hints)
    model = seq.module
    device = _device(model)
    collate = pad_collate
    if seq.is_token_model:
        collate = functools.partial(pad_collate, padding_value=seq.pad_id)
    sequences, labels = _training_items(train_data)
    generator = torch.Generator().manual_seed(seed)
    shuffled = labels[torch.randperm(len(labels), generator=generator)]
    dataset = SequenceDataset(sequences, shuffled)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
    )
    randomized = _copy_model(model)
    options: dict[str, Any] = dict(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
    )
    options.update(trainer_kwargs or {})
    quiet = logging.getLogger("pytorch_lightning")
    level = quiet.level
    try:
        quiet.setLevel(logging.WARNING)
        with seeded(seed, device), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*validation_step.*val_dataloader")
            warnings.filterwarnings("ignore", message=".*does not have many workers")
            randomize_parameters(randomized)
            randomized.train()
            pl.Trainer(**options).fit(randomized, loader)
    finally:
        quiet.setLevel(level)
    randomized._trainer = None
    randomized.to(device).eval()
    return randomized, _train_accuracy(adapt(randomized, **seq.hints), dataset, collate)


def _train_accuracy(seq: SequenceModel, dataset: Any, collate: Any) -> float | None:
    device = _device(seq)
    correct = 0
    with torch.no_grad(), preserve_state(seq.module):
        for start in range(0, len(dataset), 256):
            x, lengths, y = collate(
                [dataset[i] for i in range(start, min(start + 256, len(dataset)))]
            )
            # pad_collate is batch-first, as the SequenceModel takes it
            outputs = seq(x.to(device), lengths.to(device))
            seq.observe(outputs)
            if not seq.is_classifier:
                return None
            predicted = seq.probabilities(outputs).argmax(dim=-1).cpu()
            correct += int((predicted == y.view(-1)).sum())
    return correct / max(len(dataset), 1)
