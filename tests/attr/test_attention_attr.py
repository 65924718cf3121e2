"""AttentionWeights, AttentionRollout, AttentionFlow and GradientAttentionRollout as Captum
attributions on the Transformer, the attention RNNs and plain PyTorch encoders."""

import pytest
import torch
from captum.attr import Attribution
from torch import nn

import captum_rnn
from captum_rnn.attr import (
    AttentionFlow,
    AttentionRollout,
    AttentionWeights,
    GradientAttentionRollout,
    attention_flow,
    attention_rollout,
    capture_attention,
)
from captum_rnn.models import TransformerClassifier

from conftest import padded_batch, token_model


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CLASSES = [AttentionWeights, AttentionRollout, AttentionFlow, GradientAttentionRollout]


def transformer(layers=2, heads=2, seed=0, pooling="mean"):
    torch.manual_seed(seed)
    return TransformerClassifier(
        3, vocab_size=30, num_layers=layers, num_heads=heads, embedding_dim=8, pooling=pooling
    ).eval()


class PlainEncoder(nn.Module):
    """A user model built from nn.TransformerEncoderLayer, padding via key_padding_mask."""

    def __init__(self, layers=2):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(30, 8, padding_idx=0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        pad = ids == 0
        h = self.encoder(self.embedding(ids), src_key_padding_mask=pad)
        real = (~pad).unsqueeze(-1).float()
        return self.head((h * real).sum(1) / real.sum(1))


class PositionalMHA(nn.Module):
    """nn.MultiheadAttention called with positional arguments and need_weights=False."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(30, 8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        x = self.embedding(ids)
        out, _ = self.attention(x, x, x, None, False)
        return self.head(out.mean(1))


def snapshot(model):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        {n: m.training for n, m in model.named_modules()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        sum(
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        ),
        [t.clone() for t in getattr(model, "attention_maps", [])],
    )


def assert_unchanged(model, before):
    after = snapshot(model)
    for key in before[0]:
        assert torch.equal(before[0][key], after[0][key])
    assert before[1:4] == after[1:4]
    assert len(before[4]) == len(after[4])
    for a, b in zip(before[4], after[4], strict=True):
        assert torch.equal(a, b)
    assert torch.backends.mha.get_fastpath_enabled()


# ------------------------------------------------------------------- Transformer
def test_classes_are_captum_attributions_with_the_right_shape():
    model = transformer()
    ids, lengths = padded_batch()
    for cls in CLASSES:
        explainer = cls(model)
        assert isinstance(explainer, Attribution)
        scores = explainer.attribute(ids)
        assert scores.shape == ids.shape
        assert (scores[ids == 0] == 0).all()
        assert torch.isfinite(scores).all()


def test_rollout_matches_the_pure_function_on_recorded_maps():
    model = transformer(layers=3)
    ids, lengths = padded_batch()
    with torch.no_grad():
        model(ids)
    mask = ids != 0
    rollout = attention_rollout(model.attention_maps, mask=mask)
    mean_row = (rollout * mask[:, :, None]).sum(1) / lengths[:, None]
    torch.testing.assert_close(AttentionRollout(model).attribute(ids), mean_row)
    flow = attention_flow(model.attention_maps, mask=mask)
    flow_row = (flow * mask[:, :, None]).sum(1) / lengths[:, None]
    torch.testing.assert_close(AttentionFlow(model).attribute(ids), flow_row.float())
    # Rows of the mean-pooled output sum to 1 over real positions.
    torch.testing.assert_close(AttentionRollout(model).attribute(ids).sum(1), torch.ones(4))


def test_one_layer_rollout_is_residual_mixed_attention_and_flow_its_row():
    model = transformer(layers=1)
    ids, _ = padded_batch()
    with torch.no_grad():
        model(ids)
    attention = model.attention_maps[0].mean(1)  # (batch, T, T)
    for position in (0, 1):
        expected = 0.5 * attention[:, position]
        expected[:, position] += 0.5
        torch.testing.assert_close(
            AttentionRollout(model).attribute(ids, position=position), expected
        )
        torch.testing.assert_close(AttentionFlow(model).attribute(ids, position=position), expected)
        torch.testing.assert_close(
            AttentionWeights(model).attribute(ids, position=position), attention[:, position]
        )


def test_position_first_and_last():
    model = transformer(pooling="first")
    ids, lengths = padded_batch()
    with torch.no_grad():
        model(ids)
    mask = ids != 0
    rollout = attention_rollout(model.attention_maps, mask=mask)
    # The model pools position 0, so that is the default row.
    torch.testing.assert_close(AttentionRollout(model).attribute(ids), rollout[:, 0])
    last = AttentionRollout(model).attribute(ids, position="last")
    torch.testing.assert_close(last, rollout[torch.arange(4), lengths - 1])
    with pytest.raises(ValueError, match="padding"):
        AttentionRollout(model).attribute(ids, position=ids.shape[1] - 1)
    with pytest.raises(ValueError, match="position"):
        AttentionRollout(model).attribute(ids, position="middle")


def test_gradient_rollout_one_layer_is_positive_gradient_times_attention():
    model = transformer(layers=1)
    ids, lengths = padded_batch()
    tap = model.layers[0].attention.attention_probs
    box = {}
    handle = tap.register_forward_hook(lambda m, i, o: box.__setitem__("a", o))
    try:
        logits = model(ids)
    finally:
        handle.remove()
    target = torch.tensor([0, 1, 2, 1])
    grad = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), box["a"])[0]
    cam = (grad * box["a"]).clamp_min(0).mean(1).detach()
    mask = ids != 0
    cam = cam * (mask[:, :, None] & mask[:, None, :])
    expected = (cam * mask[:, :, None]).sum(1) / lengths[:, None]
    got = GradientAttentionRollout(model).attribute(ids, target=target)
    torch.testing.assert_close(got, expected)
    assert (got >= 0).all()


def test_gradient_rollout_depends_on_target_and_defaults_to_prediction():
    model = transformer()
    ids, _ = padded_batch()
    explainer = GradientAttentionRollout(model)
    a, b = explainer.attribute(ids, target=0), explainer.attribute(ids, target=1)
    assert not torch.allclose(a, b)
    predicted = model(ids).argmax(-1)
    torch.testing.assert_close(explainer.attribute(ids), explainer.attribute(ids, target=predicted))


def test_padding_length_and_batch_do_not_change_the_explanation():
    model = transformer(layers=3)
    ids, lengths = padded_batch()
    longer = torch.cat([ids, torch.zeros(4, 11, dtype=torch.long)], dim=1)
    for cls in CLASSES:
        explainer = cls(model)
        short, long = explainer.attribute(ids, target=1), explainer.attribute(longer, target=1)
        torch.testing.assert_close(long[:, : ids.shape[1]], short, atol=1e-5, rtol=1e-4)
        assert (long[:, ids.shape[1] :] == 0).all()
        for i in range(4):
            alone = explainer.attribute(ids[i : i + 1, : lengths[i]], target=1)
            torch.testing.assert_close(alone[0], short[i, : lengths[i]], atol=1e-5, rtol=1e-4)


def test_explicit_lengths_and_embedded_inputs():
    model = transformer()
    ids, lengths = padded_batch()
    embedded = model.embedding(ids).detach()
    for cls in CLASSES:
        from_ids = cls(model).attribute(ids, target=0)
        from_embedded = cls(model).attribute(embedded, target=0, additional_forward_args=(lengths,))
        torch.testing.assert_close(from_embedded, from_ids, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cls", CLASSES)
def test_explaining_changes_nothing_even_after_an_error(cls):
    model = transformer()
    model.layers[0].attention.qkv.weight.requires_grad_(False)
    ids, _ = padded_batch()
    model(ids)
    before = snapshot(model)
    cls(model).attribute(ids, target=1)
    assert_unchanged(model, before)
    with pytest.raises(ValueError):
        cls(model).attribute(ids, target=1, position=99)
    assert_unchanged(model, before)
    model.train()
    before = snapshot(model)
    cls(model).attribute(ids, target=1)
    assert_unchanged(model, before)


def test_gradient_rollout_works_under_inference_mode():
    model = transformer()
    ids, _ = padded_batch()
    expected = GradientAttentionRollout(model).attribute(ids, target=2)
    with torch.inference_mode():
        ids_inf = ids.clone()
        got = GradientAttentionRollout(model).attribute(ids_inf, target=2)
    torch.testing.assert_close(got, expected)


def test_deterministic():
    ids, _ = padded_batch()
    for cls in CLASSES:
        a = cls(transformer(seed=3)).attribute(ids, target=0)
        b = cls(transformer(seed=3)).attribute(ids, target=0)
        assert torch.equal(a, b)


# ------------------------------------------------------------------- attention RNNs
@pytest.mark.parametrize("config", ["lstm-bi-additive", "gru-dot"])
def test_attention_rnn_rollout_and_flow_are_the_pooling_weights(config):
    model = token_model(config)
    ids, lengths = padded_batch()
    with torch.no_grad():
        model(ids)
    weights = model.attention_maps[0][:, 0, 0]
    for cls in (AttentionWeights, AttentionRollout, AttentionFlow):
        torch.testing.assert_close(cls(model).attribute(ids), weights)


def test_attention_rnn_gradient_rollout_is_positive_gradient_times_weights():
    model = token_model("lstm-bi-additive")
    ids, _ = padded_batch()
    box = {}
    handle = model.attention.register_forward_hook(lambda m, i, o: box.__setitem__("w", o[1]))
    try:
        logits = model(ids)
    finally:
        handle.remove()
    grad = torch.autograd.grad(logits[:, 1].sum(), box["w"])[0]
    expected = (grad * box["w"]).clamp_min(0).detach()
    torch.testing.assert_close(GradientAttentionRollout(model).attribute(ids, target=1), expected)


@pytest.mark.parametrize("cls", CLASSES)
def test_through_states_maps_state_attention_to_tokens(cls):
    model = token_model("lstm-bi-additive")
    ids, lengths = padded_batch()
    before = snapshot(model)
    plain = cls(model).attribute(ids, target=1)
    mapped = cls(model).attribute(ids, target=1, through_states=True)
    assert_unchanged(model, before)
    assert mapped.shape == ids.shape and (mapped[ids == 0] == 0).all()
    if cls is not GradientAttentionRollout:
        torch.testing.assert_close(mapped.sum(1), torch.ones(4))
    torch.testing.assert_close(mapped.sum(1), plain.sum(1))
    assert not torch.allclose(mapped, plain)


def test_through_states_of_a_unidirectional_rnn_is_causal():
    model = token_model("gru-dot")
    ids, lengths = padded_batch(batch=1)
    weights = AttentionWeights(model).attribute(ids)
    mapped = AttentionWeights(model).attribute(ids, target=0, through_states=True)
    # Only the first state has read only the first token: the last token's relevance
    # can come from the last state alone.
    assert mapped[0, -1] <= weights[0, -1] + 1e-6


def test_rnn_without_attention_and_transformer_through_states_are_refused():
    ids, _ = padded_batch()
    with pytest.raises(ValueError, match="attention"):
        AttentionRollout(token_model("lstm-last")).attribute(ids)
    with pytest.raises(ValueError, match="through_states"):
        AttentionRollout(transformer()).attribute(ids, through_states=True)
    with pytest.raises(TypeError, match="no attention"):
        AttentionRollout(nn.Sequential(nn.Embedding(30, 4))).attribute(ids)


def test_explain_runs_attention_methods_on_attention_rnns():
    model = token_model("lstm-bi-additive")
    ids, lengths = padded_batch()
    [first, *_] = captum_rnn.explain(model, ids, method="attention_rollout")
    expected = AttentionRollout(model).attribute(ids)[0, : lengths[0]]
    torch.testing.assert_close(torch.tensor(first.scores, dtype=torch.float32), expected)
    grad = captum_rnn.explain(model, ids, method="gradient_attention_rollout", target=1)
    assert len(grad) == 4 and grad[1].method == "gradient_attention_rollout"


# ------------------------------------------------------------------- plain PyTorch
def test_plain_transformer_encoder_gets_per_head_weights_in_eval_mode():
    model = PlainEncoder().eval()
    ids, _ = padded_batch()
    before = snapshot(model)
    output, maps, key_mask = capture_attention(model, ids)
    assert_unchanged(model, before)
    assert len(maps) == 2 and maps[0].shape == (4, 2, ids.shape[1], ids.shape[1])
    assert torch.equal(key_mask, ids != 0)
    torch.testing.assert_close(output, model(ids))
    # The first layer's weights are what its attention gives when asked for them.
    x = model.embedding(ids)
    _, direct = model.encoder.layers[0].self_attn(
        x, x, x, key_padding_mask=ids == 0, average_attn_weights=False
    )
    torch.testing.assert_close(maps[0], direct)


def test_plain_transformer_encoder_attributions():
    model = PlainEncoder().eval()
    ids, lengths = padded_batch()
    before = snapshot(model)
    for cls in CLASSES:
        scores = cls(model).attribute(ids, target=1)
        assert scores.shape == ids.shape and (scores[ids == 0] == 0).all()
        assert scores[ids != 0].abs().sum() > 0
        alone = cls(model).attribute(ids[1:2, : lengths[1]], target=1)
        torch.testing.assert_close(alone[0], scores[1, : lengths[1]], atol=1e-5, rtol=1e-4)
    assert_unchanged(model, before)


def test_gradient_rollout_on_plain_encoder_matches_manual_gradients():
    model = PlainEncoder(layers=1).eval()
    ids, lengths = padded_batch()
    x = model.embedding(ids)
    layer = model.encoder.layers[0]
    attended, weights = layer.self_attn(
        x, x, x, key_padding_mask=ids == 0, need_weights=True, average_attn_weights=False
    )
    # Recompute the layer by hand from the weights so that the gradient reaches them.
    h = layer.norm1(x + layer.dropout1(attended))
    h = layer.norm2(h + layer._ff_block(h))
    real = (ids != 0).unsqueeze(-1).float()
    logits = model.head((h * real).sum(1) / real.sum(1))
    grad = torch.autograd.grad(logits[:, 0].sum(), weights._base)[0].view_as(weights)
    mask = ids != 0
    cam = (grad * weights).clamp_min(0).mean(1) * (mask[:, :, None] & mask[:, None, :])
    expected = (cam * mask[:, :, None]).sum(1) / lengths[:, None]
    got = GradientAttentionRollout(model).attribute(ids, target=0)
    torch.testing.assert_close(got, expected.detach(), atol=1e-6, rtol=1e-4)


def test_positional_multihead_attention_call():
    model = PositionalMHA().eval()
    ids, _ = padded_batch()
    _, maps, key_mask = capture_attention(model, ids)
    assert maps[0].shape == (4, 2, ids.shape[1], ids.shape[1]) and key_mask is None
    scores = AttentionRollout(model).attribute(ids)
    torch.testing.assert_close(scores.sum(1), torch.ones(4))
    # Without a padding mask every position is real unless the caller says otherwise.
    masked = AttentionRollout(model).attribute(ids, mask=ids != 0)
    assert (masked[ids == 0] == 0).all()


def test_bad_inputs_are_named():
    model = transformer()
    ids, _ = padded_batch()
    with pytest.raises(TypeError, match="inputs"):
        AttentionRollout(model).attribute(ids.tolist())
    with pytest.raises(ValueError, match="mask"):
        AttentionRollout(model).attribute(ids, mask=torch.ones(4, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="target"):
        GradientAttentionRollout(model).attribute(ids, target=7)
    with pytest.raises(ValueError, match="layer"):
        AttentionWeights(model).attribute(ids, layer=5)
    with pytest.raises(ValueError, match="head_fusion"):
        AttentionFlow(model).attribute(ids, head_fusion="median")
    with pytest.raises(TypeError, match="nn.Module"):
        AttentionRollout(lambda x: x)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", CLASSES)
def test_on_cuda_in_eval_mode_matches_cpu(cls):
    ids, _ = padded_batch()
    for make in (transformer, lambda: token_model("lstm-bi-additive")):
        cpu_model = make()
        expected = cls(cpu_model).attribute(ids, target=1)
        gpu_model = make().cuda()
        got = cls(gpu_model).attribute(ids.cuda(), target=1)
        assert got.is_cuda and not gpu_model.training
        torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-3)
    mapped = cls(gpu_model).attribute(ids.cuda(), target=1, through_states=True)
    torch.testing.assert_close(
        mapped.cpu(),
        cls(cpu_model).attribute(ids, target=1, through_states=True),
        atol=1e-4,
        rtol=1e-3,
    )


@pytest.mark.parametrize(
    "cls", [AttentionWeights, AttentionRollout, AttentionFlow, GradientAttentionRollout]
)
def test_attribute_docstring_names_every_argument(cls):
    # The shared argument lines are filled into each docstring: help() shows them all.
    import inspect

    doc = inspect.getdoc(cls.attribute)
    assert "{" not in doc.split("Returns:")[0]
    args = doc.split("Args:")[1].split("Returns:")[0]
    for name in list(inspect.signature(cls.attribute).parameters)[1:]:
        assert f"{name}:" in args or f"{name}," in args, name
