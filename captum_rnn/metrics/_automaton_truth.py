"""Automata as ground truth for attribution.

When a network's decision is exactly a deterministic finite automaton (a network
trained to 100% on a regular language whose extracted automaton is exact), the
tokens that matter for a word are known exactly:

- **flips**: the positions where substituting one symbol changes the automaton's
  decision (a contrastive explanation of size one);
- **minimal sufficient subsets**: the subset-minimal sets of positions that, kept as
  they are while every other position takes any symbol (length kept), fix the
  decision (abductive explanations, "prime implicants" of the word);
- **relevant**: the positions that belong to some minimal sufficient subset. Every
  flip position is relevant (it is in every sufficient subset), so this is the wider
  ground truth and the default rationale.

:func:`automaton_truth` computes them for one word, :func:`automaton_truth_set` for
many words as data that :func:`~captum_rnn.metrics.benchmark` reads like planted cues
(its ``masks`` become the rationale of the registered ``auprc``, ``token_f1`` and
``token_iou`` metrics), and :func:`automaton_auprc` scores attribution methods
(through :func:`captum_rnn.explain`) against it with the registry's ``auprc``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from captum_rnn.metrics._base import _nanmean
from captum_rnn.metrics._plausibility import auprc
from captum_rnn.rules._dfa import DFA

__all__ = [
    "AutomatonTruth",
    "AutomatonTruthSet",
    "automaton_auprc",
    "automaton_truth",
    "automaton_truth_set",
]

_KINDS = ("relevant", "flips")


@dataclass(frozen=True)
class AutomatonTruth:
    """The exact important positions of one word under an automaton.

    Attributes:
        word: the word, as the automaton's symbols.
        accepted: the automaton's decision on the word.
        flips: per position, True when some substitution there changes the decision.
        flip_share: per position, the share of the other symbols whose substitution
            changes the decision (0 when the alphabet has one symbol).
        minimal_subsets: the subset-minimal sufficient sets of positions, each a sorted
            tuple, smallest first (``((),)`` when every word of this length gets the
            same decision).
        relevant: per position, True when it belongs to some minimal sufficient subset.
    """

    word: tuple[Any, ...]
    accepted: bool
    flips: tuple[bool, ...]
    flip_share: tuple[float, ...]
    minimal_subsets: tuple[tuple[int, ...], ...]
    relevant: tuple[bool, ...]

    def mask(self, kind: str = "relevant") -> Tensor:
        """The ground truth as a bool tensor ``(len(word),)``: ``"relevant"`` or ``"flips"``."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        return torch.tensor(getattr(self, kind), dtype=torch.bool)


def _bits(states: Iterable[int]) -> int:
    out = 0
    for q in states:
        out |= 1 << q
    return out


