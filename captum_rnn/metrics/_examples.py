"""Metrics for example-based explanations: neighbour agreement, k-NN fidelity, mislabel detection.

* :func:`neighbor_label_agreement`: per query, the share of its nearest training
  examples whose label equals the model's prediction.
* :func:`knn_fidelity`: how often the majority label of the neighbours equals the
  model's prediction (how well "the model predicts what its neighbours are labelled"
  describes the model).
* :func:`mislabel_detection`: flip a share of the training labels (seeded), train a
  copy of the model on them, rank the training examples by k-NN label disagreement,
  loss summed over checkpoints and Captum's ``TracInCPFast`` self-influence on the final
  linear layer, and report the share of flipped labels found after checking the top
  10% and 20% of the ranking (a random ranking finds 10% and 20%).

``TracInCPFast`` is used on the final linear layer only: Captum's ``TracInCP`` with
``sample_wise_grads_per_batch=True`` silently ignores LSTM and embedding parameters
(see docs/ARCHITECTURE.md, "Upstream defects"). Checkpoints are state dicts held in memory, or files read with
``torch.load(..., weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from captum_rnn._utils.options import check_int
from captum_rnn.models.protocol import SequenceModel, adapt

__all__ = [
    "MislabelDetection",
    "checkpoint_loss_scores",
    "flip_labels",
    "flips_found",
    "knn_fidelity",
    "knn_majority",
    "mislabel_detection",
    "neighbor_label_agreement",
    "tracin_self_influence",
]

DEFAULT_CHECK_FRACTIONS = (0.1, 0.2)
MISLABEL_METHODS = ("knn", "loss", "tracin")

Checkpoint = Mapping[str, Tensor] | str | os.PathLike


# ---------------------------------------------------------------------------- neighbours
def _neighbor_inputs(neighbor_labels: Any, predictions: Any) -> tuple[Tensor, Tensor]:
    if hasattr(neighbor_labels, "labels") and hasattr(neighbor_labels, "query_predictions"):
        result = neighbor_labels  # a captum_rnn.influence.Neighbors
        if result.labels is None:
            raise ValueError("neighbor_labels: these neighbours carry no labels")
        neighbor_labels = result.labels
        predictions = result.query_predictions if predictions is None else predictions
    labels = torch.as_tensor(neighbor_labels)
    if labels.dim() != 2 or labels.shape[1] == 0 or labels.dtype.is_floating_point:
        raise ValueError(
            "neighbor_labels must be integer class labels (batch, k) with k >= 1, got "
            f"{tuple(labels.shape)} {labels.dtype}"
        )
    if predictions is None:
        raise ValueError("predictions are required (the model's class per query)")
    predictions = torch.as_tensor(predictions)
    if predictions.dim() != 1 or predictions.shape[0] != labels.shape[0]:
        raise ValueError(
            f"predictions must be (batch,) = ({labels.shape[0]},), got {tuple(predictions.shape)}"
        )
    if predictions.dtype.is_floating_point:
        raise ValueError("predictions must be integer classes, got floats")
    return labels.long().cpu(), predictions.long().cpu()


def neighbor_label_agreement(neighbor_labels: Any, predictions: Any = None) -> Tensor:
    """Per query, the share of its neighbours whose training label equals the prediction.

    Args:
        neighbor_labels: ``(batch, k)`` labels of each query's nearest training
            examples, or a :class:`captum_rnn.influence.Neighbors` (then ``predictions``
            defaults to its ``query_predictions``).
        predictions: ``(batch,)`` the model's predicted class per query.

    Returns:
        ``(batch,)`` float tensor in ``[0, 1]``; higher means better support.

    Example:
        >>> neighbor_label_agreement(torch.tensor([[1, 1, 0], [2, 0, 0]]), torch.tensor([1, 2]))
        tensor([0.6667, 0.3333])
    """
    labels, predictions = _neighbor_inputs(neighbor_labels, predictions)
    return (labels == predictions[:, None]).float().mean(dim=1)


def knn_majority(neighbor_labels: Any) -> Tensor:
    """The majority label of each row of neighbours; ties go to the label met first.

    Args:
        neighbor_labels: ``(batch, k)`` integer labels, nearest first.

    Returns:
        ``(batch,)`` LongTensor.

    Example:
        >>> knn_majority(torch.tensor([[0, 1, 1], [2, 0, 0], [3, 1, 5]]))
        tensor([1, 0, 3])
    """
    labels = torch.as_tensor(neighbor_labels)
    if labels.dim() != 2 or labels.shape[1] == 0 or labels.dtype.is_floating_point:
        raise ValueError(
            f"neighbor_labels must be integer labels (batch, k), got {tuple(labels.shape)}"
        )
    labels = labels.long().cpu()
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError("neighbor_labels must be >= 0")
    k = labels.shape[1]
    counts = (labels[:, :, None] == labels[:, None, :]).sum(dim=2)  # (batch, k)
    # break ties by rank: the first of the most frequent labels wins
    key = counts * (k + 1) - torch.arange(k)[None, :]
    return labels.gather(1, key.argmax(dim=1, keepdim=True))[:, 0]


def knn_fidelity(neighbor_labels: Any, predictions: Any = None) -> float:
    """Share of queries whose neighbours' majority label equals the model's prediction.

    Args:
        neighbor_labels: ``(batch, k)`` neighbour labels, nearest first, or a
            :class:`captum_rnn.influence.Neighbors`.
        predictions: ``(batch,)`` the model's predicted classes.

    Returns:
        A float in ``[0, 1]``: 1 means a k-NN vote over the training labels reproduces
        every prediction.

    Example:
        >>> knn_fidelity(torch.tensor([[1, 1, 0], [2, 0, 0]]), torch.tensor([1, 2]))
        0.5
    """
    labels, predictions = _neighbor_inputs(neighbor_labels, predictions)
    return float((knn_majority(labels) == predictions).float().mean())


# ---------------------------------------------------------------------------- mislabels
def _labels_of(dataset: Dataset, name: str = "train_dataset") -> Tensor:
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise TypeError(f"{name} must be a map-style Dataset, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty")
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, Tensor) and targets.dim() == 1 and len(targets) == len(dataset):
        labels = targets
    else:
        labels = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])
    if labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(f"{name} must hold integer class targets, got {labels.dtype}")
    return labels.long()


def flip_labels(
    labels: Any, share: float = 0.1, num_classes: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Flip ``share`` of the labels to another class chosen uniformly at random.

    Args:
        labels: ``(n,)`` integer class labels.
        share: fraction of labels to flip, in ``(0, 1)``; ``round(share * n)`` flips.
        num_classes: number of classes (default ``max(labels) + 1``, at least 2).
        seed: the seed of the choice.

    Returns:
        ``(noisy_labels, flipped)``: the new labels and a bool mask of the flipped ones.

    Example:
        >>> noisy, flipped = flip_labels(torch.tensor([0, 1, 0, 1]), share=0.5, seed=0)
        >>> int(flipped.sum()), bool(((noisy != torch.tensor([0, 1, 0, 1])) == flipped).all())
        (2, True)
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D integer tensor, got {labels.shape}")
    labels = labels.long()
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share!r}")
    classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if classes < 2 or int(labels.min()) < 0 or int(labels.max()) >= classes:
        raise ValueError(f"num_classes must be >= 2 and above every label, got {classes}")
    g = torch.Generator().manual_seed(seed)
    count = max(1, round(share * len(labels)))
    chosen = torch.randperm(len(labels), generator=g)[:count]
    shift = torch.randint(1, classes, (count,), generator=g)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % classes
    flipped = torch.zeros(len(labels), dtype=torch.bool)
    flipped[chosen] = True
    return noisy, flipped


def flips_found(
    scores: Any, flipped: Any, fractions: Sequence[float] = DEFAULT_CHECK_FRACTIONS
) -> dict[float, float]:
    """Share of the flipped labels among the top-scored ``fraction`` of the data.

    Ties are broken by index (a stable sort), so constant scores behave like no ranking.

    Args:
        scores: ``(n,)`` suspicion per training example (higher: check first).
        flipped: ``(n,)`` bool, True where the label was flipped.
        fractions: shares of the data checked.

    Returns:
        ``{fraction: share of flips found}``; a random ranking finds ``fraction``.

    Example:
        >>> flips_found(torch.tensor([0.9, 0.1, 0.2, 0.0]), torch.tensor([1, 0, 0, 0]).bool(), [0.25])
        {0.25: 1.0}
    """
    scores = torch.as_tensor(scores, dtype=torch.float64).cpu()
    flipped = torch.as_tensor(flipped).bool().cpu()
    if scores.dim() != 1 or scores.shape != flipped.shape:
        raise ValueError(
            f"scores {tuple(scores.shape)} and flipped {tuple(flipped.shape)} must be (n,)"
        )
    if not bool(flipped.any()):
        raise ValueError("flipped marks no example")
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores hold NaN")
    order = torch.argsort(scores, descending=True, stable=True)
    total = float(flipped.sum())
    found = {}
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"fractions must be in (0, 1], got {fraction}")
        checked = order[: int(round(fraction * len(order)))]
        found[float(fraction)] = float(flipped[checked].sum()) / total
    return found


class _Relabelled(Dataset):
    """``dataset`` with its targets replaced (items ``(sequence, target)``)."""

    def __init__(self, dataset: Dataset, labels: Tensor) -> None:
        self.dataset = dataset
        self.targets = labels

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Tensor]:
        return self.dataset[index][0], self.targets[index]


def _load_checkpoint(checkpoint: Checkpoint, index: int) -> Mapping[str, Tensor]:
    if isinstance(checkpoint, Mapping):
        state = checkpoint
    elif isinstance(checkpoint, (str, os.PathLike)):
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
            state = state["state_dict"]  # a Lightning checkpoint
    else:
        raise TypeError(
            f"checkpoints[{index}] must be a state dict or a file path, got "
            f"{type(checkpoint).__name__}"
        )
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"checkpoints[{index}] is not a state dict of tensors")
    return state


def _check_checkpoints(checkpoints: Any) -> list[Checkpoint]:
    if isinstance(checkpoints, (Mapping, str, os.PathLike)):
        checkpoints = [checkpoints]
    checkpoints = list(checkpoints)
    if not checkpoints:
        raise ValueError("checkpoints must hold at least one state dict or path")
    return checkpoints


def _collate(seq: SequenceModel, collate_fn: Callable | None) -> Callable:
    """The batch builder: given, or ``pad_collate`` with the model's pad id."""
    from captum_rnn.data import PadCollate, pad_collate

    if collate_fn is not None:
        return collate_fn
    pad = seq.pad_id if seq.is_token_model else None
    return PadCollate(padding_value=pad) if pad else pad_collate


