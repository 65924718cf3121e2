"""Local rules for text classifiers: anchors found by a bandit search.

An anchor (Ribeiro, Singh and Guestrin, AAAI 2018) is a set of tokens of one input such
that, whatever happens to the other tokens, the model keeps its prediction with high
probability: ``contains "not" and "bad" -> negative (precision 0.97, coverage 0.03)``.
Perturbations replace each token outside the anchor, independently with probability
``mask_prob``, by a replacement token: the unknown token by default, or, given training
sequences, a token drawn from their unigram distribution (``perturbation="unigram"``)
or from the tokens found at the same position (``"position"``), so that a perturbed
input still reads like the data and the empty anchor holds only when the prediction
really does not depend on the words. Padding is never perturbed and never part of a rule, and trailing padding is cut before the model sees
a perturbation, so a sequence gets the same anchor whatever it is padded to.

The search is the paper's beam search: anchors grow by one token per round; KL-LUCB
(Kaufmann and Kalyanakrishnan, 2013) spends model calls on the candidates whose
precision is still uncertain to pick the best ``beam_size``. A perturbation drawn for an
anchor is also a draw for every larger anchor whose extra tokens it happened to keep, so
candidates start from the rows already drawn. An anchor is precise only when the KL lower
confidence bound of its precision reaches the target; the smallest such anchor wins.
When none does, the search runs again with a beam twice and four times as wide, then
returns the most precise non-empty anchor it found with ``reached=False`` (never the
empty one, and never presented as a rule that holds). :meth:`RuleExtraction.explain` reports each anchor's coverage over the data and
its precision on fresh perturbations drawn with another seed (held-out precision).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from captum.attr import Attribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_rnn._utils.options import check_int
from captum_rnn.models.protocol import adapt_if_readable

__all__ = ["Anchor", "RuleExtraction"]


@dataclass(frozen=True)
class Anchor:
    """A local rule: these tokens of this input keep the model's prediction.

    Attributes:
        tokens: the anchor's tokens as text (token ids as text without a vocabulary).
        positions: their positions in the input.
        token_ids: their token ids.
        label: the class the rule predicts.
        label_name: its display name.
        precision: estimated probability that a perturbation keeping the anchor is
            still predicted as ``label``.
        precision_lower: the KL lower confidence bound on the precision (confidence
            ``1 - delta`` over all the candidates of the search).
        coverage: fraction of ``coverage_data`` that contains every anchor token, or,
            without data, the probability that a perturbation keeps the anchor.
        num_samples: perturbations evaluated for this anchor.
        reached: whether the anchor is precise: ``precision_lower`` reached the
            precision target. ``False`` marks a best effort (the most precise anchor
            found within the sample budget), which must not be read as a rule.
        held_out_precision: precision on fresh perturbations drawn with another seed
            than the search (``None`` when not measured).
    """

    tokens: tuple[str, ...]
    positions: tuple[int, ...]
    token_ids: tuple[int, ...]
    label: int
    label_name: str
    precision: float
    precision_lower: float
    coverage: float
    num_samples: int
    reached: bool
    held_out_precision: float | None = None

    def __str__(self) -> str:
        condition = (
            "contains " + " and ".join(_quote(t) for t in self.tokens) if self.tokens else "always"
        )
        text = (
            f"{condition} -> {self.label_name} "
            f"(precision {self.precision:.2f}"
            + (
                ""
                if self.held_out_precision is None
                else f", held-out precision {self.held_out_precision:.2f}"
            )
            + f", coverage {_share(self.coverage)})"
        )
        # a best effort that missed the target must not read like a rule that holds
        return text if self.reached else f"{text}, precision target not reached"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tokens": list(self.tokens),
            "positions": list(self.positions),
            "token_ids": list(self.token_ids),
            "label": self.label,
            "label_name": self.label_name,
            "precision": self.precision,
            "precision_lower": self.precision_lower,
            "coverage": self.coverage,
            "num_samples": self.num_samples,
            "reached": self.reached,
            "held_out_precision": self.held_out_precision,
        }


def _share(x: float) -> str:
    """Two decimals, or three for a small non-zero share (a rare word's coverage)."""
    return f"{x:.3f}" if 0 < x < 0.01 else f"{x:.2f}"


def _quote(token: str) -> str:
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- confidence bounds
def _kl_bernoulli(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def _kl_upper(p: np.ndarray, level: np.ndarray) -> np.ndarray:
    low, high = p.copy(), np.ones_like(p)
    for _ in range(20):
        mid = (low + high) / 2
        over = _kl_bernoulli(p, mid) > level
        high = np.where(over, mid, high)
        low = np.where(over, low, mid)
    return high


def _kl_lower(p: np.ndarray, level: np.ndarray) -> np.ndarray:
    low, high = np.zeros_like(p), p.copy()
    for _ in range(20):
        mid = (low + high) / 2
        over = _kl_bernoulli(p, mid) > level
        low = np.where(over, mid, low)
        high = np.where(over, high, mid)
    return low


def _beta(n_features: int, t: int, delta: float) -> float:
    # exploration rate of KL-LUCB as used by Ribeiro et al.'s reference code
    temp = math.log(405.5 * n_features * t**1.1 / delta)
    return temp + math.log(temp)


# ---------------------------------------------------------------- the search
class _Arms:
    """Precision statistics of the candidate anchors of one input.

    A batch drawn for anchor ``B`` keeps ``B`` and drops every other token independently
    with probability ``mask_prob``. A row of it in which the tokens of a larger anchor
    ``C`` happen to be kept too is a draw of exactly ``C``'s perturbation (the tokens
    outside ``C`` are still dropped independently), so it counts for ``C`` as well: new
    candidates start from the rows already drawn instead of fresh model calls. Rows are
    picked by what was kept, never by the model's answer, so every estimate stays
    unbiased and the search samples the distribution the held-out precision is measured
    on.
    """

    def __init__(
        self, sampler: Callable[[list[tuple[int, ...]], int], list[tuple[np.ndarray, np.ndarray]]]
    ) -> None:
        self.sampler = sampler
        self.batches: list[tuple[frozenset[int], np.ndarray, np.ndarray]] = []
        self.n: dict[tuple[int, ...], int] = {}
        self.hits: dict[tuple[int, ...], int] = {}
        self.used = 0

    @staticmethod
    def _rows(anchor: tuple[int, ...], batch: tuple[frozenset[int], np.ndarray, np.ndarray]):
        """(rows, hits) of ``batch`` that are draws of ``anchor`` (None when none can be)."""
        base, ok, kept = batch
        if not base.issubset(anchor):
            return None
        extra = [f for f in anchor if f not in base]
        rows = kept[:, extra].all(axis=1) if extra else np.ones(len(ok), dtype=bool)
        return int(rows.sum()), int(ok[rows].sum())

    def register(self, anchors: Sequence[tuple[int, ...]]) -> None:
        """Start tracking ``anchors`` with every row already drawn that fits them."""
        for anchor in anchors:
            if anchor in self.n:
                continue
            n = hits = 0
            for batch in self.batches:
                found = self._rows(anchor, batch)
                if found is not None:
                    n, hits = n + found[0], hits + found[1]
            self.n[anchor], self.hits[anchor] = n, hits

    def sample(self, anchors: list[tuple[int, ...]], count: int) -> None:
        self.register(anchors)
        results = self.sampler(anchors, count)
        for anchor, (ok, kept) in zip(anchors, results, strict=True):
            batch = (frozenset(anchor), ok, kept)
            self.batches.append(batch)
            self.used += len(ok)
            for known in self.n:
                found = self._rows(known, batch)
                if found is not None:
                    self.n[known] += found[0]
                    self.hits[known] += found[1]

    def mean(self, anchor: tuple[int, ...]) -> float:
        return self.hits[anchor] / max(self.n[anchor], 1)

    def lower(self, anchor: tuple[int, ...], beta: float) -> float:
        m = np.array([self.mean(anchor)])
        return float(_kl_lower(m, np.array([beta / max(self.n[anchor], 1)]))[0])

    def upper(self, anchor: tuple[int, ...], beta: float) -> float:
        m = np.array([self.mean(anchor)])
        return float(_kl_upper(m, np.array([beta / max(self.n[anchor], 1)]))[0])


def _kl_lucb(
    arms: _Arms,
    candidates: list[tuple[int, ...]],
    top_n: int,
    n_features: int,
    delta: float,
    epsilon: float,
    batch_size: int,
    max_samples: int,
) -> list[tuple[int, ...]]:
    """The ``top_n`` candidates of highest precision, found with few samples."""
    if len(candidates) <= top_n:
        return sorted(candidates, key=lambda a: -arms.mean(a))
    t = 1
    while True:
        means = np.array([arms.mean(a) for a in candidates])
        counts = np.array([arms.n[a] for a in candidates], dtype=np.float64)
        level = _beta(n_features, t, delta) / counts
        upper = _kl_upper(means, level)
        lower = _kl_lower(means, level)
        order = np.argsort(-means, kind="stable")
        top, rest = order[:top_n], order[top_n:]
        ut = rest[np.argmax(upper[rest])]
        lt = top[np.argmin(lower[top])]
        if upper[ut] - lower[lt] <= epsilon or arms.used >= max_samples:
            return [candidates[i] for i in top]
        arms.sample([candidates[int(ut)], candidates[int(lt)]], batch_size)
        t += 1


#: most perturbations spent proving one anchor precise, in batches (``32 * batch_size``):
#: enough for an anchor of true precision 0.97 to prove 0.95
_VERIFY_BATCHES = 32


def _anchor_search(
    arms: _Arms,
    n_features: int,
    precision: float,
    beam_size: int,
    max_anchor_size: int,
    delta: float,
    epsilon: float,
    epsilon_stop: float,
    batch_size: int,
    max_samples: int,
    allowed: Sequence[int] | None = None,
    min_samples: int = 0,
) -> tuple[tuple[int, ...], bool, float]:
    """Beam search; returns the anchor, whether it is precise, its lower bound.

    An anchor is precise when the KL lower confidence bound of its precision (at
    confidence ``1 - delta`` over every candidate the search may test) reaches
    ``precision``. When no anchor of the allowed sizes is, the search is run again with
    a beam twice, then four times as wide (the statistics are kept), before the most
    precise non-empty anchor found is returned as not precise.

    ``allowed``: the features that may enter an anchor (default all)."""
    allowed = range(n_features) if allowed is None else allowed
    widest = beam_size * 4
    verify_beta = math.log(1.0 / (delta / (1 + (widest - 1) * n_features)))
    verified: dict[tuple[int, ...], bool] = {}

    def verify(anchor: tuple[int, ...]) -> bool:
        """Sample until the lower bound reaches the target, the upper bound shows the
        anchor misses it (by ``epsilon_stop``), or the anchor's share of samples is spent
        (once per anchor: a wider pass does not test it again)."""
        if anchor in verified:
            return verified[anchor]
        cap = arms.n[anchor] + _VERIFY_BATCHES * batch_size
        while arms.used < max_samples and arms.n[anchor] < cap:
            mean = arms.mean(anchor)
            if arms.n[anchor] >= min_samples and arms.lower(anchor, verify_beta) >= precision:
                break
            if (
                arms.n[anchor]
                and mean < precision
                and (arms.upper(anchor, verify_beta) < precision + epsilon_stop)
            ):
                break
            arms.sample([anchor], batch_size)
        ok = arms.n[anchor] >= max(min_samples, 1) and (
            arms.lower(anchor, verify_beta) >= precision
        )
        verified[anchor] = ok
        return ok

    def result(anchor: tuple[int, ...], ok: bool) -> tuple[tuple[int, ...], bool, float]:
        return anchor, ok, arms.lower(anchor, verify_beta)

    empty: tuple[int, ...] = ()
    arms.sample([empty], batch_size)
    if verify(empty):
        return result(empty, True)
    # when no anchor is precise, the most precise non-empty one explored is returned
    # (as not precise): "always" is not a rule when the prediction depends on the words
    best: tuple[float, float, tuple[int, ...]] = (-1.0, -1.0, empty)
    width = beam_size
    while True:
        beam = [empty]
        for _size in range(1, max_anchor_size + 1):
            candidates = sorted(
                {tuple(sorted((*a, f))) for a in beam for f in allowed if f not in a}
            )
            if not candidates or arms.used >= max_samples:
                break
            arms.register(candidates)
            # rows drawn for the beam count for its extensions; only thin ones are sampled
            thin = [a for a in candidates if arms.n[a] < max(1, batch_size // 2)]
            if thin:
                arms.sample(thin, batch_size)
            # the clear leaders first: a leader that passes ends the search at this size
            leaders = sorted(candidates, key=lambda a: -arms.mean(a))[:width]
            passed = [(arms.mean(a), a) for a in leaders if verify(a)]
            if not passed:
                # KL-LUCB picks the beam; each round may spend a quarter of what is left
                round_cap = arms.used + max(2 * batch_size, (max_samples - arms.used) // 4)
                beam = _kl_lucb(
                    arms,
                    candidates,
                    width,
                    n_features,
                    delta,
                    epsilon,
                    batch_size,
                    min(max_samples, round_cap),
                )
                passed = [(arms.mean(a), a) for a in beam if verify(a)]
            for a in (*leaders, *beam):
                if a:
                    best = max(best, (arms.lower(a, verify_beta), arms.mean(a), a))
            if passed:
                return result(max(passed)[1], True)
        if width >= widest or arms.used >= max_samples:
            break
        width *= 2
    return result(best[2], False)


# ---------------------------------------------------------------- the perturbation
_PERTURBATIONS = ("replace", "unigram", "position")


class _Fill:
    """Draws the tokens that replace perturbed ones.

    ``"replace"``: the ``replacement`` ids, uniformly; ``"unigram"``: a token of
    ``train_data`` drawn at random (its unigram distribution, padding left out);
    ``"position"``: a token found at the same position in ``train_data`` (the unigram
    draw where no training sequence is that long)."""

    def __init__(
        self, kind: str | None, replacement: Sequence[int], train_data: Any, pad_index: int
    ) -> None:
        if kind is None:
            kind = "replace" if train_data is None else "unigram"
        if kind not in _PERTURBATIONS:
            raise ValueError(f"perturbation must be one of {_PERTURBATIONS}, got {kind!r}")
        self.kind = kind
        self.columns: list[Tensor] = []
        if kind == "replace":
            self.pool = torch.as_tensor(list(replacement), dtype=torch.long)
            return
        if train_data is None:
            raise ValueError(
                f"perturbation={kind!r} draws from the training data: pass train_data= "
                "(token ids (n, time) of training sequences)"
            )
        if not isinstance(train_data, Tensor) or train_data.dim() != 2:
            raise ValueError("train_data must be token ids of shape (n, time)")
        if train_data.dtype.is_floating_point or train_data.dtype == torch.bool:
            raise TypeError(f"train_data must hold integer token ids, got {train_data.dtype}")
        data = train_data.detach().cpu().long()
        real = data != pad_index
        self.pool = data[real]
        if self.pool.numel() == 0:
            raise ValueError("train_data holds only padding: there is nothing to draw from")
        if kind == "position":
            self.columns = [data[:, t][real[:, t]] for t in range(data.shape[1])]

    def draw(self, positions: Sequence[int], total: int, g: torch.Generator) -> Tensor:
        """``(total, len(positions))`` replacement tokens for these input positions."""
        if self.kind != "position":
            return self.pool[torch.randint(len(self.pool), (total, len(positions)), generator=g)]
        out = torch.empty(total, len(positions), dtype=torch.long)
        for f, p in enumerate(positions):
            col = self.columns[p] if p < len(self.columns) else self.pool
            col = col if col.numel() else self.pool
            out[:, f] = col[torch.randint(len(col), (total,), generator=g)]
        return out


# ---------------------------------------------------------------- the attribution
@dataclass(frozen=True)
class _SearchOptions:
    """The search options of :meth:`RuleExtraction.attribute` (documented there)."""

    precision: float = 0.95
    pad_index: int | None = None
    replacement: int | Sequence[int] | None = None
    mask_prob: float = 0.5
    beam_size: int = 2
    max_anchor_size: int | None = None
    batch_size: int = 64
    max_samples: int = 10000
    delta: float = 0.1
    epsilon: float = 0.1
    epsilon_stop: float = 0.05
    seed: int = 0
    exclude: Sequence[int] = ()
    perturbation: str | None = None
    train_data: Tensor | None = None
    min_samples: int = 0


_SEARCH_OPTIONS = tuple(_SearchOptions.__dataclass_fields__)


def _check_inputs(inputs: Any) -> Tensor:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a LongTensor of token ids, got {type(inputs).__name__}")
    if inputs.dtype.is_floating_point or inputs.dtype == torch.bool or inputs.dtype.is_complex:
        raise TypeError(f"inputs must hold integer token ids, got dtype {inputs.dtype}")
    if inputs.dim() != 2:
        raise ValueError(f"inputs must have shape (batch, time), got {tuple(inputs.shape)}")
    if inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs is empty (shape {tuple(inputs.shape)})")
    return inputs


def _check_target(target: Any, batch: int) -> list[int | None]:
    """One class (or None) per sequence; the range is checked against the model's
    classes once its scores are seen."""
    if target is None:
        return [None] * batch
    if isinstance(target, (Tensor, np.ndarray)):
        target = target.item() if target.ndim == 0 else target.reshape(-1).tolist()

    def is_int(t: Any) -> bool:
        return isinstance(t, numbers.Integral) and not isinstance(t, (bool, np.bool_))

    if is_int(target):
        return [int(target)] * batch
    if isinstance(target, Sequence) and not isinstance(target, str) and len(target) == batch:
        if all(is_int(t) for t in target):
            return [int(t) for t in target]
    raise ValueError(
        f"target must be None, an int, or {batch} ints (one per sequence), got {target!r}"
    )


def _token_names(vocab: Any) -> Callable[[int], str]:
    if vocab is None:
        return str
    if hasattr(vocab, "itos"):
        itos = vocab.itos
        return lambda i: itos[i] if 0 <= i < len(itos) else str(i)
    if isinstance(vocab, Sequence):
        return lambda i: str(vocab[i]) if 0 <= i < len(vocab) else str(i)
    raise TypeError(f"vocab must be a Vocabulary or a list of tokens, got {type(vocab).__name__}")


class RuleExtraction(Attribution):
    """Local rules (anchors) for a classifier over token ids, as a Captum ``Attribution``.

    ``attribute`` returns a 0/1 mask of the tokens in each input's anchor (padding is
    always 0); ``explain`` returns the :class:`Anchor` objects with their precision and
    coverage.

    Args:
        forward_func: the model (any ``nn.Module`` over token ids, seen through the model
            contract: its own layout, lengths argument and output kind; the first item of
            ``additional_forward_args`` is taken as the lengths; ids are given batch-first
            ``(batch, time)`` whatever the model's layout), or any function mapping
            token ids ``(batch, time)`` (and ``additional_forward_args``) to class scores
            ``(batch, num_classes)``.
        hints: the model contract's hints (``pad_id``, ``batch_first``, ``output``, ...;
            see :func:`captum_rnn.adapt`).

    The padding id is the model's (``pad_index=`` otherwise, or the vocabulary's in
    :meth:`explain`), never assumed; perturbed tokens become the vocabulary's unknown
    token when a vocabulary is given, else ``replacement=`` (default: id 1, or 0 when the
    padding is 1).

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> rules = RuleExtraction(model)
        >>> mask = rules.attribute(torch.tensor([[4, 5, 6, 0]]), precision=0.9)
        >>> mask.shape, float(mask[0, 3])
        (torch.Size([1, 4]), 0.0)
    """

    def __init__(self, forward_func: Callable[..., Tensor], **hints: Any) -> None:
        self.seq = (
            adapt_if_readable(forward_func, **hints)
            if isinstance(forward_func, nn.Module)
            else None
        )
        if self.seq is not None:
            seq = self.seq

            def forward_func(ids: Tensor, *args: Any) -> Tensor:
                lengths = args[0] if args and isinstance(args[0], Tensor) else None
                if lengths is not None and lengths.dim() != 1:
                    lengths = None
                return seq.probabilities(seq(ids, lengths))

        super().__init__(forward_func)

    def _specials(self, pad_index: Any, replacement: Any, vocab: Any = None) -> tuple[int, Any]:
        """The padding id and the replacement token(s): given, the model's or the vocabulary's."""
        if pad_index is None:
            if self.seq is not None and self.seq.pad_id is not None:
                pad_index = self.seq.pad_id
            elif vocab is not None and hasattr(vocab, "pad_index"):
                pad_index = vocab.pad_index
            else:
                raise ValueError(
                    "cannot tell the padding id of forward_func: pass pad_index= (or vocab= "
                    "to explain, or an nn.Module whose embedding has a padding_idx)"
                )
        if replacement is None:
            unk = getattr(vocab, "unk_index", None) if vocab is not None else None
            replacement = (
                unk if unk is not None and unk != pad_index else (1 if pad_index != 1 else 0)
            )
        return int(pad_index), replacement

    # ------------------------------------------------------------ public API
    @log_usage()
    def attribute(
        self,
        inputs: Tensor,
        target: int | Sequence[int] | Tensor | None = None,
        additional_forward_args: Any = None,
        *,
        precision: float = 0.95,
        pad_index: int | None = None,
        replacement: int | Sequence[int] | None = None,
        mask_prob: float = 0.5,
        beam_size: int = 2,
        max_anchor_size: int | None = None,
        batch_size: int = 64,
        max_samples: int = 10000,
        delta: float = 0.1,
        epsilon: float = 0.1,
        epsilon_stop: float = 0.05,
        seed: int = 0,
        exclude: Sequence[int] = (),
        perturbation: str | None = None,
        train_data: Tensor | None = None,
        min_samples: int = 0,
    ) -> Tensor:
        """Mark the tokens of each input's anchor.

        Args:
            inputs: token ids ``(batch, time)``; ``pad_index`` marks padding.
            target: the class each rule must keep; default: the model's prediction.
            additional_forward_args: passed to ``forward_func`` after the ids; tensors
                whose first dimension is the batch are indexed per input.
            precision: the precision target of the anchor.
            pad_index: the padding id (never perturbed, never in a rule).
            replacement: the id that replaces a perturbed token, or ids drawn uniformly.
            mask_prob: probability that a token outside the anchor is replaced.
            beam_size: anchors kept per round of the beam search.
            max_anchor_size: most tokens in an anchor (default: all).
            batch_size: perturbations per sampling step.
            max_samples: most perturbations per input.
            delta: confidence parameter of the bounds.
            epsilon: KL-LUCB's tolerance between the best and the rest.
            epsilon_stop: an anchor passes when its lower confidence bound reaches
                ``precision``; one whose estimate is below it stops being sampled once
                its upper bound is below ``precision + epsilon_stop``.
            seed: seeds the perturbations of every input alike.
            exclude: token ids that are perturbed like the others but never enter a rule
                (the unknown token, say: a rule "contains <unk>" tells a reader nothing).
            perturbation: what replaces a perturbed token: ``"replace"`` (the
                ``replacement`` ids), ``"unigram"`` (a token drawn from ``train_data``)
                or ``"position"`` (a token found at the same position in
                ``train_data``); default ``"unigram"`` when ``train_data`` is given,
                else ``"replace"``.
            train_data: token ids ``(n, time)`` of training sequences, for
                ``perturbation="unigram"`` / ``"position"``.
            min_samples: fewest perturbations an anchor must be tested on before it
                passes (on top of the confidence bound).

        Returns:
            A float tensor shaped like ``inputs``: 1 on anchor tokens, 0 elsewhere.
        """
        options = {name: value for name, value in locals().items() if name in _SEARCH_OPTIONS}
        anchors = self._search_all(inputs, target, additional_forward_args, **options)
        mask = torch.zeros(inputs.shape, dtype=torch.float32, device=inputs.device)
        for i, found in enumerate(anchors):
            if found["positions"]:
                mask[i, list(found["positions"])] = 1.0
        return mask

    def explain(
        self,
        inputs: Tensor,
        target: int | Sequence[int] | Tensor | None = None,
        additional_forward_args: Any = None,
        *,
        vocab: Any = None,
        class_names: Sequence[str] | None = None,
        coverage_data: Tensor | None = None,
        held_out_samples: int = 500,
        **kwargs: Any,
    ) -> list[Anchor]:
        """Find each input's anchor and return it as a rule object.

        Args:
            inputs, target, additional_forward_args: as for :meth:`attribute`.
            vocab: a :class:`~captum_rnn.data.Vocabulary` (or list of tokens) for
                readable rules.
            class_names: display names of the classes.
            coverage_data: token ids ``(n, time)`` of a corpus; the coverage of a rule
                is the fraction of its sequences that contain every anchor token.
                Default: ``train_data`` when given; without either, coverage is the
                probability that a perturbation keeps the anchor,
                ``(1 - mask_prob) ** len(anchor)``.
            held_out_samples: fresh perturbations (another seed than the search) on
                which each anchor's ``held_out_precision`` is measured; 0 skips it.
            **kwargs: search options of :meth:`attribute`.

        Returns:
            One :class:`Anchor` per input.

        Example:
            >>> rules = RuleExtraction(model)  # doctest: +SKIP
            >>> print(rules.explain(ids, vocab=vocab, class_names=["neg", "pos"])[0])  # doctest: +SKIP
            contains "not" and "bad" -> neg (precision 0.97, coverage 0.03)
        """
        pad_index, replacement = self._specials(
            kwargs.get("pad_index"), kwargs.get("replacement"), vocab
        )
        kwargs["pad_index"], kwargs["replacement"] = pad_index, replacement
        mask_prob = _SearchOptions(**kwargs).mask_prob  # unknown options fail here
        held_out_samples = check_int("held_out_samples", held_out_samples, 0)
        if coverage_data is None:
            coverage_data = kwargs.get("train_data")
        if coverage_data is not None:
            coverage_data = _check_inputs(coverage_data)
        name_of = _token_names(vocab)
        found = self._search_all(inputs, target, additional_forward_args, **kwargs)
        held: list[float | None] = [None] * len(found)
        if held_out_samples:
            mask = torch.zeros(inputs.shape, dtype=torch.float32, device=inputs.device)
            for i, item in enumerate(found):
                mask[i, list(item["positions"])] = 1.0
            options = {
                k: kwargs[k]
                for k in ("pad_index", "replacement", "mask_prob", "perturbation", "train_data")
                if k in kwargs
            }
            held = self.evaluate(
                inputs,
                mask,
                [item["label"] for item in found],
                additional_forward_args,
                n_samples=held_out_samples,
                seed=_SearchOptions(**kwargs).seed + 1_000_003,
                **options,
            ).tolist()
        out = []
        for item, held_out in zip(found, held, strict=True):
            ids = tuple(item["token_ids"])
            if coverage_data is None:
                coverage = (1 - mask_prob) ** len(ids)
            else:
                present = torch.ones(coverage_data.shape[0], dtype=torch.bool)
                for tok in set(ids):
                    present &= (
                        ((coverage_data == tok) & (coverage_data != pad_index)).any(dim=1).cpu()
                    )
                coverage = float(present.float().mean())
            label = item["label"]
            if class_names is not None and 0 <= label < len(class_names):
                label_name = str(class_names[label])
            else:
                label_name = f"class {label}"
            out.append(
                Anchor(
                    tokens=tuple(name_of(i) for i in ids),
                    positions=tuple(item["positions"]),
                    token_ids=ids,
                    label=label,
                    label_name=label_name,
                    precision=item["precision"],
                    precision_lower=item["precision_lower"],
                    coverage=float(coverage),
                    num_samples=item["num_samples"],
                    reached=item["reached"],
                    held_out_precision=held_out,
                )
            )
        return out

    def evaluate(
        self,
        inputs: Tensor,
        mask: Tensor,
        target: int | Sequence[int] | Tensor | None = None,
        additional_forward_args: Any = None,
        *,
        n_samples: int = 1000,
        pad_index: int | None = None,
        replacement: int | Sequence[int] | None = None,
        mask_prob: float = 0.5,
        seed: int = 1,
        perturbation: str | None = None,
        train_data: Tensor | None = None,
    ) -> Tensor:
        """Precision of rules on fresh perturbations (held-out from the search).

        Args:
            inputs: token ids ``(batch, time)``.
            mask: the rules as a 0/1 mask shaped like ``inputs`` (from :meth:`attribute`).
            target: the class to keep; default: the model's prediction.
            additional_forward_args: as for :meth:`attribute`.
            n_samples: perturbations per input.
            pad_index, replacement, mask_prob, perturbation, train_data: the
                perturbation (as in the search).
            seed: use another seed than the search for held-out perturbations.

        Returns:
            ``(batch,)`` fraction of perturbations that keep the target class.
        """
        inputs = _check_inputs(inputs)
        pad_index, replacement = self._specials(pad_index, replacement)
        if not isinstance(mask, Tensor) or mask.shape != inputs.shape:
            raise ValueError(f"mask must be a tensor of shape {tuple(inputs.shape)}")
        targets = _check_target(target, inputs.shape[0])
        fill = _Fill(
            perturbation,
            [replacement] if isinstance(replacement, int) else replacement,
            train_data,
            pad_index,
        )
        out = torch.zeros(inputs.shape[0])
        with torch.no_grad():
            for i in range(inputs.shape[0]):
                ctx = self._context(
                    inputs, i, additional_forward_args, pad_index, fill, mask_prob, seed
                )
                label = ctx["label"](targets[i])
                kept = mask[i, ctx["features"]].cpu().bool()
                anchor = tuple(int(j) for j in torch.nonzero(kept).flatten().tolist())
                ok = ctx["sample"]([anchor], n_samples, label)[0][0]
                out[i] = float(ok.mean())
        return out

    # ------------------------------------------------------------ internals
    def _context(
        self,
        inputs: Tensor,
        i: int,
        additional_forward_args: Any,
        pad_index: int,
        fill: _Fill,
        mask_prob: float,
        seed: int,
    ) -> dict[str, Any]:
        """Everything needed to perturb and score input ``i``."""
        row = inputs[i]
        real = torch.nonzero(row != pad_index).flatten()
        if real.numel() == 0:
            raise ValueError(f"inputs[{i}] holds only padding: there is nothing to explain")
        width = int(real[-1]) + 1
        x = row[:width]
        features = real.tolist()
        batch, time = inputs.shape
        args = additional_forward_args
        if args is not None and not isinstance(args, tuple):
            args = (args,)

        def args_for(n: int) -> tuple[Any, ...]:
            if args is None:
                return ()
            out = []
            for a in args:
                if isinstance(a, Tensor) and a.dim() >= 1 and a.shape[0] == batch:
                    a = a[i : i + 1]
                    if a.dim() >= 2 and a.shape[1] == time:
                        a = a[:, :width]
                    a = a.expand(n, *a.shape[1:])
                out.append(a)
            return tuple(out)

        def predict(z: Tensor) -> np.ndarray:
            scores = self.forward_func(z, *args_for(z.shape[0]))
            if not isinstance(scores, Tensor) or scores.dim() != 2 or scores.shape[1] < 2:
                shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores)
                raise ValueError(
                    "forward_func must return class scores of shape (batch, num_classes), "
                    f"got {shape}"
                )
            if not bool(torch.isfinite(scores).all()):
                raise ValueError(
                    "forward_func returned NaN or infinite scores: a rule read from them "
                    "would be silently wrong"
                )
            classes[0] = scores.shape[1]
            return scores.argmax(dim=1).cpu().numpy()

        classes = [0]

        g = torch.Generator().manual_seed(seed)
        feats = torch.as_tensor(features, dtype=torch.long)

        def sample(
            anchors: list[tuple[int, ...]], n: int, label: int
        ) -> list[tuple[np.ndarray, np.ndarray]]:
            """For each anchor, ``n`` perturbations keeping it: whether the model still
            predicts ``label`` ``(n,)`` and which features were kept ``(n, features)``."""
            total = n * len(anchors)
            drop = torch.rand(total, len(features), generator=g) < mask_prob
            for j, anchor in enumerate(anchors):
                if anchor:
                    drop[j * n : (j + 1) * n, list(anchor)] = False
            tokens = fill.draw(features, total, g)
            z = x.detach().cpu().repeat(total, 1)
            cols = z[:, feats]
            z[:, feats] = torch.where(drop, tokens, cols)
            predicted = predict(z.to(inputs.device))
            ok = predicted == label
            kept = (~drop).numpy()
            return [
                (ok[j * n : (j + 1) * n], kept[j * n : (j + 1) * n]) for j in range(len(anchors))
            ]

        def label_for(target: int | None) -> int:
            """The class to keep: ``target`` checked against the model's classes, or
            the model's prediction."""
            predicted = int(predict(x[None])[0])
            if target is None:
                return predicted
            if not 0 <= target < classes[0]:
                raise ValueError(
                    f"target {target} is outside the model's classes [0, {classes[0]})"
                )
            return target

        return {
            "x": x,
            "features": features,
            "predict": predict,
            "sample": sample,
            "label": label_for,
        }

    def _search_all(
        self, inputs: Tensor, target: Any, additional_forward_args: Any, **options: Any
    ) -> list[dict[str, Any]]:
        inputs = _check_inputs(inputs)
        o = _SearchOptions(**options)
        pad_index, replacement = self._specials(o.pad_index, o.replacement)
        precision, mask_prob, beam_size = o.precision, o.mask_prob, o.beam_size
        batch_size, min_samples, max_anchor_size = o.batch_size, o.min_samples, o.max_anchor_size
        excluded = {int(t) for t in o.exclude}
        targets = _check_target(target, inputs.shape[0])
        if not 0.0 < precision <= 1.0:
            raise ValueError(f"precision must be in (0, 1], got {precision!r}")
        if not 0.0 < mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob!r}")
        ids = [replacement] if isinstance(replacement, int) else list(replacement)
        if not ids or any(isinstance(r, bool) or not isinstance(r, int) for r in ids):
            raise TypeError("replacement must be a token id or a non-empty list of token ids")
        if pad_index in ids:
            raise ValueError(f"replacement must not be the padding id {pad_index}")
        fill = _Fill(o.perturbation, ids, o.train_data, pad_index)
        beam_size = check_int("beam_size", beam_size, 1)
        batch_size = check_int("batch_size", batch_size, 1)
        min_samples = check_int("min_samples", min_samples, 0)
        out = []
        with torch.no_grad():
            for i in range(inputs.shape[0]):
                ctx = self._context(
                    inputs, i, additional_forward_args, pad_index, fill, mask_prob, o.seed
                )
                label = ctx["label"](targets[i])
                n_features = len(ctx["features"])
                sample = ctx["sample"]
                arms = _Arms(
                    lambda anchors, n, label=label, sample=sample: sample(anchors, n, label)
                )
                allowed = [
                    f for f, p in enumerate(ctx["features"]) if int(ctx["x"][p]) not in excluded
                ]
                size = (
                    len(allowed) if max_anchor_size is None else min(max_anchor_size, len(allowed))
                )
                anchor, reached, lower = _anchor_search(
                    arms,
                    n_features,
                    precision,
                    beam_size,
                    size,
                    o.delta,
                    o.epsilon,
                    o.epsilon_stop,
                    batch_size,
                    o.max_samples,
                    allowed,
                    min_samples,
                )
                positions = tuple(ctx["features"][f] for f in anchor)
                out.append(
                    {
                        "positions": positions,
                        "token_ids": tuple(int(inputs[i, p]) for p in positions),
                        "label": label,
                        "precision": arms.mean(anchor),
                        "precision_lower": lower,
                        "num_samples": arms.n[anchor],
                        "reached": reached,
                    }
                )
        return out
