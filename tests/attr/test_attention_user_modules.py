"""Attention classes on users' own attention modules (attention_modules=), all-padding rows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from captum_rnn.attr import (
    AttentionFlow,
    AttentionRollout,
    AttentionWeights,
    GradientAttentionRollout,
)
from captum_rnn.models import TransformerClassifier

from conftest import token_model

PAD = 1


class Attention(nn.Module):
    """bentrevett-style additive attention: returns softmaxed weights (batch, src_len)."""

    def __init__(self, hid: int, style: str = "weights") -> None:
        super().__init__()
        self.attn = nn.Linear(hid, hid)
        self.v = nn.Linear(hid, 1, bias=False)
        self.style = style
        self.weights = None

    def forward(self, outputs, mask):  # outputs (src_len, batch, hid), mask (batch, src_len)
        energy = torch.tanh(self.attn(outputs)).permute(1, 0, 2)
        scores = self.v(energy).squeeze(2).masked_fill(mask == 0, -1e10)
        weights = F.softmax(scores, dim=1)
        if self.style == "weights":
            return weights
        context = torch.bmm(weights.unsqueeze(1), outputs.permute(1, 0, 2)).squeeze(1)
        if self.style == "pair":
            return context, weights
        self.weights = weights  # "stored"
        return context


class AttnGRU(nn.Module):
    """Time-major GRU + additive attention pooling classifier, forward(text, text_lengths)."""

    def __init__(self, style: str = "weights", vocab: int = 30, emb: int = 8, hid: int = 12):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.rnn = nn.GRU(emb, hid)
        self.attention = Attention(hid, style)
        self.fc = nn.Linear(hid, 2)
        self.by_hand = None

    def forward(self, text, text_lengths):  # text (src_len, batch)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(text), text_lengths.cpu(), enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=text.shape[0])
        mask = (text != PAD).T
        result = self.attention(out, mask)
        if self.attention.style == "weights":
            weights = result
        elif self.attention.style == "pair":
            weights = result[1]
        else:
            weights = self.attention.weights
        self.by_hand = weights.detach().clone()
        context = torch.bmm(weights.unsqueeze(1), out.permute(1, 0, 2)).squeeze(1)
        return self.fc(context)


def batch():
    """Batch-first ids (batch 3, time 5), padded with PAD."""
    return torch.tensor(
        [[4, 5, 6, 7, 8], [9, 10, 11, PAD, PAD], [12, 13, PAD, PAD, PAD]], dtype=torch.long
    )


SPECS = {
    "weights": ["attention", ("attention", "output")],
    "pair": ["attention", ("attention", 1)],
    "stored": [("attention", "weights")],
}


@pytest.mark.parametrize(
    "style,spec", [(style, spec) for style, specs in SPECS.items() for spec in specs]
)
@pytest.mark.parametrize("cls", [AttentionWeights, AttentionRollout])
def test_returns_the_weights_computed_in_the_forward(style, spec, cls):
    model = AttnGRU(style).eval()
    ids = batch()
    scores = cls(model, attention_modules=[spec]).attribute(ids)
    assert scores.shape == ids.shape
    with torch.no_grad():
        model(ids.T, (ids != PAD).sum(1))
    torch.testing.assert_close(scores, model.by_hand, atol=1e-6, rtol=1e-5)
    assert torch.equal(scores[ids == PAD], torch.zeros(int((ids == PAD).sum())))
    assert all(not m._forward_hooks for m in model.modules())


def test_lengths_gradient_and_flow_on_a_user_module():
    model = AttnGRU("pair").eval()
    ids = batch()
    lengths = (ids != PAD).sum(1)
    weights = AttentionWeights(model, attention_modules=["attention"])
    same = weights.attribute(ids, additional_forward_args=(lengths,))
    torch.testing.assert_close(same, weights.attribute(ids))
    flow = AttentionFlow(model, attention_modules=["attention"]).attribute(ids)
    torch.testing.assert_close(flow, same, atol=1e-5, rtol=1e-5)
    grad = GradientAttentionRollout(model, attention_modules=["attention"]).attribute(ids, target=1)
    assert grad.shape == ids.shape and bool((grad >= 0).all())
    assert torch.equal(grad[ids == PAD], torch.zeros(int((ids == PAD).sum())))
    assert all(not m._forward_hooks for m in model.modules())
    assert torch.is_grad_enabled()


def test_attention_modules_errors_are_named():
    model = AttnGRU("pair").eval()
    with pytest.raises(ValueError, match="no submodule 'decoder.attention'"):
        AttentionWeights(model, attention_modules=[("decoder.attention", "output")])
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        AttentionWeights(model, attention_modules=[("attention", "nope")]).attribute(batch())
    with pytest.raises(ValueError, match="entry"):
        AttentionWeights(model, attention_modules=[("attention", "output", 3)])
    with pytest.raises(ValueError, match="all padding"):
        AttentionWeights(model, attention_modules=["attention"]).attribute(
            torch.tensor([[4, 5], [PAD, PAD]])
        )
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("cls", [AttentionWeights, AttentionRollout, AttentionFlow])
def test_all_padding_rows_are_value_errors_naming_the_row(cls):
    transformer = TransformerClassifier(2, vocab_size=20).eval()
    with pytest.raises(ValueError, match="row 1 of the batch is all padding"):
        cls(transformer).attribute(torch.tensor([[4, 5, 6], [0, 0, 0]]))
    rnn = token_model("lstm-bi-additive").eval()
    with pytest.raises(ValueError, match="row 0 of the batch is all padding"):
        cls(rnn).attribute(torch.tensor([[0, 0, 0], [4, 5, 6]]))
    with pytest.raises(ValueError, match="row 1 of the batch is all padding"):
        cls(transformer).attribute(
            torch.tensor([[4, 5, 6], [7, 8, 9]]),
            mask=torch.tensor([[True, True, False], [False, False, False]]),
        )


def test_layer_must_be_an_int_in_range():
    model = AttnGRU("weights").eval()
    weights = AttentionWeights(model, attention_modules=["attention"])
    with pytest.raises(ValueError, match=r"layer must be in \[-1, 1\), got 1.5"):
        weights.attribute(batch(), layer=1.5)