def _batches(dataset: Dataset, batch_size: int, collate: Callable) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


def _forward_args(batch: Any, device: torch.device) -> tuple[tuple[Tensor, ...], Tensor]:
    """``((inputs, lengths), targets)`` of a collated batch (batch-first, as the contract
    takes it), on ``device``."""
    from captum_rnn.models.recurrent import RecurrentModel

    inputs, lengths, targets = RecurrentModel.unpack_batch(batch)
    if targets is None:
        raise ValueError("the data set's batches need targets")
    lengths = None if lengths is None else lengths.to(device)
    return (inputs.to(device), lengths), targets.to(device).long()


def _log_probabilities(seq: SequenceModel, outputs: Tensor) -> Tensor:
    """``(batch, classes)`` log-probabilities of a classifier's outputs, whatever it returns
    (logits, probabilities, log-probabilities, one binary logit)."""
    seq.observe(outputs)
    if not seq.is_classifier:
        raise ValueError("mislabel detection needs a classifier; this model's output is regression")
    if outputs.shape[-1] == 1:  # one binary logit or probability
        return seq.probabilities(outputs).clamp_min(1e-12).log()
    if seq.output == "logits":
        return torch.log_softmax(outputs, dim=-1)
    if seq.output == "log_probs":
        return outputs
    return outputs.clamp_min(1e-12).log()


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def checkpoint_loss_scores(
    model: nn.Module,
    dataset: Dataset,
    checkpoints: Checkpoint | Sequence[Checkpoint],
    *,
    batch_size: int = 256,
    collate_fn: Callable | None = None,
    **hints: Any,
) -> Tensor:
    """Cross-entropy of every example, summed over training checkpoints.

    Mislabelled examples stay hard to fit: their loss is high at most checkpoints.
    The model is copied; its own weights and mode are not touched.

    Args:
        model: the classifier (its architecture; weights come from ``checkpoints``).
        dataset: ``(sequence, target)`` items.
        checkpoints: state dicts, or paths read with ``torch.load(weights_only=True)``.
        batch_size: examples per forward pass.
        collate_fn: batch builder (default :func:`captum_rnn.data.pad_collate` with the
            model's pad id); batches batch-first, as :func:`captum_rnn.adapt` reads them.
        hints: the model contract's keywords (``pad_id``, ``output`` ...).

    Returns:
        ``(n,)`` float tensor.
    """
    checkpoints = _check_checkpoints(checkpoints)
    worker = copy.deepcopy(model).eval()
    seq = adapt(worker, **hints)
    device = _device_of(worker)
    collate = _collate(seq, collate_fn)
    total = torch.zeros(len(dataset), dtype=torch.float64)  # type: ignore[arg-type]
    for i, checkpoint in enumerate(checkpoints):
        worker.load_state_dict(_load_checkpoint(checkpoint, i))
        start = 0
        with torch.no_grad():
            for batch in _batches(dataset, batch_size, collate):
                args, targets = _forward_args(batch, device)
                log_p = _log_probabilities(seq, seq(*args))
                loss = nn.functional.nll_loss(log_p, targets, reduction="none")
                total[start : start + len(targets)] += loss.double().cpu()
                start += len(targets)
    return total.float()