def automaton_truth(dfa: DFA, word: Iterable[Any], *, max_subsets: int = 100_000) -> AutomatonTruth:
    """The positions of ``word`` that decide ``dfa``'s answer, computed exactly.

    Substitutions keep the length. Sufficiency of a set of positions is decided on the
    automaton's state sets (the other positions range over the whole alphabet), and the
    minimal sufficient subsets come from a dynamic programme over (position, reachable
    states), so no subset is enumerated blindly.

    Args:
        dfa: a :class:`~captum_rnn.rules.DFA` (for example one extracted from the network).
        word: the symbols, each in ``dfa.alphabet``.
        max_subsets: refuse words with more minimal sufficient subsets than this.

    Returns:
        An :class:`AutomatonTruth`.

    Raises:
        ValueError: a symbol outside the alphabet, or more than ``max_subsets`` subsets.

    Example:
        >>> from captum_rnn.rules import DFA
        >>> no_zero = DFA("01", [[1, 0], [1, 1]], accepting={0})  # Tomita 1: 1*
        >>> truth = automaton_truth(no_zero, "1010")
        >>> truth.accepted, truth.flips, truth.minimal_subsets
        (False, (False, False, False, False), ((1,), (3,)))
    """
    symbols = tuple(word)
    a = dfa.encode(symbols, "word")
    n, k, rows = len(a), len(dfa.alphabet), dfa.transitions
    accepted = dfa.accepts(symbols)
    good = _bits(q for q in dfa.states if (q in dfa.accepting) == accepted)

    # Prefix states and, per position, which states accept the rest of the word.
    prefix = [dfa.start]
    for s in a:
        prefix.append(rows[prefix[-1]][s])
    accepts_rest = [set(dfa.accepting)]
    for i in range(n - 1, -1, -1):
        after = accepts_rest[0]
        accepts_rest.insert(0, {q for q in dfa.states if rows[q][a[i]] in after})
    flips, shares = [], []
    for i in range(n):
        changed = sum(
            (rows[prefix[i]][b] in accepts_rest[i + 1]) != accepted for b in range(k) if b != a[i]
        )
        flips.append(changed > 0)
        shares.append(changed / (k - 1) if k > 1 else 0.0)

    image: dict[tuple[int, int], int] = {}

    def step(states: int, symbol: int | None) -> int:
        key = (states, -1 if symbol is None else symbol)
        if key not in image:
            out, q, rest = 0, 0, states
            while rest:
                if rest & 1:
                    out |= _bits(rows[q]) if symbol is None else 1 << rows[q][symbol]
                rest >>= 1
                q += 1
            image[key] = out
        return image[key]

    memo: dict[tuple[int, int], list[int]] = {}

    def minimal(i: int, states: int) -> list[int]:
        """Minimal sufficient subsets (bitmasks) of positions ``i..n-1`` from ``states``."""
        if (i, states) in memo:
            return memo[i, states]
        if i == n:
            result = [0] if states & ~good == 0 else []
        else:
            free = minimal(i + 1, step(states, None))
            fixed = minimal(i + 1, step(states, a[i]))
            result = list(free)
            result += [t | (1 << i) for t in fixed if not any(f & t == f for f in free)]
            if len(result) > max_subsets:
                raise ValueError(
                    f"word has more than max_subsets={max_subsets} minimal sufficient subsets; "
                    "pass a larger max_subsets"
                )
        memo[i, states] = result
        return result

    masks = minimal(0, 1 << dfa.start)
    subsets = sorted(
        (tuple(i for i in range(n) if m >> i & 1) for m in masks), key=lambda t: (len(t), t)
    )
    union = 0
    for m in masks:
        union |= m
    return AutomatonTruth(
        word=symbols,
        accepted=accepted,
        flips=tuple(flips),
        flip_share=tuple(shares),
        minimal_subsets=tuple(subsets),
        relevant=tuple(bool(union >> i & 1) for i in range(n)),
    )


@dataclass
class AutomatonTruthSet:
    """Words with their automaton ground truth, shaped like planted-cue data.

    :func:`~captum_rnn.metrics.benchmark` reads it as it reads ``PlantedCues``:
    ``masks`` become the rationale of the plausibility metrics (``auprc``,
    ``token_f1``, ``token_iou``).

    Attributes:
        sequences: token ids, one LongTensor ``(length,)`` per word.
        labels: the automaton's decision per word (1 = accepted).
        masks: per word, the ground truth chosen by ``kind``.
        vocab: the vocabulary the ids come from (or ``None``).
        truths: the full :class:`AutomatonTruth` of each word.
        kind: ``"relevant"`` or ``"flips"``.
    """

    sequences: list[Tensor]
    labels: list[int]
    masks: list[Tensor]
    vocab: Any
    truths: list[AutomatonTruth] = field(default_factory=list)
    kind: str = "relevant"

    def __len__(self) -> int:
        return len(self.sequences)


