"""An attention encoder-decoder (Bahdanau et al., 2015) whose alignments are recorded.

The encoder is a bidirectional GRU or LSTM over source tokens (packed, so padding
never touches it); the decoder is a GRU/LSTM cell that, at every output step, attends
over the encoder states with additive attention conditioned on its previous state.
Training uses teacher forcing; :meth:`Seq2SeqAttention.translate` decodes greedily.
The cross-attention of every output step is recorded in ``attention_maps`` as one
``(batch, 1, target_steps, source_steps)`` tensor (one head), exactly 0 at padding.

Integrated gradients over the source works for any single output step:
:meth:`Seq2SeqAttention.step_function` returns a forward function whose output is that
step's logits, and the target is the token produced there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_rnn.models.recurrent import RecurrentModel, run_packed

__all__ = ["Seq2SeqAttention"]

_CELLS = {"gru": (nn.GRU, nn.GRUCell), "lstm": (nn.LSTM, nn.LSTMCell)}


class Seq2SeqAttention(pl.LightningModule):
    """Encoder-decoder with additive cross-attention, trained with teacher forcing.

    Args:
        source_vocab_size: size of the source vocabulary.
        target_vocab_size: size of the target vocabulary.
        embedding_dim: size of both token embeddings.
        hidden_size: size of the decoder state and of each encoder direction.
        cell: ``"gru"`` or ``"lstm"``.
        attention_size: size of the additive attention's tanh layer (default ``hidden_size``).
        dropout: dropout on embeddings and before the output layer.
        padding_idx: padding id in both vocabularies.
        bos_idx: start token id of the target vocabulary.
        eos_idx: end token id of the target vocabulary.
        max_output_length: default limit of :meth:`translate`.
        lr: Adam learning rate.

    Batches are ``(source ids, source lengths, target ids)`` (what
    ``captum_rnn.data.pad_collate`` gives for a dataset of ``(source, target)`` pairs);
    each target row is ``<s> y_1 ... y_n </s>`` right-padded with ``padding_idx``.

    Example:
        >>> model = Seq2SeqAttention(20, 12, hidden_size=16, bos_idx=2, eos_idx=3)
        >>> logits = model(torch.tensor([[4, 5, 6, 0]]), torch.tensor([[2, 7, 8]]))
        >>> logits.shape, model.attention_maps[0].shape
        (torch.Size([1, 3, 12]), torch.Size([1, 1, 3, 4]))
    """

    lengths_of = RecurrentModel.lengths_of
    _check_lengths = RecurrentModel._check_lengths
    is_token_model = RecurrentModel.is_token_model  # always True: the source is token ids
    input_dim = RecurrentModel.input_dim  # the width of the embedded source
    training_step = RecurrentModel.training_step  # each calls this class's _shared_step
    validation_step = RecurrentModel.validation_step
    test_step = RecurrentModel.test_step

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        embedding_dim: int = 32,
        hidden_size: int = 64,
        cell: str = "gru",
        attention_size: int | None = None,
        dropout: float = 0.0,
        padding_idx: int = 0,
        bos_idx: int = 2,
        eos_idx: int = 3,
        max_output_length: int = 64,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        for name, size in (
            ("source_vocab_size", source_vocab_size),
            ("target_vocab_size", target_vocab_size),
        ):
            if size < 2:
                raise ValueError(f"{name} must be >= 2, got {size}")
        for name, idx in (("padding_idx", padding_idx), ("bos_idx", bos_idx), ("eos_idx", eos_idx)):
            if not 0 <= idx < target_vocab_size:
                raise ValueError(f"{name} must be in [0, {target_vocab_size}), got {idx}")
        if not 0 <= padding_idx < source_vocab_size:
            raise ValueError(f"padding_idx must be in [0, {source_vocab_size}), got {padding_idx}")
        if hidden_size < 1 or embedding_dim < 1:
            raise ValueError("hidden_size and embedding_dim must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.save_hyperparameters()
        self.vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.padding_idx = padding_idx
        self.bos_idx, self.eos_idx = bos_idx, eos_idx
        self.max_output_length = max_output_length
        self.lr = lr
        self.cell = cell
        rnn, rnn_cell = _CELLS[cell]
        attention_size = attention_size or hidden_size
        self.embedding = nn.Embedding(source_vocab_size, embedding_dim, padding_idx=padding_idx)
        self.target_embedding = nn.Embedding(
            target_vocab_size, embedding_dim, padding_idx=padding_idx
        )
        self.dropout = nn.Dropout(dropout)
        self.encoder = rnn(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden_size, hidden_size)
        self.memory_proj = nn.Linear(2 * hidden_size, attention_size, bias=False)
        self.query_proj = nn.Linear(hidden_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)
        self.decoder = rnn_cell(embedding_dim + 2 * hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size + 2 * hidden_size + embedding_dim, target_vocab_size)
        self.attention_maps: list[Tensor] = []

    def sequence_model_hints(self) -> dict[str, Any]:
        """The model contract's hints (see ``captum_rnn.adapt``): the source embedding, the
        source lengths, the teacher-forced target argument and its embedding."""
        return {
            "pad_id": self.padding_idx,
            "batch_first": True,
            "embedding": "embedding",
            "lengths_arg": "src_lengths",
            "target_arg": "tgt_in",
            "target_embedding": "target_embedding",
            "output_offset": 0,
        }

    # ------------------------------------------------------------------ encoder
    def _embed_source(self, src: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        # The recurrent models' checks (ids in the vocabulary, shapes, lengths) apply.
        return RecurrentModel.embed(self, src, lengths)

    def encode(self, src: Tensor, src_lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Any]:
        """Encode the source.

        Args:
            src: source ids ``(batch, source_steps)`` or embedded ``(batch, steps, embedding_dim)``.
            src_lengths: optional true lengths ``(batch,)``.

        Returns:
            ``(memory, mask, state)``: encoder states ``(batch, steps, 2 * hidden_size)``
            (0 at padding), a boolean mask of real steps, and the decoder's first state.
        """
        emb, lengths = self._embed_source(src, src_lengths)
        emb = self.dropout(emb)
        steps = emb.shape[1]
        mask = torch.arange(steps, device=emb.device)[None, :] < lengths[:, None]
        memory, hidden = run_packed(self.encoder, emb, lengths)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden
        first = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1)))
        state = (first, torch.zeros_like(first)) if self.cell == "lstm" else first
        return memory, mask, state

    # ------------------------------------------------------------------ decoder
    def _step(
        self, token: Tensor, state: Any, memory: Tensor, keys: Tensor, mask: Tensor
    ) -> tuple[Tensor, Any, Tensor]:
        """One decoder step: attend with the previous state, update, predict."""
        query = state[0] if isinstance(state, tuple) else state
        scores = self.score(torch.tanh(keys + self.query_proj(query)[:, None, :])).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        context = torch.bmm(weights[:, None, :], memory)[:, 0]
        emb = self.dropout(self.target_embedding(token))
        state = self.decoder(torch.cat([emb, context], dim=-1), state)
        hidden = state[0] if isinstance(state, tuple) else state
        logits = self.output(self.dropout(torch.cat([hidden, context, emb], dim=-1)))
        return logits, state, weights

    def forward(self, src: Tensor, tgt_in: Tensor, src_lengths: Tensor | None = None) -> Tensor:
        """Teacher-forced logits ``(batch, target_steps, target_vocab_size)``.

        Args:
            src: source ids ``(batch, source_steps)`` or embedded source.
            tgt_in: decoder inputs ``(batch, target_steps)``: ``<s> y_1 ... y_{n-1}``.
            src_lengths: optional true source lengths.
        """
        if not isinstance(tgt_in, Tensor) or tgt_in.dim() != 2 or tgt_in.dtype.is_floating_point:
            raise ValueError("tgt_in must be target ids of shape (batch, target_steps)")
        memory, mask, state = self.encode(src, src_lengths)
        if tgt_in.shape[0] != memory.shape[0]:
            raise ValueError(
                f"tgt_in has batch {tgt_in.shape[0]} but src has batch {memory.shape[0]}"
            )
        keys = self.memory_proj(memory)
        logits, maps = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, state, weights = self._step(tgt_in[:, t], state, memory, keys, mask)
            logits.append(step_logits)
            maps.append(weights)
        self.attention_maps = [torch.stack(maps, dim=1).detach()[:, None]]
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def translate(
        self, src: Tensor, src_lengths: Tensor | None = None, max_length: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Greedy decoding.

        Args:
            src: source ids ``(batch, source_steps)``.
            src_lengths: optional true source lengths.
            max_length: most output steps (default ``max_output_length``).

        Returns:
            ``(tokens, attention)``: ids ``(batch, steps)`` without ``<s>`` (after ``</s>``
            the rest is padding) and cross-attention ``(batch, steps, source_steps)``
            (0 after ``</s>``).
        """
        max_length = self.max_output_length if max_length is None else int(max_length)
        memory, mask, state = self.encode(src, src_lengths)
        keys = self.memory_proj(memory)
        batch = memory.shape[0]
        token = torch.full((batch,), self.bos_idx, dtype=torch.long, device=memory.device)
        done = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        tokens, maps = [], []
        for _ in range(max_length):
            logits, state, weights = self._step(token, state, memory, keys, mask)
            token = logits.argmax(dim=-1)
            token = token.masked_fill(done, self.padding_idx)
            tokens.append(token)
            maps.append(weights * (~done)[:, None].to(weights.dtype))
            done = done | (token == self.eos_idx)
            if bool(done.all()):
                break
        attention = torch.stack(maps, dim=1)
        self.attention_maps = [attention[:, None]]
        return torch.stack(tokens, dim=1), attention

    def step_function(self, step: int) -> Callable[..., Tensor]:
        """A forward function that returns the logits of output step ``step``.

        Use it with Captum: ``LayerIntegratedGradients(model.step_function(t),
        model.embedding).attribute(src, additional_forward_args=(tgt_in, src_lengths),
        target=token_at_t)`` attributes the token produced at step ``t`` to the source.

        Args:
            step: the output step (0-based; step 0 predicts the first token after ``<s>``).

        Returns:
            ``f(src, tgt_in, src_lengths=None) -> (batch, target_vocab_size)``.
        """
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")

        def forward_step(src: Tensor, tgt_in: Tensor, src_lengths: Tensor | None = None) -> Tensor:
            if step >= tgt_in.shape[1]:
                raise ValueError(f"step {step} is beyond tgt_in's {tgt_in.shape[1]} steps")
            if tgt_in.shape[0] != src.shape[0]:  # Captum expands the source for IG steps
                repeats = src.shape[0] // tgt_in.shape[0]
                tgt_in = tgt_in.repeat(repeats, 1)
                if src_lengths is not None and src_lengths.shape[0] != src.shape[0]:
                    src_lengths = src_lengths.repeat(repeats)
            return self(src, tgt_in[:, : step + 1], src_lengths)[:, step]

        return forward_step

    # ------------------------------------------------------------------ Lightning
    def _shared_step(self, batch: Any, stage: str) -> Tensor:
        src, lengths, tgt = RecurrentModel.unpack_batch(batch)
        if tgt is None or tgt.dim() != 2:
            raise ValueError(f"{stage} batches need target ids (batch, steps)")
        logits = self(src, tgt[:, :-1], lengths)
        gold = tgt[:, 1:]
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), ignore_index=self.padding_idx
        )
        real = gold != self.padding_idx
        accuracy = ((logits.argmax(-1) == gold) | ~real).all(dim=1).float().mean()
        size = src.shape[0]
        self.log(f"{stage}_loss", loss, prog_bar=stage != "test", batch_size=size)
        self.log(f"{stage}_seq_acc", accuracy, prog_bar=stage == "val", batch_size=size)
        return loss

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Greedy translations ``(batch, steps)``."""
        src, lengths, _ = RecurrentModel.unpack_batch(batch)
        return self.translate(src, lengths)[0]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
