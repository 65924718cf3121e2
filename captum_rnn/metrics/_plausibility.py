"""Plausibility: does an explanation agree with what people (or the data's design) say matters?

Against a 0/1 rationale mask (the planted-cue data gives one; ERASER data sets give human
rationales): average precision (AUPRC), and F1 and intersection-over-union of the top-k
tokens. Against human word ratings: the rank correlation between each word's
attribution toward the positive class and its valence in a lexicon (VADER).

These functions need no model. Padded positions are never ranked or counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from captum_rnn._utils.ranking import average_precision

__all__ = [
    "LexiconAgreement",
    "auprc",
    "auroc",
    "lexicon_agreement",
    "spearman",
    "token_f1",
    "token_iou",
    "top_k_mask",
]


def _rows(values: Any, name: str, dtype: torch.dtype) -> list[Tensor] | Tensor:
    """A padded tensor as is, or a list of 1-D tensors from lists/Explanations."""
    if isinstance(values, Tensor):
        values = values.detach()
        if values.dim() == 1:
            values = values[None]
        if values.dim() == 3:
            values = values.sum(dim=-1)
        if values.dim() != 2:
            raise ValueError(f"{name} must be (batch, time), got shape {tuple(values.shape)}")
        return values.to(dtype)
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a tensor or a list of per-sequence values")
    return [torch.as_tensor(getattr(v, "scores", v)).detach().reshape(-1).to(dtype) for v in values]


def _aligned(attributions: Any, rationale: Any, lengths: Any) -> list[tuple[Tensor, Tensor]]:
    """Pairs (scores, relevant) over the real positions of each sequence."""
    scores = _rows(attributions, "attributions", torch.float64)
    relevant = _rows(rationale, "rationale", torch.bool)
    if len(scores) != len(relevant):
        raise ValueError(
            f"attributions and rationale differ in batch size: {len(scores)} != {len(relevant)}"
        )
    if isinstance(scores, list) and isinstance(relevant, list):
        for i, (s, r) in enumerate(zip(scores, relevant, strict=True)):
            if len(s) != len(r):
                raise ValueError(
                    f"attributions[{i}] has {len(s)} scores but rationale[{i}] has {len(r)} entries"
                )
    if lengths is None:
        if isinstance(relevant, list):
            lengths = [len(r) for r in relevant]
        elif isinstance(scores, list):
            lengths = [len(s) for s in scores]
        else:
            lengths = [scores.shape[1]] * len(scores)
    lengths = [int(n) for n in torch.as_tensor(lengths).reshape(-1).tolist()]
    if len(lengths) != len(scores):
        raise ValueError(f"lengths must have {len(scores)} entries, got {len(lengths)}")
    pairs = []
    for i, n in enumerate(lengths):
        s, r = scores[i], relevant[i]
        if n < 1 or n > len(s) or n > len(r):
            raise ValueError(
                f"sequence {i}: length {n} does not fit attributions ({len(s)}) and "
                f"rationale ({len(r)})"
            )
        if isinstance(scores, list) and len(s) != n:
            raise ValueError(f"attributions[{i}] has {len(s)} scores for {n} positions")
        if isinstance(relevant, list) and len(r) != n:
            raise ValueError(f"rationale[{i}] has {len(r)} entries for {n} positions")
        s = s[:n].cpu()
        if not bool(torch.isfinite(s).all()):
            raise ValueError(f"attributions[{i}] contain NaN or infinite values")
        pairs.append((s, r[:n].cpu()))
    return pairs


def auprc(
    attributions: Any, rationale: Any, *, lengths: Any = None, absolute: bool = False
) -> Tensor:
    """Area under the precision-recall curve (average precision) of each sequence's
    attributions against its 0/1 rationale.

    Chance level: a random ranking scores ``E[AP]``, which is ``H_n / n`` for one
    rationale token among ``n`` (``H_n`` the harmonic number) and tends to the share of
    rationale tokens when there are many. Tied scores are one threshold, so a constant
    attribution scores exactly that share.

    Args:
        attributions: scores ``(batch, time)`` (``(batch, time, dim)`` is summed),
            ``Explanations``, or a list of per-sequence scores.
        rationale: 0/1 masks ``(batch, time)`` or a list of per-sequence masks (for
            example ``PlantedCues.masks``).
        lengths: true lengths; taken from the lists when ragged, else every position.
        absolute: rank by ``|attribution|``.

    Returns:
        float64 ``(batch,)``; NaN for sequences without rationale tokens.

    Example:
        >>> auprc(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[1, 0, 1]]))
        tensor([1.], dtype=torch.float64)
    """
    pairs = _aligned(attributions, rationale, lengths)
    return torch.tensor(
        [average_precision(s.abs() if absolute else s, r) for s, r in pairs], dtype=torch.float64
    )


def auroc(
    attributions: Any, rationale: Any, *, lengths: Any = None, absolute: bool = False
) -> Tensor:
    """Area under the ROC curve of each sequence's attributions against its 0/1 rationale:
    the chance that a rationale position outranks a position outside it (ties count
    half), 0.5 for a random ranking whatever the rationale's share.

    Args:
        attributions, rationale, lengths, absolute: as :func:`auprc`.

    Returns:
        float64 ``(batch,)``; NaN for sequences whose real positions are all in the
        rationale or all outside it.

    Example:
        >>> auroc(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[1, 0, 1]]))
        tensor([1.], dtype=torch.float64)
    """
    out = []
    for s, r in _aligned(attributions, rationale, lengths):
        s = s.abs() if absolute else s
        positives, negatives = int(r.sum()), int((~r).sum())
        if positives == 0 or negatives == 0:
            out.append(math.nan)
            continue
        # Mann-Whitney U from average ranks (ties share their mean rank)
        order = torch.argsort(s, stable=True)
        ranks = torch.empty_like(s)
        ranks[order] = torch.arange(1, len(s) + 1, dtype=s.dtype)
        unique, inverse = torch.unique(s, return_inverse=True)
        mean_rank = torch.zeros(len(unique), dtype=s.dtype).index_add_(0, inverse, ranks)
        mean_rank /= torch.bincount(inverse, minlength=len(unique)).to(s.dtype)
        u = float(mean_rank[inverse][r].sum()) - positives * (positives + 1) / 2
        out.append(u / (positives * negatives))
    return torch.tensor(out, dtype=torch.float64)


def _k_for(k: Any, n: int, positives: int) -> int:
    if k is None:
        return positives
    if isinstance(k, bool):
        raise TypeError("k must be None, an int or a fraction, got a bool")
    if isinstance(k, int):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return min(k, n)
    if isinstance(k, float) and 0 < k <= 1:
        return min(max(1, math.floor(k * n + 0.5 + 1e-9)), n)
    raise ValueError(f"k must be None, an int >= 1 or a fraction in (0, 1], got {k!r}")


def top_k_mask(scores: Tensor, k: int, absolute: bool = False) -> Tensor:
    """Boolean mask of the ``k`` highest scores of a 1-D tensor (ties: earlier first)."""
    values = scores.abs() if absolute else scores
    order = torch.argsort(values, descending=True, stable=True)
    mask = torch.zeros_like(values, dtype=torch.bool)
    mask[order[:k]] = True
    return mask


def _overlap(attributions, rationale, k, lengths, absolute, which: str) -> Tensor:
    out = []
    for s, r in _aligned(attributions, rationale, lengths):
        positives = int(r.sum())
        kk = _k_for(k, len(s), positives)
        if kk == 0:
            out.append(math.nan)
            continue
        predicted = top_k_mask(s, kk, absolute)
        hits = int((predicted & r).sum())
        if which == "f1":
            precision = hits / kk
            recall = hits / positives if positives else math.nan
            out.append(0.0 if hits == 0 else 2 * precision * recall / (precision + recall))
        else:
            union = int((predicted | r).sum())
            out.append(hits / union if union else math.nan)
    return torch.tensor(out, dtype=torch.float64)


def token_f1(
    attributions: Any,
    rationale: Any,
    *,
    k: int | float | None = None,
    lengths: Any = None,
    absolute: bool = False,
) -> Tensor:
    """Token-level F1 of the top-k attributed tokens against the rationale.

    Args:
        k: tokens predicted per sequence: ``None`` (the number of rationale tokens, so
            precision equals recall), an int, or a fraction of the sequence length.
        Other arguments: as :func:`auprc`.

    Returns:
        float64 ``(batch,)``; NaN for sequences without rationale tokens when ``k`` is
        ``None``.

    Example:
        >>> token_f1(torch.tensor([[0.9, 0.1, 0.5, 0.0]]), torch.tensor([[1, 1, 0, 0]]))
        tensor([0.5000], dtype=torch.float64)
    """
    return _overlap(attributions, rationale, k, lengths, absolute, "f1")


def token_iou(
    attributions: Any,
    rationale: Any,
    *,
    k: int | float | None = None,
    lengths: Any = None,
    absolute: bool = False,
) -> Tensor:
    """Intersection over union of the top-k attributed tokens and the rationale
    (arguments as :func:`token_f1`).

    Returns:
        float64 ``(batch,)``.

    Example:
        >>> token_iou(torch.tensor([[0.9, 0.1, 0.5, 0.0]]), torch.tensor([[1, 1, 0, 0]]))
        tensor([0.3333], dtype=torch.float64)
    """
    return _overlap(attributions, rationale, k, lengths, absolute, "iou")


# ---------------------------------------------------------------------- lexicon
def _average_ranks(values: Tensor) -> Tensor:
    """1-based ranks with ties given their average rank."""
    order = torch.argsort(values, stable=True)
    sorted_values = values[order]
    ranks = torch.empty_like(values, dtype=torch.float64)
    n = len(values)
    start = 0
    while start < n:
        end = start
        while end + 1 < n and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation of two 1-D sequences (ties get average ranks).

    Returns:
        A float in ``[-1, 1]``; NaN when either side is constant or has < 2 values.

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 40, 30])
        0.8
    """
    a = torch.as_tensor(a, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in length: {a.numel()} != {b.numel()}")
    if a.numel() < 2:
        return math.nan
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(torch.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum()) / denom if denom > 0 else math.nan


@dataclass
class LexiconAgreement:
    """Agreement of token attributions with human word valence.

    Attributes:
        spearman: rank correlation in ``[-1, 1]`` (higher is better; 0 is chance).
        n_words: distinct lexicon words used.
        n_occurrences: token occurrences found in the lexicon.
        aggregate: ``"word"`` (mean attribution per word) or ``"occurrence"``.
        words: per word ``(word, mean attribution, valence, count)``, sorted by count.
    """

    spearman: float
    n_words: int
    n_occurrences: int
    aggregate: str
    words: list[tuple[str, float, float, int]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (the 20 most frequent words)."""
        return {
            "spearman": None if math.isnan(self.spearman) else self.spearman,
            "n_words": self.n_words,
            "n_occurrences": self.n_occurrences,
            "aggregate": self.aggregate,
            "top_words": [list(w) for w in self.words[:20]],
        }


def lexicon_agreement(
    explanations: Sequence[Any],
    lexicon: Mapping[str, float],
    *,
    positive_class: int = 1,
    aggregate: str = "word",
    lowercase: bool = True,
    min_count: int = 1,
) -> LexiconAgreement:
    """Rank correlation between attributions toward the positive class and human valence.

    Every token of every explanation that is in ``lexicon`` contributes: with
    ``aggregate="word"`` each distinct word's mean attribution is compared with its
    valence (each word counts once); with ``"occurrence"`` every occurrence counts.

    Args:
        explanations: ``Explanation`` objects (from ``captum_rnn.explain`` with
            ``vocab=``, so tokens are words) explaining ``positive_class``.
        lexicon: word -> valence, e.g. ``captum_rnn.data.load_valence_lexicon()``.
        positive_class: the target every explanation must explain.
        aggregate: ``"word"`` or ``"occurrence"``.
        lowercase: look words up in lower case.
        min_count: with ``"word"``, ignore words seen fewer times.

    Returns:
        A :class:`LexiconAgreement`.

    Raises:
        ValueError: when an explanation explains another target.

    Example:
        >>> from captum_rnn import Explanation
        >>> e = Explanation(["a", "good", "bad", "film"], [0.0, 2.0, -1.0, 0.1], "ig", target=1)
        >>> lexicon_agreement([e], {"good": 1.9, "bad": -2.5, "fine": 0.8}).spearman
        1.0
    """
    if aggregate not in ("word", "occurrence"):
        raise ValueError(f"aggregate must be 'word' or 'occurrence', got {aggregate!r}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    collected: dict[str, list[float]] = {}
    occurrences = 0
    for i, e in enumerate(explanations):
        target = getattr(e, "target", positive_class)
        if target is not None and target != positive_class:
            raise ValueError(
                f"explanations[{i}] explains target {target}, not the positive class "
                f"{positive_class}: explain with target={positive_class}"
            )
        for token, score in zip(e.tokens, e.scores, strict=True):
            word = token.lower() if lowercase else token
            if word in lexicon:
                collected.setdefault(word, []).append(float(score))
                occurrences += 1
    words = sorted(
        (
            (w, sum(v) / len(v), float(lexicon[w]), len(v))
            for w, v in collected.items()
            if len(v) >= min_count
        ),
        key=lambda item: (-item[3], item[0]),
    )
    if aggregate == "word":
        rho = spearman([w[1] for w in words], [w[2] for w in words])
    else:
        pairs = [(s, float(lexicon[w])) for w, v in collected.items() for s in v]
        rho = spearman([p[0] for p in pairs], [p[1] for p in pairs])
    return LexiconAgreement(rho, len(words), occurrences, aggregate, words)