def tracin_self_influence(
    model: nn.Module,
    dataset: Dataset,
    checkpoints: Checkpoint | Sequence[Checkpoint],
    *,
    final_layer: str = "head",
    learning_rate: float = 1.0,
    batch_size: int = 256,
    collate_fn: Callable | None = None,
    **hints: Any,
) -> Tensor:
    """Captum ``TracInCPFast`` self-influence of every training example, final layer only.

    The self-influence ``sum_c lr * ||grad_w loss(x, y)||^2`` over checkpoints ``c``,
    with ``w`` the final linear layer, is large for examples the model keeps being
    pushed towards: often mislabelled ones. The model is copied (Captum loads the
    checkpoints into the copy); its own weights, mode and flags are not touched.

    Args:
        model: the classifier; ``final_layer`` names its last ``nn.Linear``.
        dataset: ``(sequence, target)`` items.
        checkpoints: state dicts, or paths read with ``torch.load(weights_only=True)``.
        final_layer: the name of the final linear layer (``"head"`` in captum_rnn models).
        learning_rate: the per-checkpoint weight TracIn multiplies by.
        batch_size: examples per batch.
        collate_fn: batch builder (default :func:`captum_rnn.data.pad_collate` with the
            model's pad id).
        hints: the model contract's keywords.

    Returns:
        ``(n,)`` float tensor.
    """
    from captum.influence import TracInCPFast

    from captum_rnn._utils.grad import gradient_context

    checkpoints = _check_checkpoints(checkpoints)
    worker = copy.deepcopy(model).eval()
    seq = adapt(worker, **hints)
    try:
        layer = worker.get_submodule(final_layer)
    except AttributeError:
        raise ValueError(f"final_layer: the model has no submodule {final_layer!r}") from None
    if not isinstance(layer, nn.Linear):
        raise ValueError(
            f"final_layer: {final_layer!r} is a {type(layer).__name__}, TracInCPFast needs the "
            "final nn.Linear"
        )
    states = [_load_checkpoint(c, i) for i, c in enumerate(checkpoints)]

    def load(module: nn.Module, key: int) -> float:
        worker.load_state_dict(states[key])  # ``module`` is the contract around ``worker``
        return learning_rate

    device = _device_of(worker)

    def to_device(batch: Any) -> tuple[Tensor, ...]:
        (inputs, lengths), targets = _forward_args(batch, device)
        if lengths is None:
            lengths = torch.full((len(inputs),), inputs.shape[1], device=device)
        return (inputs, lengths, targets)

    collate = _collate(seq, collate_fn)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=lambda items: to_device(collate(items)),
    )
    first = next(iter(loader))
    _check_final_layer(seq, layer, final_layer, first)
    with torch.no_grad():
        width = seq(*first[:-1]).shape[-1]
    if seq.output not in ("logits", "log_probs") or seq.step_shape is not None or width < 2:
        raise ValueError(
            f"TracIn differentiates the loss of the final layer's output, which must be the "
            f"model's class logits; this model returns {seq.output} (pass output='logits' "
            "if it returns logits)"
        )
    loss_fn = nn.CrossEntropyLoss if seq.output == "logits" else nn.NLLLoss
    tracin = TracInCPFast(
        seq,
        layer,
        loader,
        list(range(len(states))),
        checkpoints_load_func=load,
        loss_fn=loss_fn(reduction="sum"),
        batch_size=None,
    )
    with gradient_context(worker):
        scores = tracin.self_influence(outer_loop_by_checkpoints=True)
    return scores.detach().float().cpu()


