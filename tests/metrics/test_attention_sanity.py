"""Attention sanity checks: they separate attention that matters from attention that cannot."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from captum_rnn.data import pad_collate, planted_cues
from captum_rnn.metrics import attention_intervention, attention_sanity
from captum_rnn.metrics._attention_sanity import shuffle_attention, uniform_attention
from captum_rnn.models import RNNClassifier, TransformerClassifier

GOOD, BAD = 1, 2


def cue_model(reads_cue: bool = True) -> RNNClassifier:
    """A hand-set attention RNN: states are tanh(3 * embedding), dot attention puts ~97%
    on the cue token. With ``reads_cue`` the head reads the cue dimensions (attention is
    what finds the cue); without, it reads a dimension that is the same for every token,
    so no choice of attention can change the output. Unless it sees the good cue, the
    first model predicts class 0."""
    torch.manual_seed(0)
    model = RNNClassifier(
        2, vocab_size=10, embedding_dim=4, hidden_size=4, cell="rnn", attention="dot"
    )
    with torch.no_grad():
        emb = torch.zeros(10, 4)
        emb[GOOD] = torch.tensor([1.0, 0, 0, 1])
        emb[BAD] = torch.tensor([0, 1.0, 0, 1])
        emb[3:, 2] = torch.linspace(-0.3, 0.3, 7)
        emb[3:, 3] = 1.0
        model.embedding.weight.copy_(emb)
        model.rnn.weight_ih_l0.copy_(3 * torch.eye(4))
        model.rnn.weight_hh_l0.zero_()
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
        model.attention.query.copy_(torch.tensor([12.0, 12.0, 0, 0]))
        model.head.bias.zero_()
        if reads_cue:
            model.head.bias.copy_(torch.tensor([2.0, -2.0]))  # no cue seen: class 0
            model.head.weight.copy_(torch.tensor([[-4.0, 4, 0, 0], [4, -4, 0, 0]]))
        else:
            model.head.weight.copy_(torch.tensor([[0, 0, 0, -2.0], [0, 0, 0, 2.0]]))
    return model.eval()


def cue_batch(seed: int = 0, n: int = 12, pad_to: int = 14):
    """Filler sequences with one cue each, trailing padding; labels say which cue."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 11, (n,), generator=g)
    x = torch.zeros(n, pad_to, dtype=torch.long)
    labels = torch.arange(n) % 2
    for i, length in enumerate(lengths.tolist()):
        x[i, :length] = torch.randint(3, 10, (length,), generator=g)
        x[i, int(torch.randint(0, length, (1,), generator=g))] = GOOD if labels[i] else BAD
    return x, lengths, labels


def snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [(m, m.training) for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
    )


def assert_unchanged(model: nn.Module, before) -> None:
    state, modes, grads = before
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(m.training == t for m, t in modes)
    assert [p.requires_grad for p in model.parameters()] == grads
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_checks_separate_attention_that_matters_from_attention_that_cannot():
    x, _, labels = cue_batch()
    matters = attention_sanity(cue_model(True), x, labels=labels, randomization=False)
    inert = attention_sanity(cue_model(False), x, labels=labels, randomization=False)
    s, t = matters.summary(), inert.summary()
    assert matters.attention_matters and not inert.attention_matters
    assert s["permutation_tv"] > 0.2 and s["permutation_flip_rate"] > 0.3
    assert t["permutation_tv"] < 1e-6 and t["permutation_flip_rate"] == 0.0
    assert s["uniform_tv"] > 0.2 and t["uniform_tv"] < 1e-6
    assert s["accuracy"] == 1.0 and s["accuracy_drop"] > 0.2
    assert t["accuracy_drop"] == 0.0
    # Where attention finds the cue, it ranks tokens like the gradient and like removal.
    assert s["tau_gradient"] > 0.3 and s["tau_loo"] > 0.3
    assert len(matters.permutation_tv) == len(x)
    assert "do not read attention" in str(inert) and "depends on where" in str(matters)