def automaton_truth_set(
    dfa: DFA,
    words: Iterable[Iterable[Any]],
    vocab: Any = None,
    *,
    kind: str = "relevant",
    max_subsets: int = 100_000,
) -> AutomatonTruthSet:
    """The ground truth of many words, with their token ids, ready for scoring.

    Args:
        dfa: the automaton that decides like the network.
        words: words over ``dfa.alphabet``.
        vocab: turns symbols into token ids (``vocab.encode(list_of_symbols)``); without
            it the symbols must be the token ids themselves (ints).
        kind: which ground truth goes in ``masks``: ``"relevant"`` (in some minimal
            sufficient subset) or ``"flips"`` (a substitution changes the decision).
        max_subsets: as :func:`automaton_truth`.

    Returns:
        An :class:`AutomatonTruthSet`.

    Example:
        >>> from captum_rnn.rules import tomita_dfa
        >>> from captum_rnn.data import tomita_vocabulary
        >>> data = automaton_truth_set(tomita_dfa(1), ["110", "111"], tomita_vocabulary())
        >>> [m.tolist() for m in data.masks]
        [[False, False, True], [True, True, True]]
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    truths = [automaton_truth(dfa, w, max_subsets=max_subsets) for w in words]
    sequences = []
    for i, truth in enumerate(truths):
        if vocab is not None:
            ids = vocab.encode(list(truth.word))
        elif all(isinstance(s, int) and not isinstance(s, bool) for s in truth.word):
            ids = list(truth.word)
        else:
            raise ValueError(
                f"words[{i}] holds symbols that are not token ids: pass vocab= to encode them"
            )
        sequences.append(torch.tensor(ids, dtype=torch.long))
    return AutomatonTruthSet(
        sequences=sequences,
        labels=[int(t.accepted) for t in truths],
        masks=[t.mask(kind) for t in truths],
        vocab=vocab,
        truths=truths,
        kind=kind,
    )


def automaton_auprc(
    model: nn.Module,
    data: AutomatonTruthSet,
    methods: Sequence[str] | None = None,
    *,
    absolute: bool = False,
    method_kwargs: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    on_error: Callable[[str, Exception], None] | None = None,
    **hints: Any,
) -> dict[str, float]:
    """Mean AUPRC of each attribution method against the automaton ground truth.

    Each method explains the predicted class of every word through
    :func:`captum_rnn.explain`; its scores are ranked against ``data.masks`` with the
    registry's :func:`~captum_rnn.metrics.auprc`, and the mean is taken over words
    with at least one true position. A random ranking (seeded) is scored as
    ``"random"``, the chance reference.

    Args:
        model: the user's model (any ``nn.Module``; it goes through
            :func:`captum_rnn.adapt`, whose hints it accepts as keywords).
        data: from :func:`automaton_truth_set`.
        methods: names from ``captum_rnn.attr.available_methods()``; ``None`` takes every
            method that applies to the model (as :func:`~captum_rnn.metrics.benchmark`).
        absolute: rank by ``|attribution|`` instead of the signed score.
        method_kwargs: per-method options for ``explain``.
        seed: seeds sampling methods and the random reference.
        on_error: called with (method, error) for a method that fails; it is then left
            out. ``None`` raises.
        hints: ``pad_id``, ``batch_first`` ... for :func:`captum_rnn.adapt`.

    Returns:
        ``{method: mean AUPRC}``, ``"random"`` last.

    Example:
        >>> scores = automaton_auprc(model, data, ["saliency"], pad_id=0)  # doctest: +SKIP
        >>> scores["saliency"] > scores["random"]  # doctest: +SKIP
        True
    """
    from captum_rnn._explain import explain
    from captum_rnn._utils.state import seeded
    from captum_rnn.metrics._benchmark import applicable_methods

    if not isinstance(data, AutomatonTruthSet):
        raise TypeError(
            f"data must be an AutomatonTruthSet (from automaton_truth_set), got {type(data).__name__}"
        )
    names = applicable_methods(model) if methods is None else list(methods)
    options = dict(method_kwargs or {})
    result: dict[str, float] = {}
    for name in names:
        try:
            with seeded(seed):
                explanations = explain(
                    model, data.sequences, method=name, **options.get(name, {}), **hints
                )
        except Exception as error:  # noqa: BLE001 - reported through on_error
            if on_error is None:
                raise
            on_error(name, error)
            continue
        scores = [torch.as_tensor(e.scores, dtype=torch.float64) for e in explanations]
        result[name] = _nanmean(auprc(scores, data.masks, absolute=absolute))
    generator = torch.Generator().manual_seed(seed)
    chance = [torch.rand(len(m), generator=generator, dtype=torch.float64) for m in data.masks]
    result["random"] = _nanmean(auprc(chance, data.masks))
    return result