def _check_final_layer(
    model: nn.Module, layer: nn.Module, name: str, batch: tuple[Tensor, ...]
) -> None:
    """TracInCPFast differentiates the model's output: it must be the layer's output."""
    seen: list[Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(output))
    try:
        with torch.no_grad():
            output = model(*batch[:-1])
    finally:
        handle.remove()
    if not seen or not isinstance(output, Tensor) or seen[-1].shape != output.shape:
        raise ValueError(f"final_layer: the model's output is not the output of {name!r}")
    if not torch.equal(seen[-1], output):
        raise ValueError(f"final_layer: the model's output is not the output of {name!r}")


def _train_copy(
    model: nn.Module,
    dataset: Dataset,
    epochs: int,
    lr: float,
    batch_size: int,
    collate_fn: Callable | None,
    seed: int,
    **hints: Any,
) -> tuple[nn.Module, list[dict[str, Tensor]]]:
    """Train a copy of ``model`` with Adam; one CPU state dict per epoch."""
    worker = copy.deepcopy(model)
    seq = adapt(worker, **hints)
    for p in worker.parameters():
        p.requires_grad_(True)
    device = _device_of(worker)
    optimiser = torch.optim.Adam(worker.parameters(), lr=lr)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        collate_fn=_collate(seq, collate_fn),
        generator=torch.Generator().manual_seed(seed),
    )
    checkpoints = []
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)  # dropout
        worker.train()
        for _ in range(epochs):
            for batch in loader:
                args, targets = _forward_args(batch, device)
                optimiser.zero_grad()
                log_p = _log_probabilities(seq, seq(*args))
                nn.functional.nll_loss(log_p, targets).backward()
                optimiser.step()
            checkpoints.append(
                {k: v.detach().cpu().clone() for k, v in worker.state_dict().items()}
            )
    return worker.eval(), checkpoints