def test_single_position_attention_cannot_be_shuffled():
    model = cue_model(True)
    x = torch.tensor([[GOOD], [BAD], [5]])
    report = attention_sanity(model, x, permutations=3, randomization=False)
    assert max(report.permutation_tv) < 1e-12 and max(report.uniform_tv) < 1e-12
    assert all(math.isnan(v) for v in report.tau_gradient)  # one token: tau undefined


def test_shuffle_permutes_real_positions_only():
    g = torch.Generator().manual_seed(0)
    key_mask = torch.tensor([[True] * 5 + [False] * 3, [True] * 2 + [False] * 6])
    query_mask = key_mask.clone()
    weights = torch.rand(2, 3, 8, 8, generator=g) * key_mask[:, None, None, :]
    weights = weights * query_mask[:, None, :, None]
    shuffled = shuffle_attention(weights, key_mask, query_mask, torch.Generator().manual_seed(1))
    padded = shuffled[~key_mask[:, None, None, :].expand_as(weights)]
    assert padded.numel() == 3 * 8 * (3 + 6) and torch.equal(padded, torch.zeros_like(padded))
    assert not torch.equal(shuffled, weights)
    for b in range(2):
        n = int(key_mask[b].sum())
        real = weights[b, :, :, :n].sort(-1).values
        assert torch.equal(shuffled[b, :, :, :n].sort(-1).values, real)  # a permutation per row
    uniform = uniform_attention(weights, key_mask, query_mask, None)
    assert torch.allclose(uniform[0, 1, 2], torch.tensor([0.2] * 5 + [0.0] * 3))
    assert torch.equal(uniform[0, :, 6], torch.zeros(3, 8))  # padded query row stays 0


def test_shuffle_draws_do_not_depend_on_padding_length():
    key_mask = torch.tensor([[True] * 4 + [False] * 2])
    weights = torch.tensor([[[[0.1, 0.2, 0.3, 0.4, 0.0, 0.0]]]])
    short = shuffle_attention(
        weights[..., :4], key_mask[:, :4], torch.ones(1, 1, dtype=torch.bool),
        torch.Generator().manual_seed(3),
    )  # fmt: skip
    long = shuffle_attention(
        weights, key_mask, torch.ones(1, 1, dtype=torch.bool), torch.Generator().manual_seed(3)
    )
    assert torch.equal(long[..., :4], short) and torch.equal(long[..., 4:], torch.zeros(1, 1, 1, 2))


def test_intervention_inside_the_rnn_keeps_padding_out():
    model = cue_model(True)
    x, _, _ = cue_batch(n=4)
    model(x)
    original = model.attention_maps[0][:, 0, 0]
    mask = x != 0
    with attention_intervention(model, "shuffle", seed=2):
        model(x)
        shuffled = model.attention_maps[0][:, 0, 0]
    assert torch.equal(shuffled[~mask], torch.zeros(int((~mask).sum())))
    for i in range(4):
        assert torch.allclose(
            shuffled[i][mask[i]].sort().values, original[i][mask[i]].sort().values
        )
    assert torch.equal(model.attention_maps[0][:, 0, 0], original)  # restored afterwards
    with attention_intervention(model, "uniform"):
        padded = model(torch.tensor([[5, GOOD, 6, 0, 0, 0]]))
        unpadded = model(torch.tensor([[5, GOOD, 6]]))
        assert torch.allclose(model.attention_maps[0][0, 0, 0], torch.full((3,), 1 / 3))
    assert torch.allclose(padded, unpadded, atol=1e-6)


