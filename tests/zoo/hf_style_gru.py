"""A Hugging-Face-style sequence classifier written without transformers installed:
``forward(input_ids, attention_mask=None, labels=None)`` (``attention_mask`` 1 at real
tokens, 0 at padding), returning a dataclass output record with ``loss`` (``None`` without
labels) and ``logits``; padding id 0, batch-first, a bidirectional GRU over the embeddings,
masked mean pooling, 3 classes.

Toy task: three classes, each marked by its own cue token somewhere in the sentence."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zoo import ZooCase, nll_gru

PAD = nll_gru.PAD  # 0
VOCAB_SIZE = nll_gru.VOCAB_SIZE
N_CLASSES = nll_gru.N_CLASSES
MAX_LEN = 10


@dataclass
class SequenceClassifierOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


@dataclass
class GRUConfig:
    vocab_size: int = VOCAB_SIZE
    hidden_size: int = 16
    num_labels: int = N_CLASSES
    pad_token_id: int = PAD


class GRUForSequenceClassification(nn.Module):
    def __init__(self, config: GRUConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.gru = nn.GRU(
            config.hidden_size, config.hidden_size, batch_first=True, bidirectional=True
        )
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, labels=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden_states = self.embeddings(input_ids)
        sequence_output, _ = self.gru(hidden_states)
        mask = attention_mask.unsqueeze(-1).to(sequence_output.dtype)
        pooled = (sequence_output * mask).sum(1) / mask.sum(1).clamp(min=1)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def attention_mask(input_ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """1 at real tokens: ``input_ids != PAD`` as a tokenizer gives it, or, given the
    lengths, every step before a sentence's length (the same for trailing padding; for an
    all-padding baseline it keeps the real steps open)."""
    if lengths is None:
        return (input_ids != PAD).long()
    return (torch.arange(input_ids.size(1))[None, :] < lengths[:, None]).long()


def make_sentences(n, generator, min_len=3, max_len=MAX_LEN):
    """(input_ids (n, max_len) batch-first, lengths (n,), labels (n,)) with pad 0 at the
    end: the cue-token sentences of the NLLLoss GRU tutorial (same vocabulary and cues)."""
    return nll_gru.make_sentences(n, generator, min_len=min_len, max_len=max_len)


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_ids, train_lengths, train_labels = make_sentences(384, g)
    test_ids, test_lengths, test_labels = make_sentences(24, g)

    model = GRUForSequenceClassification(GRUConfig())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)

    batch_size = 64
    for _epoch in range(8):
        model.train()
        perm = torch.randperm(train_ids.size(0), generator=g)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            batch = {
                "input_ids": train_ids[idx],
                "attention_mask": (train_ids[idx] != PAD).long(),
                "labels": train_labels[idx],
            }
            optimizer.zero_grad()
            outputs = model(**batch)
            outputs.loss.backward()
            optimizer.step()

    model.eval()
    return ZooCase(
        name="hf_style_gru",
        model=model,
        inputs=test_ids,
        lengths=test_lengths,
        labels=test_labels,
        hints={},
        pad_id=PAD,
        token=True,
        batch_first=True,
        call=lambda input_ids, lengths: (
            model(input_ids, attention_mask=attention_mask(input_ids, lengths)).logits
        ),
        embedding=model.embeddings,
        train_data=(train_ids, train_lengths, train_labels),
    )