@dataclass
class MislabelDetection:
    """How well each score finds flipped training labels.

    Attributes:
        found: ``{method: {fraction checked: share of flips found}}``.
        random: ``{fraction: fraction}``: what a random ranking finds on average.
        scores: ``{method: (n,) suspicion}``, higher first.
        flipped: ``(n,)`` bool mask of the flipped labels.
        noisy_labels: ``(n,)`` the labels the model was trained on.
        num_checkpoints: checkpoints the loss and TracIn scores summed over.
        model: the model trained on the noisy labels (``None`` when not trained here).
    """

    found: dict[str, dict[float, float]]
    random: dict[float, float]
    scores: dict[str, Tensor] = field(repr=False)
    flipped: Tensor = field(repr=False)
    noisy_labels: Tensor = field(repr=False)
    num_checkpoints: int = 0
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def num_flipped(self) -> int:
        return int(self.flipped.sum())

    def summary(self) -> str:
        """One line per method: flips found at each checked fraction against random."""
        lines = [
            f"mislabel detection: {self.num_flipped} of {len(self.flipped)} labels flipped, "
            f"{self.num_checkpoints} checkpoint(s)"
        ]
        names = {
            "knn": "k-NN label disagreement",
            "loss": "loss summed over checkpoints",
            "tracin": "TracInCPFast self-influence",
        }
        for method, found in self.found.items():
            parts = ", ".join(
                f"{share:.2f} of flips in the top {fraction:.0%} (random {self.random[fraction]:.2f})"
                for fraction, share in found.items()
            )
            lines.append(f"  {names.get(method, method):<32} {parts}")
        return "\n".join(lines)