def test_intervention_on_the_transformer():
    torch.manual_seed(0)
    model = TransformerClassifier(2, vocab_size=20, num_layers=2, num_heads=2, embedding_dim=8)
    model.eval()
    x = torch.tensor([[4, 5, 6, 7, 0, 0], [8, 9, 0, 0, 0, 0]])
    mask = x != 0
    model(x)
    original = [m.clone() for m in model.attention_maps]
    with attention_intervention(model, "shuffle", seed=0, layers=[1]):
        model(x)
        maps = model.attention_maps
    assert torch.equal(maps[0], original[0])  # layer 0 untouched
    pad_keys = ~mask[:, None, None, :].expand_as(maps[1])
    pad_rows = ~mask[:, None, :, None].expand_as(maps[1])
    assert float(maps[1][pad_keys | pad_rows].abs().sum()) == 0.0
    assert torch.allclose(maps[1].sum(-1)[mask[:, None, :].expand(-1, 2, -1)], torch.ones(12))
    assert not torch.allclose(maps[1], original[1])
    with attention_intervention(model, "uniform"):
        padded = model(torch.tensor([[4, 5, 6, 0, 0, 0, 0]]))
        unpadded = model(torch.tensor([[4, 5, 6]]))
    assert torch.allclose(padded, unpadded, atol=1e-5)


