"""TransformerClassifier: recorded per-head attention, padding, Captum and Lightning."""

import pytest
import pytorch_lightning as pl
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients

from captum_rnn.attr import AttentionFlow, AttentionRollout, GradientAttentionRollout
from captum_rnn.data import SequenceDataModule, planted_cues
from captum_rnn.models import AttentionTap, TransformerClassifier

from conftest import average_precision, padded_batch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model(layers=2, heads=2, seed=0, **kwargs):
    torch.manual_seed(seed)
    return TransformerClassifier(
        3, vocab_size=30, num_layers=layers, num_heads=heads, embedding_dim=8, **kwargs
    ).eval()


def test_output_and_attention_maps():
    m = model(layers=3, heads=4)
    ids, lengths = padded_batch()
    logits = m(ids)
    assert logits.shape == (4, 3)
    assert len(m.attention_maps) == 3
    mask = ids != 0
    for maps in m.attention_maps:
        assert maps.shape == (4, 4, ids.shape[1], ids.shape[1]) and not maps.requires_grad
        # Real rows sum to 1; padded keys and padded rows are exactly 0.
        rows = maps.sum(-1)
        torch.testing.assert_close(
            rows[mask[:, None, :].expand_as(rows)], torch.ones(int(mask.sum()) * 4)
        )
        assert (maps.transpose(1, 3)[~mask] == 0).all()
        assert (maps.transpose(1, 2)[~mask] == 0).all()
    assert len([mod for mod in m.modules() if isinstance(mod, AttentionTap)]) == 3


def test_maps_are_input_side_first():
    m = model(layers=2)
    ids, _ = padded_batch()
    seen = []
    handles = [
        layer.attention.attention_probs.register_forward_hook(lambda mod, i, o: seen.append(o))
        for layer in m.layers
    ]
    try:
        m(ids)
    finally:
        for h in handles:
            h.remove()
    for recorded, hooked in zip(m.attention_maps, seen, strict=True):
        assert torch.equal(recorded, hooked.detach())


def test_padding_invariance_and_batch_consistency():
    for pooling in ("mean", "first"):
        m = model(pooling=pooling)
        ids, lengths = padded_batch()
        with torch.no_grad():
            short = m(ids)
            long = m(torch.cat([ids, torch.zeros(4, 20, dtype=torch.long)], dim=1))
            alone = torch.cat([m(ids[i : i + 1, : lengths[i]]) for i in range(4)])
        torch.testing.assert_close(long, short, atol=1e-5, rtol=0)
        torch.testing.assert_close(alone, short, atol=1e-5, rtol=0)


def test_embedded_input_with_lengths_equals_token_input():
    m = model()
    ids, lengths = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(m(m.embedding(ids), lengths), m(ids))
    states, mask, pooled = m.encode(ids)
    assert mask.sum(1).tolist() == lengths.tolist()
    assert (states[~mask] == 0).all() and pooled.shape == (4, 8)


def test_captum_integrated_gradients_on_embeddings():
    m = model()
    ids, lengths = padded_batch()
    lig = LayerIntegratedGradients(m, m.embedding)
    attr = lig.attribute(ids, baselines=torch.zeros_like(ids), target=1, n_steps=20)
    assert attr.shape == (4, ids.shape[1], 8)
    assert (attr[ids == 0] == 0).all()
    embedded = m.embedding(ids).detach()
    ig = IntegratedGradients(m)
    attr, delta = ig.attribute(
        embedded,
        target=1,
        additional_forward_args=(lengths,),
        n_steps=64,
        return_convergence_delta=True,
    )
    assert (attr[ids == 0] == 0).all() and delta.abs().max() < 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        TransformerClassifier(1, vocab_size=10)
    with pytest.raises(ValueError, match="num_heads"):
        TransformerClassifier(2, vocab_size=10, embedding_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="pooling"):
        TransformerClassifier(2, vocab_size=10, pooling="max")
    with pytest.raises(ValueError, match="padding_idx"):
        TransformerClassifier(2, vocab_size=10, padding_idx=10)
    m = model()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m(torch.tensor([[3, 40]]))
    with pytest.raises(ValueError, match="lengths"):
        m(torch.tensor([[3, 4]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="shape"):
        m(torch.randn(1, 3, 5))


def test_trains_with_lightning_and_attention_explanations_find_the_cue():
    data = planted_cues(200, length=(5, 10), vocab_size=20, seed=0)
    held_out = planted_cues(30, length=(5, 10), vocab_size=20, seed=1)
    torch.manual_seed(0)
    m = TransformerClassifier(
        2, vocab_size=len(data.vocab), num_layers=2, num_heads=2, embedding_dim=16, lr=5e-3
    )
    trainer = pl.Trainer(
        max_epochs=5,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(m, SequenceDataModule(data.to_dataset(), batch_size=32, seed=0))
    m.eval()
    ids = torch.nn.utils.rnn.pad_sequence(held_out.sequences, batch_first=True)
    with torch.no_grad():
        accuracy = (m(ids).argmax(-1) == torch.tensor(held_out.labels)).float().mean()
    assert accuracy >= 0.9
    # The label is carried by one cue token; a random ranking scores about 0.25 here
    # (seen: 1.0, 0.97 and 0.93).
    for cls in (GradientAttentionRollout, AttentionRollout, AttentionFlow):
        scores = cls(m).attribute(ids)
        ap = sum(
            average_precision(scores[i, : len(s)], held_out.masks[i])
            for i, s in enumerate(held_out.sequences)
        ) / len(held_out)
        assert ap > 0.8, (cls.__name__, ap)
