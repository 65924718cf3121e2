"""What a model's training says its outputs are.

A width-3 output of unnormalised values can be class logits or three regression values;
the values alone cannot tell. The loss a model is trained with can: ``nn.CrossEntropyLoss``
means logits, ``nn.MSELoss`` regression, ``nn.BCEWithLogitsLoss`` on three outputs three
independent labels. This module collects that evidence without running anything:

* loss modules the model holds (``self.criterion = nn.MSELoss()``, Lightning style);
* loss functions named in the source of its training methods (``training_step`` and
  methods whose name says step or loss, e.g. ``F.cross_entropy(logits, y)``) and of its
  ``forward`` (Hugging Face style models compute the loss there when given labels).

:meth:`SequenceModel.observe` uses it to decide the output kind where the model declares
none, and to refuse where the evidence and the values disagree.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

from torch import nn

# What each loss says the model's output is. "binary_logits" / "binary_probs" are one
# sigmoid per output: a binary classifier with one output, independent labels with more.
_LOSS_MODULES: dict[type, str] = {
    nn.CrossEntropyLoss: "logits",
    nn.NLLLoss: "log_probs",
    nn.BCEWithLogitsLoss: "binary_logits",
    nn.MultiLabelSoftMarginLoss: "binary_logits",
    nn.BCELoss: "binary_probs",
    nn.MSELoss: "regression",
    nn.L1Loss: "regression",
    nn.SmoothL1Loss: "regression",
    nn.HuberLoss: "regression",
    nn.GaussianNLLLoss: "regression",
    nn.PoissonNLLLoss: "regression",
}
_LOSS_FUNCTIONS: dict[str, str] = {
    "binary_cross_entropy_with_logits": "binary_logits",
    "multilabel_soft_margin_loss": "binary_logits",
    "binary_cross_entropy": "binary_probs",
    "cross_entropy": "logits",
    "nll_loss": "log_probs",
    "mse_loss": "regression",
    "l1_loss": "regression",
    "smooth_l1_loss": "regression",
    "huber_loss": "regression",
    "gaussian_nll_loss": "regression",
    "poisson_nll_loss": "regression",
}
_NAMES = {**_LOSS_FUNCTIONS, **{cls.__name__: kind for cls, kind in _LOSS_MODULES.items()}}
# Longest names first, so that "binary_cross_entropy(" is not read as "cross_entropy(".
_CALL = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _NAMES), key=len, reverse=True)) + r")\s*\("
)
# training methods, and forward: Hugging Face style models compute their loss there when
# given labels
_TRAINING_METHOD = re.compile(r"step|loss|^forward$", re.IGNORECASE)
_LIBRARY_PREFIXES = ("torch", "pytorch_lightning", "lightning", "captum")


@dataclass(frozen=True)
class LossEvidence:
    """One place that says what the outputs are.

    Attributes:
        kind: ``"logits"``, ``"log_probs"``, ``"regression"``, ``"binary_logits"`` or
            ``"binary_probs"`` (one sigmoid per output).
        where: how it was found, for messages, e.g. ``"criterion = nn.MSELoss()"``.
    """

    kind: str
    where: str


def loss_evidence(module: nn.Module) -> list[LossEvidence]:
    """The losses ``module`` holds or its training methods call, in the order found.

    Args:
        module: the user's model (an ``nn.Module`` or a LightningModule).

    Returns:
        One :class:`LossEvidence` per loss found; empty when nothing says.

    Example:
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc, self.criterion = nn.Linear(4, 3), nn.MSELoss()
        >>> [e.kind for e in loss_evidence(Net())]
        ['regression']
    """
    found: list[LossEvidence] = []
    for name, sub in module.named_modules():
        kind = _LOSS_MODULES.get(type(sub))
        if kind is not None:
            found.append(LossEvidence(kind, f"{name or 'the model'} = nn.{type(sub).__name__}()"))
    for method_name, source in _training_sources(type(module)):
        for match in _CALL.finditer(source):
            called = match.group(1)
            found.append(LossEvidence(_NAMES[called], f"{method_name} calls {called}(...)"))
    return found


def _training_sources(cls: type) -> list[tuple[str, str]]:
    """Source of the user's own methods that train (``training_step``, ``*loss*``,
    ``*step*``) and of ``forward``, from the class and its user-written bases; library
    classes are skipped."""
    sources = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__.split(".")[0] in _LIBRARY_PREFIXES:
            continue
        for name, member in vars(klass).items():
            if name in seen or not callable(member) or not _TRAINING_METHOD.search(name):
                continue
            if name.startswith("predict") or name.startswith("test"):
                continue  # inference steps say nothing about the training loss
            seen.add(name)
            try:
                sources.append((name, inspect.getsource(member)))
            except (OSError, TypeError):  # defined in a notebook cell or a C extension
                continue
    return sources


def kind_for_width(evidence: LossEvidence, width: int) -> str | None:
    """The output kind ``evidence`` means for outputs of ``width`` values per row, or
    ``None`` for independent labels (sigmoid per output, ``width >= 2``), which are not
    one classifier's classes."""
    if evidence.kind == "binary_logits":
        return "logits" if width == 1 else None
    if evidence.kind == "binary_probs":
        return "probs" if width == 1 else None
    return evidence.kind


_SOFTMAX_CALL = re.compile(r"\b(log_softmax|softmax)\s*\(")
_SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax)


def normalises(*owners: nn.Module | None) -> bool:
    """Whether the model's own forward normalises its outputs: it calls ``softmax`` /
    ``log_softmax`` or holds an ``nn.Softmax`` / ``nn.LogSoftmax``.

    Args:
        owners: the model, and for a wrapper whose forward passes ``*args, **kwargs`` on,
            the network it wraps (``None`` entries are skipped).

    Rows that sum to 1 are read as probabilities only with this evidence: class logits of
    an untrained model can sum to 1 on one row by chance, and did.

    Example:
        >>> normalises(nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=-1)))
        True
    """
    for owner in owners:
        if owner is None:
            continue
        if any(isinstance(child, _SOFTMAX_MODULES) for child in owner.children()):
            return True
        if type(owner).__module__.split(".")[0] in _LIBRARY_PREFIXES:
            continue
        try:
            source = inspect.getsource(type(owner).forward)
        except (OSError, TypeError):
            continue
        if _SOFTMAX_CALL.search(source):
            return True
    return False
