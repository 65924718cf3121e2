"""A small Transformer encoder classifier whose per-head attention can be explained.

``nn.TransformerEncoderLayer`` asks its attention for no weights and, in eval mode,
may skip the attention module altogether (its fused fast path), so nothing can be
read or differentiated there. This model writes its own pre-norm encoder layer:

* every layer's attention probabilities ``(batch, heads, T, T)`` pass through an
  :class:`AttentionTap` (an ``nn.Identity``), so a forward hook sees them per head and
  gradients with respect to them exist (what ``GradientAttentionRollout`` needs, and a
  tensor-returning layer for Captum's layer methods);
* after every forward ``attention_maps`` holds them detached, input-side layer first;
* padding is a key padding mask: padded keys get exactly zero attention, rows of
  padded queries are zero, pooling reads only real positions, so a sequence gives the
  same output whatever it is padded to.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_rnn._utils.options import store_arguments
from captum_rnn.models.recurrent import RecurrentModel

__all__ = ["AttentionTap", "SelfAttention", "TransformerClassifier", "TransformerEncoderBlock"]

_POOLINGS = ("mean", "first")


class AttentionTap(nn.Identity):
    """Identity applied to attention probabilities ``(batch, heads, query, key)``.

    captum-rnn's attention attributions find these modules and hook them; users can
    hook them too (or pass them to Captum's layer methods).
    """


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with per-head weights.

    Args:
        embed_dim: model width; divisible by ``num_heads``.
        num_heads: number of heads.
        dropout: dropout on the attention probabilities (training only).

    Example:
        >>> att = SelfAttention(8, 2)
        >>> out, probs = att(torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool))
        >>> out.shape, probs.shape
        (torch.Size([3, 5, 8]), torch.Size([3, 2, 5, 5]))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim must be divisible by num_heads >= 1, got {embed_dim} and {num_heads}"
            )
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.out = nn.Linear(embed_dim, embed_dim)
        self.attention_probs = AttentionTap()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Return the attended values ``(batch, T, embed_dim)`` and the probabilities.

        ``mask`` is ``(batch, T)`` boolean, True at real positions; every row needs one.
        """
        batch, time, width = x.shape
        q, k, v = (
            self.qkv(x).view(batch, time, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        probs = torch.softmax(scores, dim=-1) * mask[:, None, :, None].to(scores.dtype)
        probs = self.attention_probs(probs)
        attended = self.dropout(probs) @ v
        attended = attended.transpose(1, 2).reshape(batch, time, width)
        return self.out(attended), probs


class TransformerEncoderBlock(nn.Module):
    """Pre-norm encoder layer: ``x + attn(norm(x))`` then ``x + ff(norm(x))``.

    Args:
        embed_dim: model width.
        num_heads: attention heads.
        feedforward_dim: hidden size of the feed-forward block.
        dropout: dropout on attention probabilities and sub-layer outputs.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, feedforward_dim: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attention = SelfAttention(embed_dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.feedforward = nn.Sequential(
            nn.Linear(embed_dim, feedforward_dim),
            nn.GELU(),
            nn.Linear(feedforward_dim, embed_dim),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        attended, probs = self.attention(self.norm1(x), mask)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.feedforward(self.norm2(x)))
        return x, probs


def _sinusoids(time: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    position = torch.arange(time, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / width)
    )
    table = torch.zeros(time, width, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: width // 2])
    return table.to(dtype)


class TransformerClassifier(pl.LightningModule):
    """Transformer encoder classifier over token ids whose attention is recorded per head.

    Args:
        num_classes: number of classes (>= 2); ``forward`` returns logits.
        vocab_size: size of the token vocabulary.
        num_layers: stacked self-attention layers.
        num_heads: heads per layer; ``embedding_dim`` must be divisible by it.
        embedding_dim: model width (token embedding size).
        feedforward_dim: hidden size of each feed-forward block (default ``2 * embedding_dim``).
        dropout: dropout on embeddings, attention probabilities and sub-layer outputs.
        pooling: ``"mean"`` (average of the real positions) or ``"first"`` (position 0,
            for inputs that start with a classification token).
        padding_idx: token id that marks padding.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.

    Inputs are token ids ``(batch, time)`` (lengths inferred from ``padding_idx`` like
    :class:`RNNClassifier`) or embedded tokens ``(batch, time, embedding_dim)`` with
    optional ``lengths`` (what Captum's ``IntegratedGradients`` interpolates); sinusoidal
    positions are added after the embedding. Layers to reach: ``embedding`` (for
    ``LayerIntegratedGradients``), ``layers[i].attention.attention_probs`` (the
    :class:`AttentionTap` of layer ``i``), ``representation`` (pooled vector), ``head``.

    Example:
        >>> model = TransformerClassifier(2, vocab_size=50, num_layers=2, num_heads=2)
        >>> model(torch.tensor([[5, 8, 13, 0, 0]])).shape
        torch.Size([1, 2])
        >>> [a.shape for a in model.attention_maps]
        [torch.Size([1, 2, 5, 5]), torch.Size([1, 2, 5, 5])]
    """

    # Input checking and Lightning steps are the recurrent models'; they only read
    # ``embedding``, ``vocab_size``, ``padding_idx``, ``input_dim`` and the loss hooks.
    lengths_of = RecurrentModel.lengths_of
    _check_lengths = RecurrentModel._check_lengths
    embed = RecurrentModel.embed
    unpack_batch = staticmethod(RecurrentModel.unpack_batch)
    _shared_step = RecurrentModel._shared_step
    training_step = RecurrentModel.training_step
    validation_step = RecurrentModel.validation_step
    test_step = RecurrentModel.test_step
    configure_optimizers = RecurrentModel.configure_optimizers
    is_token_model = RecurrentModel.is_token_model  # always True: it has an embedding
    input_dim = RecurrentModel.input_dim

    def __init__(
        self,
        num_classes: int,
        vocab_size: int,
        num_layers: int = 2,
        num_heads: int = 2,
        embedding_dim: int = 32,
        feedforward_dim: int | None = None,
        dropout: float = 0.0,
        pooling: str = "mean",
        padding_idx: int = 0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if vocab_size is None or vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        for name, value in (("num_layers", num_layers), ("num_heads", num_heads)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if embedding_dim % num_heads != 0 or embedding_dim % 2 != 0:
            raise ValueError(
                f"embedding_dim must be even and divisible by num_heads={num_heads}, "
                f"got {embedding_dim}"
            )
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0 <= padding_idx < vocab_size:
            raise ValueError(f"padding_idx must be in [0, {vocab_size}), got {padding_idx}")
        self.save_hyperparameters()
        store_arguments(self, locals(), skip=("num_heads",))  # a property (read off the layers)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderBlock(
                embedding_dim, num_heads, feedforward_dim or 2 * embedding_dim, dropout
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(embedding_dim)
        self.representation = nn.Identity()
        self.head = nn.Linear(embedding_dim, num_classes)
        self.attention_maps: list[Tensor] = []

    def sequence_model_hints(self) -> dict[str, Any]:
        """What the model contract (``captum_rnn.adapt``) cannot read off the layers."""
        return {"batch_first": True, "lengths_arg": "lengths", "output": "logits"}

    @property
    def num_heads(self) -> int:
        """Heads per attention layer."""
        return self.layers[0].attention.num_heads

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Encode a batch into per-position states, a mask and the pooled representation.

        Args:
            x: token ids ``(batch, time)`` or embedded tokens ``(batch, time, embedding_dim)``.
            lengths: optional LongTensor ``(batch,)`` of true lengths.

        Returns:
            ``(states, mask, pooled)``: ``(batch, time, embedding_dim)`` (zero at padding),
            a boolean ``(batch, time)`` mask of real positions, and ``(batch, embedding_dim)``.
        """
        emb, lengths = self.embed(x, lengths)
        time = emb.shape[1]
        mask = torch.arange(time, device=emb.device)[None, :] < lengths[:, None]
        h = emb + _sinusoids(time, emb.shape[2], emb.device, emb.dtype)
        h = self.input_dropout(h)
        maps = []
        for layer in self.layers:
            h, probs = layer(h, mask)
            maps.append(probs.detach())
        self.attention_maps = maps
        states = self.norm(h) * mask[..., None].to(h.dtype)
        if self.pooling == "mean":
            pooled = states.sum(dim=1) / lengths[:, None].to(states.dtype)
        else:
            pooled = states[:, 0]
        return states, mask, self.representation(pooled)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Return logits ``(batch, num_classes)`` (see :meth:`encode`)."""
        return self.head(self.encode(x, lengths)[2])

    def compute_loss(self, output: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(output, targets.long().view(-1))

    def compute_metrics(self, output: Tensor, targets: Tensor) -> dict[str, Tensor]:
        return {"acc": (output.argmax(dim=-1) == targets.long().view(-1)).float().mean()}

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Return class probabilities ``(batch, num_classes)``."""
        x, lengths, _ = self.unpack_batch(batch)
        return torch.softmax(self(x, lengths), dim=-1)