def mislabel_detection(
    model: nn.Module,
    train_dataset: Dataset,
    share: float = 0.1,
    *,
    methods: Sequence[str] = MISLABEL_METHODS,
    flipped: Any = None,
    checkpoints: Checkpoint | Sequence[Checkpoint] | None = None,
    epochs: int = 10,
    lr: float = 5e-3,
    batch_size: int = 64,
    collate_fn: Callable | None = None,
    top_k: int = 10,
    metric: str = "cosine",
    final_layer: str = "head",
    fractions: Sequence[float] = DEFAULT_CHECK_FRACTIONS,
    num_classes: int | None = None,
    seed: int = 0,
    layers: str | Sequence[str] | None = None,
    **hints: Any,
) -> MislabelDetection:
    """Flip training labels, rank the training set by suspicion, count the flips found.

    Two ways to call it:

    * ``flipped=None`` (default): ``share`` of the labels of ``train_dataset`` are
      flipped to another class (seeded), a copy of ``model`` is trained on them for
      ``epochs`` with Adam, and its state after each epoch is a checkpoint.
    * ``flipped`` given: ``train_dataset`` already holds the noisy labels, ``model`` is
      already trained on them, and ``checkpoints`` are its training checkpoints (state
      dicts or ``weights_only`` paths; default: the model's current weights only).

    Scores (``methods``): ``"knn"`` k-NN label disagreement in the model's pooled
    representation (:meth:`captum_rnn.attr.NearestExamples.label_disagreement`),
    ``"loss"`` cross-entropy summed over checkpoints, ``"tracin"`` Captum's
    ``TracInCPFast`` self-influence on ``final_layer``.

    The given model is never changed.

    Args:
        model: any sequence classifier, seen through :func:`captum_rnn.adapt` (untrained
            or trained, see above); its outputs may be logits, probabilities or
            log-probabilities.
        train_dataset: ``(sequence, target)`` items with integer classes.
        share: fraction of labels to flip (ignored when ``flipped`` is given).
        methods: which scores to compute.
        flipped: ``(n,)`` bool mask of already flipped labels.
        checkpoints: with ``flipped``: the training checkpoints.
        epochs, lr, batch_size: the short training (when flipping here).
        collate_fn: batch builder (default :func:`captum_rnn.data.pad_collate`).
        top_k: neighbours for the k-NN score.
        metric: the k-NN metric.
        final_layer: the final ``nn.Linear`` for TracIn.
        fractions: shares of the data checked.
        num_classes: classes (default: from the labels).
        seed: flips, shuffling and dropout.
        layers: the k-NN score's representation, as :class:`~captum_rnn.attr.NearestExamples`
            takes it (needed for a model without ``encode``, e.g. ``"fc:input"``).
        hints: the model contract's keywords (``pad_id``, ``output`` ...).

    Returns:
        A :class:`MislabelDetection`; ``print(result.summary())``.

    Example:
        >>> result = mislabel_detection(model, train, share=0.1)  # doctest: +SKIP
        >>> result.found["knn"][0.1]  # share of the flips among the top 10%  # doctest: +SKIP
    """
    methods = list(methods)
    unknown = [m for m in methods if m not in MISLABEL_METHODS]
    if not methods or unknown:
        raise ValueError(f"methods must be a subset of {MISLABEL_METHODS}, got {methods}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    labels = _labels_of(train_dataset)
    trained: nn.Module | None = None
    if flipped is None:
        if checkpoints is not None:
            raise ValueError(
                "checkpoints are only used with flipped=...: without it the labels are "
                "flipped here and a copy of the model is trained on them"
            )
        epochs = check_int("epochs", epochs, 1)
        noisy, flipped = flip_labels(labels, share, num_classes, seed)
        data: Dataset = _Relabelled(train_dataset, noisy)
        trained, states = _train_copy(
            model, data, epochs, lr, batch_size, collate_fn, seed, **hints
        )
        scoring_model: nn.Module = trained
        checkpoint_list: list[Checkpoint] = list(states)
    else:
        flipped = torch.as_tensor(flipped).bool().cpu()
        if flipped.shape != labels.shape:
            raise ValueError(f"flipped must be (n,) = ({len(labels)},), got {tuple(flipped.shape)}")
        noisy, data, scoring_model = labels, train_dataset, model
        if checkpoints is None:
            checkpoint_list = [{k: v.detach().cpu() for k, v in model.state_dict().items()}]
        else:
            checkpoint_list = _check_checkpoints(checkpoints)
    if not bool(flipped.any()):
        raise ValueError("no label is flipped")

    scores: dict[str, Tensor] = {}
    if "knn" in methods:
        from captum_rnn.attr import NearestExamples

        nearest = NearestExamples(
            scoring_model,
            data,
            layers,
            metric=metric,
            collate_fn=collate_fn,
            batch_size=256,
            **hints,
        )
        scores["knn"] = nearest.label_disagreement(top_k=min(top_k, len(labels) - 1))
    if "loss" in methods:
        scores["loss"] = checkpoint_loss_scores(
            scoring_model, data, checkpoint_list, collate_fn=collate_fn, **hints
        )
    if "tracin" in methods:
        scores["tracin"] = tracin_self_influence(
            scoring_model,
            data,
            checkpoint_list,
            final_layer=final_layer,
            collate_fn=collate_fn,
            **hints,
        )
    found = {name: flips_found(value, flipped, fractions) for name, value in scores.items()}
    return MislabelDetection(
        found=found,
        random={float(f): float(f) for f in fractions},
        scores=scores,
        flipped=flipped,
        noisy_labels=noisy,
        num_checkpoints=len(checkpoint_list),
        model=trained,
    )
