"""Attention pooling over recurrent states: additive (Bahdanau) and dot-product.

Each layer turns per-step states ``(batch, time, hidden)`` and a validity mask
``(batch, time)`` into one pooled vector ``(batch, hidden)`` plus the attention
weights ``(batch, time)``. Padded steps get a weight of exactly zero: their scores
are set to ``-inf`` before the softmax, so ``exp`` makes them 0 and no gradient
flows to them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["AdditiveAttention", "DotAttention", "masked_softmax", "make_attention"]


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dimension that gives exactly 0 where ``mask`` is False.

    Args:
        scores: ``(batch, time)`` unnormalised scores.
        mask: ``(batch, time)`` boolean, True for real steps. Every row needs one True.

    Returns:
        ``(batch, time)`` weights that sum to 1 over the real steps of each row.

    Example:
        >>> masked_softmax(torch.zeros(1, 3), torch.tensor([[True, True, False]]))
        tensor([[0.5000, 0.5000, 0.0000]])
    """
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


class AdditiveAttention(nn.Module):
    """Bahdanau-style attention with a learned query: ``e_t = v^T tanh(W h_t + b)``.

    Args:
        hidden_size: size of each state ``h_t``.
        attention_size: size of the tanh layer (defaults to ``hidden_size``).

    Example:
        >>> att = AdditiveAttention(8)
        >>> pooled, weights = att(torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool))
        >>> pooled.shape, weights.shape
        (torch.Size([2, 8]), torch.Size([2, 5]))
    """

    def __init__(self, hidden_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = attention_size or hidden_size
        self.project = nn.Linear(hidden_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1), weights


class DotAttention(nn.Module):
    """Scaled dot-product attention with a learned query vector: ``e_t = q . h_t / sqrt(d)``.

    Args:
        hidden_size: size of each state ``h_t`` (and of the query).

    Example:
        >>> att = DotAttention(8)
        >>> pooled, weights = att(torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool))
        >>> weights.sum(-1)
        tensor([1.0000, 1.0000], grad_fn=<SumBackward1>)
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(hidden_size) / math.sqrt(hidden_size))
        self.scale = 1.0 / math.sqrt(hidden_size)

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = (states @ self.query) * self.scale
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1), weights


def make_attention(kind: str, hidden_size: int) -> nn.Module:
    """Build the attention pooling layer named ``kind`` (``"additive"`` or ``"dot"``)."""
    if kind == "additive":
        return AdditiveAttention(hidden_size)
    if kind == "dot":
        return DotAttention(hidden_size)
    raise ValueError(f"attention must be None, 'additive' or 'dot', got {kind!r}")
