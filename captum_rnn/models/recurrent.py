"""Recurrent sequence models (RNN, LSTM, GRU) as Lightning modules.

One base class does the work for classification and regression:

* token input: a LongTensor ``(batch, time)``; padding is where the id equals
  ``padding_idx`` and the lengths are inferred from it (or passed as ``lengths``);
* embedded token input: a FloatTensor ``(batch, time, embedding_dim)`` that skips the
  embedding layer (what Captum's ``IntegratedGradients`` interpolates);
* continuous input: a FloatTensor ``(batch, time, input_size)`` with optional ``lengths``.

Padded steps never touch the recurrent state, the pooling or the attention: their
gradient is exactly zero and a sequence gives the same output whatever it is padded to.
The recurrent layer runs packed only where that is needed for it: a batch whose lengths
are all equal runs unpacked, and so does a unidirectional layer, whose outputs at the
real steps of a right-padded sequence never see the padding after them (the padded
steps' outputs are set to 0 and the last state is read at each sequence's last real
step). Backward through packed sequences costs many times the unpacked one
(``benchmarks/packing.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from captum_rnn._utils.grad import rnn_backward_mode
from captum_rnn.models.attention import make_attention

__all__ = [
    "RNNClassifier",
    "RNNRegressor",
    "RecurrentModel",
    "last_states",
    "run_packed",
    "run_recurrent",
]

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
_POOLINGS = ("last", "mean", "max", "attention")


def _call(rnn: nn.RNNBase, inputs: Any) -> tuple[Any, Any]:
    """``rnn(inputs)``; with grad enabled on CUDA in eval mode through
    :func:`~captum_rnn._utils.grad.rnn_backward_mode`, since cuDNN refuses the backward there."""
    device_input = inputs.data if isinstance(inputs, nn.utils.rnn.PackedSequence) else inputs
    if torch.is_grad_enabled() and device_input.is_cuda and not rnn.training:
        with rnn_backward_mode(rnn):
            return rnn(inputs)
    return rnn(inputs)


def run_packed(rnn: nn.RNNBase, inputs: Tensor, lengths: Tensor) -> tuple[Tensor, Any]:
    """Run ``rnn`` (batch first) over padded ``inputs`` as a packed sequence would.

    Padded steps never reach the RNN; the outputs come back padded to the input's length
    (0 at padding). The batch is packed only when it needs it: when every length is the
    same, it runs unpacked on the real steps (exactly what packing computes, and its
    backward is many times faster).

    Returns:
        ``(outputs (batch, time, hidden * directions), hidden state)`` as ``rnn`` gives.

    Example:
        >>> gru = nn.GRU(3, 4, batch_first=True)
        >>> out, h = run_packed(gru, torch.randn(2, 5, 3), torch.tensor([5, 2]))
        >>> out.shape, h.shape, bool((out[1, 2:] == 0).all())
        (torch.Size([2, 5, 4]), torch.Size([1, 2, 4]), True)
    """
    time = inputs.shape[1]
    longest = int(lengths.max())
    if bool((lengths == longest).all()):
        states, hidden = _call(rnn, inputs[:, :longest])
        return F.pad(states, (0, 0, 0, time - longest)), hidden
    packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, hidden = _call(rnn, packed)
    states, _ = pad_packed_sequence(out, batch_first=True, total_length=time)
    return states, hidden


def run_recurrent(rnn: nn.RNNBase, inputs: Tensor, lengths: Tensor) -> Tensor:
    """The outputs of ``rnn`` (batch first) over right-padded ``inputs``, equal to a
    packed run's, unpacked wherever that is exact.

    A unidirectional layer's output at a real step depends only on the steps before it,
    so the batch runs unpacked and the outputs at padded steps are set to 0; a
    bidirectional layer runs packed unless every length is the same. Read each
    sequence's final state with :func:`last_states`.

    Returns:
        ``(batch, time, hidden * directions)``, 0 at padding.

    Example:
        >>> lstm = nn.LSTM(3, 4, batch_first=True)
        >>> x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 2])
        >>> torch.allclose(run_recurrent(lstm, x, lengths), run_packed(lstm, x, lengths)[0])
        True
    """
    if rnn.bidirectional:
        return run_packed(rnn, inputs, lengths)[0]
    time, longest = inputs.shape[1], int(lengths.max())
    states = _call(rnn, inputs[:, :longest])[0]
    real = torch.arange(longest, device=states.device)[None, :] < lengths.to(states.device)[:, None]
    return F.pad(states.masked_fill(~real[..., None], 0.0), (0, 0, 0, time - longest))


def last_states(states: Tensor, lengths: Tensor, bidirectional: bool) -> Tensor:
    """The top layer's final state of each sequence ``(batch, hidden * directions)`` read
    from the outputs of :func:`run_recurrent`: the forward direction at the last real
    step, the backward direction at step 0 (what ``h_n[-directions:]`` of a packed run
    holds).

    Example:
        >>> gru = nn.GRU(3, 4, batch_first=True)
        >>> x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 2])
        >>> h_n = run_packed(gru, x, lengths)[1]
        >>> torch.allclose(last_states(run_recurrent(gru, x, lengths), lengths, False), h_n[-1])
        True
    """
    rows = torch.arange(states.shape[0], device=states.device)
    last = states[rows, lengths.to(states.device) - 1]
    if not bidirectional:
        return last
    half = states.shape[-1] // 2
    return torch.cat([last[:, :half], states[:, 0, half:]], dim=-1)


class RecurrentModel(pl.LightningModule):
    """Shared encoder of :class:`RNNClassifier` and :class:`RNNRegressor`.

    Layers a newcomer (or Captum) may want to reach:

    * ``embedding``: the token embedding (``None`` for continuous input); the layer for
      ``LayerIntegratedGradients``.
    * ``rnn``: the ``nn.RNN``/``nn.LSTM``/``nn.GRU``.
    * ``step_states``: an ``nn.Identity`` applied to the per-step states
      ``(batch, time, hidden)``; a tensor-returning tap for layer attribution
      (``nn.LSTM`` itself returns a tuple, which Captum's layer methods cannot use).
    * ``representation``: an ``nn.Identity`` applied to the pooled vector.
    * ``attention``: the attention pooling layer when ``pooling="attention"``.
    * ``head``: the output layer.

    After every forward, ``attention_maps`` holds one detached tensor
    ``(batch, 1, 1, time)`` per attention layer (empty without attention).
    """

    def __init__(
        self,
        output_size: int,
        vocab_size: int | None = None,
        input_size: int | None = None,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        attention: str | None = None,
        pooling: str | None = None,
        dropout: float = 0.0,
        padding_idx: int = 0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError(
                "pass exactly one of vocab_size (token input) or input_size (continuous input)"
            )
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        if pooling is None:
            pooling = "attention" if attention is not None else "last"
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
        if pooling == "attention" and attention is None:
            attention = "additive"
        if attention is not None and pooling != "attention":
            raise ValueError(f"attention={attention!r} needs pooling='attention', got {pooling!r}")
        for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.lr = lr
        self.weight_decay = weight_decay

        self.vocab_size = vocab_size
        self.padding_idx = padding_idx
        self.pooling = pooling
        if vocab_size is not None:
            if not 0 <= padding_idx < vocab_size:
                raise ValueError(f"padding_idx must be in [0, {vocab_size}), got {padding_idx}")
            self.embedding: nn.Embedding | None = nn.Embedding(
                vocab_size, embedding_dim, padding_idx=padding_idx
            )
            rnn_input = embedding_dim
        else:
            self.embedding = None
            rnn_input = int(input_size)  # type: ignore[arg-type]
        self.input_dropout = nn.Dropout(dropout)
        self.rnn = _CELLS[cell](
            rnn_input,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_dim = hidden_size * (2 if bidirectional else 1)
        self.step_states = nn.Identity()
        self.attention = make_attention(attention, self.output_dim) if attention else None
        self.representation = nn.Identity()
        self.output_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.output_dim, output_size)
        self.attention_maps: list[Tensor] = []

    def sequence_model_hints(self) -> dict[str, Any]:
        """What the model contract (``captum_rnn.adapt``) cannot read off the layers."""
        return {"batch_first": True, "lengths_arg": "lengths", "output": self.output_kind}

    #: ``"logits"`` for classifiers, ``"regression"`` for regressors (the model contract).
    output_kind = "logits"

    # ------------------------------------------------------------------ input handling
    @property
    def is_token_model(self) -> bool:
        """True when the model reads token ids through ``embedding``."""
        return self.embedding is not None

    @property
    def input_dim(self) -> int:
        """Feature size of the input the model reads: the embedding's width for token
        models, the continuous features' otherwise."""
        if self.embedding is not None:
            return int(self.embedding.embedding_dim)
        return int(self.rnn.input_size)

    def lengths_of(self, x: Tensor) -> Tensor:
        """Lengths of token sequences ``(batch, time)``: last non-padding position + 1.

        A row made only of padding (as in an all-padding attribution baseline) counts as
        full length, so baselines run the same number of steps as the padded batch.
        For exact baselines pass the input's lengths explicitly instead.

        Args:
            x: token ids ``(batch, time)``.

        Returns:
            LongTensor ``(batch,)`` on ``x``'s device.
        """
        steps = torch.arange(1, x.shape[1] + 1, device=x.device)
        last = ((x != self.padding_idx) * steps).amax(dim=1)
        return torch.where(last == 0, torch.full_like(last, x.shape[1]), last)

    def _check_lengths(self, lengths: Any, batch: int, time: int, device: torch.device) -> Tensor:
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
        if lengths.dim() != 1 or lengths.shape[0] != batch:
            raise ValueError(
                f"lengths must have shape ({batch},) to match x, got {tuple(lengths.shape)}"
            )
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1:
            raise ValueError(f"lengths must be >= 1 (empty sequences cannot be encoded), got {low}")
        if high > time:
            raise ValueError(f"lengths must be <= the padded length {time}, got {high}")
        return lengths.to(device=device, dtype=torch.long)

    def embed(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Check ``x`` and return the RNN input ``(batch, time, input_dim)`` and lengths.

        Raises:
            TypeError/ValueError: naming ``x`` or ``lengths`` when they do not fit.
        """
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if self.embedding is not None and not x.dtype.is_floating_point:
            if x.dtype == torch.bool or x.dim() != 2:
                raise ValueError(
                    f"x must be token ids of shape (batch, time) with an integer dtype, "
                    f"got shape {tuple(x.shape)} and dtype {x.dtype}"
                )
            if x.shape[1] == 0:
                raise ValueError(
                    "x has no time steps (shape (batch, 0)); sequences must be non-empty"
                )
            low, high = int(x.min()), int(x.max())
            if low < 0 or high >= self.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(
                    f"x contains token id {bad} outside the vocabulary [0, {self.vocab_size})"
                )
            lengths = self.lengths_of(x) if lengths is None else lengths
            emb = self.embedding(x)
        else:
            if not x.dtype.is_floating_point:
                raise TypeError(
                    f"x must be a float tensor (batch, time, {self.input_dim}) for continuous "
                    f"input, got dtype {x.dtype}"
                )
            if x.dim() != 3 or x.shape[2] != self.input_dim:
                what = "embedded tokens" if self.embedding is not None else "features"
                raise ValueError(
                    f"x must have shape (batch, time, {self.input_dim}) ({what}), "
                    f"got {tuple(x.shape)}"
                )
            if x.shape[1] == 0:
                raise ValueError("x has no time steps (shape (batch, 0, features))")
            emb = x
        batch, time = emb.shape[0], emb.shape[1]
        if lengths is None:
            lengths = torch.full((batch,), time, dtype=torch.long, device=emb.device)
        lengths = self._check_lengths(lengths, batch, time, emb.device)
        return emb, lengths

    # ------------------------------------------------------------------ encoding
    def encode(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Encode a batch into per-step states, a mask and the pooled representation.

        Args:
            x: token ids ``(batch, time)``, embedded tokens or continuous input
                ``(batch, time, features)``.
            lengths: optional LongTensor ``(batch,)`` of true lengths.

        Returns:
            ``(states, mask, pooled)``: ``(batch, time, hidden)`` states (zero at padding),
            a boolean ``(batch, time)`` mask of real steps, and ``(batch, hidden)``.

        Example:
            >>> model = RNNClassifier(2, vocab_size=10, hidden_size=4, embedding_dim=3)
            >>> states, mask, pooled = model.encode(torch.tensor([[3, 4, 0]]))
            >>> states.shape, mask.tolist(), pooled.shape
            (torch.Size([1, 3, 4]), [[True, True, False]], torch.Size([1, 4]))
        """
        emb, lengths = self.embed(x, lengths)
        emb = self.input_dropout(emb)
        time = emb.shape[1]
        mask = torch.arange(time, device=emb.device)[None, :] < lengths[:, None]
        raw = run_recurrent(self.rnn, emb, lengths)
        states = self.step_states(raw)
        self.attention_maps = []
        if self.pooling == "last":
            pooled = last_states(raw, lengths, self.rnn.bidirectional)
        elif self.pooling == "mean":
            pooled = states.sum(dim=1) / lengths[:, None].to(states.dtype)
        elif self.pooling == "max":
            pooled = states.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)
        else:
            pooled, weights = self.attention(states, mask)
            self.attention_maps = [weights.detach()[:, None, None, :]]
        return states, mask, self.representation(pooled)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Return the model output ``(batch, output_size)`` for a batch (see :meth:`encode`)."""
        _, _, pooled = self.encode(x, lengths)
        return self.head(self.output_dropout(pooled))

    # ------------------------------------------------------------------ Lightning steps
    @staticmethod
    def unpack_batch(batch: Any) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Split a batch into ``(inputs, lengths, targets)``.

        Accepts ``(inputs, lengths, targets)`` (what ``captum_rnn.data.pad_collate``
        returns), ``(inputs, targets)``, a dict with keys ``inputs``, ``lengths``,
        ``targets``, or ``(inputs,)`` / a bare input tensor (for prediction). A pair is
        always read as ``(inputs, targets)``: pass lengths in a triple or a dict.
        """
        if isinstance(batch, Tensor):
            return batch, None, None
        if isinstance(batch, dict):
            return batch["inputs"], batch.get("lengths"), batch.get("targets")
        if isinstance(batch, Sequence) and len(batch) == 3:
            return batch[0], batch[1], batch[2]
        if isinstance(batch, Sequence) and len(batch) == 2:
            return batch[0], None, batch[1]
        if isinstance(batch, Sequence) and len(batch) == 1:
            return batch[0], None, None
        raise ValueError(
            "batch must be (inputs, lengths, targets), (inputs, targets), a dict or a tensor"
        )

    def _shared_step(self, batch: Any, stage: str) -> Tensor:
        x, lengths, y = self.unpack_batch(batch)
        if y is None:
            raise ValueError(f"{stage} batches need targets")
        output = self(x, lengths)
        loss = self.compute_loss(output, y)
        size = output.shape[0]
        self.log(f"{stage}_loss", loss, prog_bar=stage != "test", batch_size=size)
        for name, value in self.compute_metrics(output, y).items():
            self.log(f"{stage}_{name}", value, prog_bar=stage == "val", batch_size=size)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def compute_loss(self, output: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def compute_metrics(self, output: Tensor, targets: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError


class RNNClassifier(RecurrentModel):
    """Recurrent classifier over token ids or continuous multivariate sequences.

    Args:
        num_classes: number of classes (>= 2); ``forward`` returns logits ``(batch, num_classes)``.
        vocab_size: size of the token vocabulary (token input). Exactly one of
            ``vocab_size`` and ``input_size`` is given.
        input_size: number of features per step (continuous input).
        embedding_dim: size of the token embedding.
        hidden_size: size of the recurrent state (per direction).
        num_layers: stacked recurrent layers.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        bidirectional: run a backward RNN too and concatenate the states.
        attention: ``None``, ``"additive"`` (Bahdanau) or ``"dot"`` attention pooling.
        pooling: ``"last"``, ``"mean"``, ``"max"`` or ``"attention"``; defaults to
            ``"attention"`` when ``attention`` is set, else ``"last"``.
        dropout: dropout on embeddings, between stacked layers and before the head.
        padding_idx: token id that marks padding.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.

    Example:
        >>> model = RNNClassifier(2, vocab_size=100, attention="additive")
        >>> model(torch.tensor([[5, 8, 13, 0, 0]])).shape
        torch.Size([1, 2])
        >>> model.attention_maps[0].shape
        torch.Size([1, 1, 1, 5])
    """

    def __init__(self, num_classes: int, vocab_size: int | None = None, **kwargs: Any) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        super().__init__(output_size=num_classes, vocab_size=vocab_size, **kwargs)
        self.num_classes = num_classes
        self.save_hyperparameters()

    def compute_loss(self, output: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(output, targets.long().view(-1))

    def compute_metrics(self, output: Tensor, targets: Tensor) -> dict[str, Tensor]:
        accuracy = (output.argmax(dim=-1) == targets.long().view(-1)).float().mean()
        return {"acc": accuracy}

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Return class probabilities ``(batch, num_classes)``."""
        x, lengths, _ = self.unpack_batch(batch)
        return torch.softmax(self(x, lengths), dim=-1)


class RNNRegressor(RecurrentModel):
    """Recurrent regressor trained with mean squared error.

    Same arguments as :class:`RNNClassifier` with ``output_size`` in place of
    ``num_classes``. The classic "simple RNN of 64 units, then one dense output,
    trained with MSE" is ``RNNRegressor(input_size=F, cell="rnn", hidden_size=64)``.

    Example:
        >>> model = RNNRegressor(input_size=3, cell="rnn", hidden_size=64)
        >>> model(torch.randn(4, 7, 3), lengths=torch.tensor([7, 5, 3, 1])).shape
        torch.Size([4, 1])
    """

    output_kind = "regression"

    def __init__(self, output_size: int = 1, vocab_size: int | None = None, **kwargs: Any) -> None:
        if output_size < 1:
            raise ValueError(f"output_size must be >= 1, got {output_size}")
        super().__init__(output_size=output_size, vocab_size=vocab_size, **kwargs)
        self.save_hyperparameters()

    def compute_loss(self, output: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(output, targets.to(output.dtype).view_as(output))

    def compute_metrics(self, output: Tensor, targets: Tensor) -> dict[str, Tensor]:
        return {"mae": (output - targets.to(output.dtype).view_as(output)).abs().mean()}

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Return the predictions ``(batch, output_size)``."""
        x, lengths, _ = self.unpack_batch(batch)
        return self(x, lengths)