def trained_cue_lstm(steps: int = 60):
    """A bidirectional attention LSTM trained for a few Adam steps on planted cues."""
    data = planted_cues(256, length=(6, 14), vocab_size=20, seed=0)
    held_out = planted_cues(16, length=(6, 14), vocab_size=20, seed=1)
    torch.manual_seed(0)
    model = RNNClassifier(
        2, vocab_size=len(data.vocab), embedding_dim=16, hidden_size=16,
        bidirectional=True, attention="additive",
    )  # fmt: skip
    ds = data.to_dataset()
    x, lengths, y = pad_collate([ds[i] for i in range(len(ds))])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        rows = slice((step * 32) % 256, (step * 32) % 256 + 32)
        loss = F.cross_entropy(model(x[rows], lengths[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ds = held_out.to_dataset()
    return model.eval(), pad_collate([ds[i] for i in range(len(ds))]), len(data.vocab)


def test_report_on_trained_models():
    model, (ids, _, labels), vocab_size = trained_cue_lstm()
    before = snapshot(model)
    report = attention_sanity(model, ids, labels=labels, permutations=10)
    assert_unchanged(model, before)
    assert report.attention == "attention_weights"
    assert report.attention_matters and report.summary()["tau_gradient"] > 0
    assert set(report.randomization) == {"attention_weights", "attention_rollout"}
    stages = report.randomization["attention_weights"].stages
    assert [name for name, _ in stages] == ["head", "attention", "rnn", "embedding"]
    assert stages[0][1] == pytest.approx(1.0)  # attention never reads the head
    json.dumps(report.to_dict())

    torch.manual_seed(0)
    transformer = TransformerClassifier(2, vocab_size=vocab_size, num_layers=2).eval()
    report = attention_sanity(transformer, ids, permutations=2, randomization=False)
    assert report.attention == "attention_rollout" and report.accuracy is None


def test_same_report_for_a_seed_and_whatever_the_padding():
    model = cue_model(True)
    x, lengths, labels = cue_batch(n=6, pad_to=11)
    a = attention_sanity(model, x, labels=labels, permutations=4, randomization=False, seed=5)
    b = attention_sanity(model, x, labels=labels, permutations=4, randomization=False, seed=5)
    wide = torch.cat([x, torch.zeros(6, 9, dtype=torch.long)], dim=1)
    c = attention_sanity(model, wide, labels=labels, permutations=4, randomization=False, seed=5)
    assert a.permutation_tv == b.permutation_tv
    assert torch.allclose(torch.tensor(a.permutation_tv), torch.tensor(c.permutation_tv))
    assert torch.allclose(torch.tensor(a.uniform_tv), torch.tensor(c.uniform_tv))


def test_model_unchanged_even_after_an_error():
    model = cue_model(True).train()
    before = snapshot(model)
    x, _, labels = cue_batch(n=4)
    attention_sanity(model, x, labels=labels, permutations=2)
    assert_unchanged(model, before)
    with pytest.raises(RuntimeError, match="boom"):
        with attention_intervention(model, "shuffle"):
            raise RuntimeError("boom")
    assert_unchanged(model, before)

    def wrong_shape(weights, key_mask, query_mask, generator):
        return weights[..., :1]

    with pytest.raises(ValueError, match="replace must return"):
        with attention_intervention(model, wrong_shape):
            model(x)
    assert_unchanged(model, before)


def test_bad_input():
    model = cue_model(True)
    x, _, _ = cue_batch(n=3)
    with pytest.raises(ValueError, match="attention"):
        attention_sanity(model, x, attention="gradients")
    with pytest.raises(ValueError, match="permutations"):
        attention_sanity(model, x, permutations=0)
    with pytest.raises(ValueError, match="randomization_methods"):
        attention_sanity(model, x, randomization_methods=["saliency"])
    with pytest.raises(ValueError, match="labels"):
        attention_sanity(model, x, labels=torch.tensor([0, 1]), randomization=False)
    with pytest.raises(ValueError, match="vocabulary"):
        attention_sanity(model, torch.tensor([[3, 99]]))
    with pytest.raises(ValueError, match="padding"):
        attention_sanity(model, torch.tensor([[0, 0]]))
    with pytest.raises(TypeError, match="token"):
        attention_sanity(model, torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="no attention"):
        attention_sanity(RNNClassifier(2, vocab_size=10), x)
    with pytest.raises(TypeError, match="TransformerClassifier"):
        attention_sanity(nn.TransformerEncoderLayer(8, 2, batch_first=True), x)
    with pytest.raises(ValueError, match="replace"):
        with attention_intervention(model, "reverse"):
            pass
    with pytest.raises(ValueError, match="layers"):
        with attention_intervention(model, "shuffle", layers=[3]):
            pass


class _UserEncoder(nn.Module):
    """A user's own model: embedding, nn.TransformerEncoder with padding, mean pooling."""

    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.batch_first = batch_first
        self.embedding = nn.Embedding(20, 8, padding_idx=0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        pad = ids == 0
        x = self.embedding(ids)
        if not self.batch_first:
            x = x.transpose(0, 1)
        h = self.encoder(x, src_key_padding_mask=pad)
        if not self.batch_first:
            h = h.transpose(0, 1)
        real = (~pad).unsqueeze(-1).float()
        return self.head((h * real).sum(1) / real.sum(1))


@pytest.mark.parametrize("batch_first", [True, False])
def test_interventions_on_a_users_transformer_encoder(batch_first):
    model = _UserEncoder(batch_first).eval()
    ids = torch.tensor([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12]])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        reference = model(ids)
        seen = []

        def keep(weights, key_mask, query_mask, generator):
            seen.append((weights.shape, key_mask.clone()))
            return weights

        # handing back the model's own weights reproduces its output exactly
        with attention_intervention(model, keep):
            same = model(ids)
        assert torch.allclose(same, reference, atol=1e-5)
        assert [shape for shape, _ in seen] == [(2, 2, 6, 6)] * 2  # per head, both layers
        assert seen[0][1].tolist()[0] == [True] * 4 + [False] * 2  # padding read from the mask
        with attention_intervention(model, "uniform"):
            uniform = model(ids)
        with attention_intervention(model, "shuffle", seed=1):
            shuffled = model(ids)
        assert not torch.allclose(uniform, reference, atol=1e-4)
        assert not torch.allclose(shuffled, reference, atol=1e-4)
        # padding length changes nothing under the intervention either
        with attention_intervention(model, "uniform"):
            alone = model(ids[:1, :4])
        assert torch.allclose(alone, uniform[:1], atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert torch.backends.mha.get_fastpath_enabled()


def test_multihead_attention_with_extra_keys_is_refused():
    mha = nn.MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True).eval()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = mha

        def forward(self, x):
            return self.attention(x, x, x)[0]

    with pytest.raises(ValueError, match="add_bias_kv"), attention_intervention(Wrap(), "uniform"):
        Wrap()(torch.randn(1, 3, 8))
