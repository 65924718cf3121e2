"""Token counterfactuals: exact breadth-first search over 1, 2, ... substitutions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from captum_rnn.models.protocol import adapt

__all__ = ["Counterfactual", "token_counterfactual"]


@dataclass
class Counterfactual:
    """One counterfactual: the edited ids, the edits and whether the model's class flipped."""

    original: Tensor
    counterfactual: Tensor
    edits: list[tuple[int, int, int]] = field(default_factory=list)
    flipped: bool = False
    prediction: int = -1
    minimal: bool | None = None


@torch.no_grad()
def token_counterfactual(
    model: nn.Module, ids: Tensor, *, vocab: list[int] | None = None, max_edits: int = 2
) -> Counterfactual:
    """Fewest substitutions of ``ids`` (1-D, unpadded) that change the predicted class.

    Args:
        model: a token classifier (seen through the model contract).
        ids: token ids ``(T,)``.
        vocab: candidate replacement ids; default all ids but the pad id.
        max_edits: largest edit count searched (exhaustive, so minimal when found).

    Returns:
        Counterfactual, ``flipped`` verified by running the model.

    Example:
        >>> cf = token_counterfactual(model, torch.tensor([1, 2, 1]))  # doctest: +SKIP
    """
    wrapper = adapt(model)
    if vocab is None:
        vocab = [i for i in range(wrapper.vocab_size) if i != wrapper.pad_id]
    base = int(wrapper(ids[None]).argmax(-1))
    T = len(ids)
    for k in range(1, max_edits + 1):
        for pos in itertools.combinations(range(T), k):
            choices = [[v for v in vocab if v != int(ids[p])] for p in pos]
            combos = list(itertools.product(*choices))
            if not combos:
                continue
            batch = ids.repeat(len(combos), 1)
            batch[:, list(pos)] = torch.tensor(combos, dtype=ids.dtype)
            pred = wrapper(batch).argmax(-1)
            hit = (pred != base).nonzero()
            if len(hit):
                j = int(hit[0])
                edits = [(p, int(ids[p]), int(batch[j, p])) for p in pos]
                return Counterfactual(ids, batch[j], edits, True, int(pred[j]), True)
    return Counterfactual(ids, ids.clone(), [], False, base, None)
