import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from captum_rnn.models import RNNClassifier, RNNRegressor

from conftest import continuous_model, padded_batch, token_model


def test_token_output_shape_and_attention_maps():
    model = token_model("lstm-bi-additive", num_classes=3)
    ids, _ = padded_batch()
    logits = model(ids)
    assert logits.shape == (4, 3)
    [weights] = model.attention_maps
    assert weights.shape == (4, 1, 1, ids.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 1, 1))
    # Padding gets exactly zero attention.
    pad = ids == 0
    assert (weights[:, 0, 0][pad] == 0).all()


def test_no_attention_means_empty_maps():
    model = token_model("lstm-last")
    model(padded_batch()[0])
    assert model.attention_maps == []


def test_padding_invariance_of_logits(any_token_model):
    ids, lengths = padded_batch()
    with torch.no_grad():
        short = any_token_model(ids)
        padded = torch.cat([ids, torch.zeros(4, 3 * ids.shape[1], dtype=torch.long)], dim=1)
        long = any_token_model(padded)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=0)


def test_each_row_alone_matches_batch(any_token_model):
    ids, lengths = padded_batch()
    with torch.no_grad():
        batch = any_token_model(ids)
        alone = torch.cat([any_token_model(ids[i : i + 1, : lengths[i]]) for i in range(4)])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=0)


def test_encode_returns_states_mask_pooled():
    model = token_model("gru-bi-mean")
    ids, lengths = padded_batch()
    states, mask, pooled = model.encode(ids)
    assert states.shape == (4, ids.shape[1], 24) and pooled.shape == (4, 24)
    assert mask.sum(1).tolist() == lengths.tolist()
    assert (states[~mask] == 0).all()


def test_lengths_inferred_from_padding_and_explicit_lengths_agree():
    model = token_model("lstm-last")
    ids, lengths = padded_batch()
    assert model.lengths_of(ids).tolist() == lengths.tolist()
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(ids, lengths))


def test_embedded_input_equals_token_input():
    model = token_model("lstm-bi-additive")
    ids, lengths = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(model.embedding(ids), lengths))


def test_continuous_input_with_lengths_is_padding_invariant():
    model = continuous_model(cell="gru", bidirectional=True, attention="dot")
    x = torch.randn(3, 6, 3)
    lengths = torch.tensor([6, 4, 2])
    x_padded = torch.cat([x, torch.randn(3, 10, 3)], dim=1)  # garbage beyond the lengths
    with torch.no_grad():
        torch.testing.assert_close(model(x, lengths), model(x_padded, lengths), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_classes=1, vocab_size=5), "num_classes"),
        (dict(num_classes=2), "exactly one of vocab_size"),
        (dict(num_classes=2, vocab_size=5, input_size=3), "exactly one of vocab_size"),
        (dict(num_classes=2, vocab_size=5, cell="transformer"), "cell"),
        (dict(num_classes=2, vocab_size=5, pooling="sum"), "pooling"),
        (dict(num_classes=2, vocab_size=5, attention="bahdanau"), "attention"),
        (dict(num_classes=2, vocab_size=5, dropout=1.5), "dropout"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RNNClassifier(**kwargs)


def test_bad_forward_inputs_name_the_argument():
    model = token_model("lstm-last")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[1, 2, 99]]))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="lengths must be >= 1"):
        model(torch.tensor([[1, 2, 3]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="lengths must be <="):
        model(torch.tensor([[1, 2, 3]]), torch.tensor([4]))
    with pytest.raises(ValueError, match="lengths must have shape"):
        model(torch.tensor([[1, 2, 3]]), torch.tensor([3, 3]))
    with pytest.raises(TypeError, match="lengths must be an integer"):
        model(torch.tensor([[1, 2, 3]]), torch.tensor([3.0]))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(1, 3, 5))
    regressor = continuous_model()
    with pytest.raises(TypeError, match="float tensor"):
        regressor(torch.ones(1, 3, 3, dtype=torch.long))


def test_regressor_trains_with_mse_in_lightning(tmp_path):
    # The classic setup: a simple RNN of 64 units then one dense output, trained with MSE.
    torch.manual_seed(0)
    x = torch.randn(256, 10, 1)
    y = x.sum(dim=(1, 2)) / 3
    lengths = torch.full((256,), 10)
    loader = DataLoader(TensorDataset(x, lengths, y), batch_size=32, shuffle=True)
    model = RNNRegressor(input_size=1, cell="rnn", hidden_size=64, lr=1e-2)
    with torch.no_grad():
        before = torch.nn.functional.mse_loss(model(x).squeeze(-1), y).item()
    trainer = pl.Trainer(
        max_epochs=8,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, loader, loader)
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(model(x).squeeze(-1), y).item()
    assert after < 0.2 * before
    assert "val_loss" in trainer.callback_metrics and "val_mae" in trainer.callback_metrics
    triples = TensorDataset(x[:8], lengths[:8] - 2, y[:8])
    preds = trainer.predict(model, DataLoader(triples, batch_size=4))
    assert preds[0].shape == (4, 1)


def test_classifier_logs_accuracy_and_predicts_probabilities(tmp_path):
    torch.manual_seed(0)
    ids = torch.randint(2, 30, (128, 6))
    y = (ids[:, 0] > 15).long()
    loader = DataLoader(TensorDataset(ids, torch.full((128,), 6), y), batch_size=32)
    model = token_model("lstm-last")
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, loader, loader)
    assert {"train_loss", "val_loss", "val_acc"} <= set(trainer.callback_metrics)
    trainer.test(model, loader, verbose=False)
    assert "test_acc" in trainer.callback_metrics
    probs = trainer.predict(model, DataLoader(TensorDataset(ids[:4]), batch_size=4))[0]
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))


def test_checkpoint_round_trip(tmp_path):
    model = RNNClassifier(3, vocab_size=20, hidden_size=6, embedding_dim=4, attention="dot")
    trainer = pl.Trainer(max_epochs=0, logger=False, default_root_dir=tmp_path)
    trainer.strategy.connect(model)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = RNNClassifier.load_from_checkpoint(path, weights_only=False).eval()
    ids = torch.tensor([[2, 3, 4]])
    torch.testing.assert_close(loaded(ids), model.eval()(ids))
    assert loaded.hparams.attention == "dot"
