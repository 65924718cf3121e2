"""PyTorch's "language modeling with nn.Transformer" tutorial turned classifier, as users copy
it: time-major (``nn.TransformerEncoderLayer`` with its default ``batch_first=False``), a
``PositionalEncoding`` module with a registered ``pe`` buffer, ``forward(src,
src_key_padding_mask)`` where the mask is True at padding (the user builds it as
``src == pad``), mean pooling over the real positions, and a linear layer to 2 classes.

The embedding has no ``padding_idx`` (the tutorial's ``nn.Embedding(ntoken, d_model)``): a
user must tell the padding id.

Toy task: a sentence is positive iff the token "good" appears (otherwise "bad" appears)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from zoo import ZooCase

PAD = 1
GOOD = 2
BAD = 3
VOCAB_SIZE = 24
MAX_LEN = 10


class PositionalEncoding(nn.Module):
    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)

        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x: Tensor) -> Tensor:
        """
        Arguments:
            x: Tensor, shape ``[seq_len, batch_size, embedding_dim]``
        """
        x = x + self.pe[: x.size(0)]
        return self.dropout(x)


class TransformerModel(nn.Module):
    def __init__(
        self,
        ntoken: int,
        d_model: int,
        nhead: int,
        d_hid: int,
        nlayers: int,
        nclass: int,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.model_type = "Transformer"
        self.pos_encoder = PositionalEncoding(d_model, dropout)
        encoder_layers = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout)
        self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers)
        self.embedding = nn.Embedding(ntoken, d_model)
        self.d_model = d_model
        self.classifier = nn.Linear(d_model, nclass)

        self.init_weights()

    def init_weights(self) -> None:
        initrange = 0.1
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.classifier.bias.data.zero_()
        self.classifier.weight.data.uniform_(-initrange, initrange)

    def forward(self, src: Tensor, src_key_padding_mask: Tensor) -> Tensor:
        """
        Arguments:
            src: Tensor, shape ``[seq_len, batch_size]``
            src_key_padding_mask: Tensor, shape ``[batch_size, seq_len]``, True at padding

        Returns:
            output Tensor of shape ``[batch_size, nclass]``
        """
        src = self.embedding(src) * math.sqrt(self.d_model)
        src = self.pos_encoder(src)
        output = self.transformer_encoder(src, src_key_padding_mask=src_key_padding_mask)
        # mean over the real positions
        keep = (~src_key_padding_mask).T.unsqueeze(-1).float()  # [seq_len, batch_size, 1]
        pooled = (output * keep).sum(0) / keep.sum(0).clamp(min=1)
        return self.classifier(pooled)


def padding_mask(src: Tensor, lengths: Tensor | None) -> Tensor:
    """``[batch_size, seq_len]`` True at padding: ``src == PAD`` as the user builds it, or,
    given the lengths, every step at or after a sentence's length (the same for trailing
    padding; for an all-padding baseline it keeps the real steps open)."""
    if lengths is None:
        return src.T == PAD
    return torch.arange(src.size(0))[None, :] >= lengths[:, None]


def make_sentences(n, generator, min_len=3, max_len=MAX_LEN):
    """(src (max_len, n) time-major, lengths (n,), labels (n,)); the first sentence has full
    length and the padding (PAD) sits after each sentence's end."""
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    lengths[0] = max_len
    src = torch.randint(BAD + 1, VOCAB_SIZE, (max_len, n), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    where = (torch.rand(n, generator=generator) * lengths).long()
    src[where, torch.arange(n)] = torch.where(labels == 1, GOOD, BAD)
    src[torch.arange(max_len)[:, None] >= lengths[None, :]] = PAD
    return src, lengths, labels


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_src, train_lengths, train_labels = make_sentences(256, g)
    test_src, test_lengths, test_labels = make_sentences(24, g)

    model = TransformerModel(VOCAB_SIZE, 16, 2, 32, 2, 2, dropout=0.1)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    batch_size = 32
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(train_src.size(1), generator=g)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            src = train_src[:, idx]
            optimizer.zero_grad()
            output = model(src, src.T == PAD)
            loss = criterion(output, train_labels[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()

    model.eval()
    return ZooCase(
        name="transformer_tutorial",
        model=model,
        inputs=test_src,
        lengths=test_lengths,
        labels=test_labels,
        hints={"pad_id": PAD},
        pad_id=PAD,
        token=True,
        batch_first=False,
        call=lambda src, lengths: model(src, padding_mask(src, lengths)),
        embedding=model.embedding,
        train_data=(train_src, train_lengths, train_labels),
    )
