"""The zoo of tutorial-style user models (tests/zoo): each trains above chance, sits in eval
mode, and its held-out batch is in the layout it declares."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest
import torch
import zoo
from torch import nn

ZOO_DIR = Path(zoo.__file__).parent
N_OUTPUTS = {
    "imdb_lstm": 1,
    "char_rnn": 3,
    "mfcc_lightning": 2,
    "nll_gru": 3,
    "stacked_lstm": 2,
    "hidden_lstm": 2,
    "transformer_tutorial": 2,
    "hf_style_gru": 3,
}
# held-out accuracy floors; chance is 0.5 for two classes and 1/3 for three
MIN_ACCURACY = {
    "imdb_lstm": 0.8,
    "char_rnn": 0.7,
    "mfcc_lightning": 0.8,
    "nll_gru": 0.7,
    "stacked_lstm": 0.8,
    "hidden_lstm": 0.8,
    "transformer_tutorial": 0.8,
    "hf_style_gru": 0.7,
}


def predictions(out: torch.Tensor) -> torch.Tensor:
    return (out[:, 0] > 0).long() if out.size(1) == 1 else out.argmax(dim=1)


def test_names():
    assert zoo.NAMES == (
        "imdb_lstm",
        "char_rnn",
        "mfcc_lightning",
        "nll_gru",
        "stacked_lstm",
        "hidden_lstm",
        "transformer_tutorial",
        "hf_style_gru",
    )
    assert zoo.SEQ2SEQ == "seq2seq_gru" and zoo.SEQ2SEQ not in zoo.NAMES
    assert set(zoo.ALL) == {*zoo.NAMES, zoo.SEQ2SEQ}
    with pytest.raises(KeyError):
        zoo.build("no_such_model")


def test_build_is_cached():
    assert zoo.build("stacked_lstm") is zoo.build("stacked_lstm", 0)
    assert zoo.build("stacked_lstm", seed=0) is zoo.build("stacked_lstm")


def test_zoo_does_not_import_captum_rnn():
    """The zoo stands for user code: it must not lean on the library it is used to test."""
    for path in sorted(ZOO_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "captum_rnn" for n in names), (path.name, names)


@pytest.mark.parametrize("name", zoo.NAMES)
def test_classifier_trains_above_chance(name):
    case = zoo.build(name)
    with torch.no_grad():
        out = case.call(case.inputs, case.lengths)
    batch = case.labels.shape[0]
    assert out.shape == (batch, N_OUTPUTS[name])
    accuracy = (predictions(out) == case.labels).float().mean().item()
    assert accuracy >= MIN_ACCURACY[name], accuracy
    train_x, train_lengths, train_y = case.train_data
    with torch.no_grad():
        train_acc = (predictions(case.call(train_x, train_lengths)) == train_y).float().mean()
    assert train_acc >= MIN_ACCURACY[name]


@pytest.mark.parametrize("name", zoo.ALL)
def test_case_is_in_eval_mode_and_consistent(name):
    case = zoo.build(name)
    assert case.name == name
    assert not case.model.training
    assert not any(m.training for m in case.model.modules())
    assert isinstance(case.hints, dict)
    if case.embedding is None:
        assert not case.token
    else:
        assert isinstance(case.embedding, nn.Embedding)
        assert any(m is case.embedding for m in case.model.modules())
    if "embedding" in case.hints:
        assert case.model.get_submodule(case.hints["embedding"]) is case.embedding
    if "batch_first" in case.hints:
        assert case.hints["batch_first"] == case.batch_first
    if "pad_id" in case.hints:
        assert case.hints["pad_id"] == case.pad_id
    assert (case.pad_id is not None) == case.token


@pytest.mark.parametrize("name", zoo.ALL)
def test_layout(name):
    case = zoo.build(name)
    x = case.inputs
    batch = case.labels.shape[-1]  # (B,) labels, or (trg_len, B) targets for seq2seq
    assert x.dtype == (torch.long if case.token else torch.float32)
    assert x.dim() == (2 if case.token else 3)
    time_dim, batch_dim = (1, 0) if case.batch_first else (0, 1)
    assert x.shape[batch_dim] == batch
    assert x.shape[time_dim] != batch  # the layout is unambiguous
    n_steps = x.shape[time_dim]
    if case.lengths is None:
        return
    assert case.lengths.shape == (batch,)
    assert int(case.lengths.max()) == n_steps
    assert int(case.lengths.min()) < n_steps  # variable lengths
    steps = torch.arange(n_steps)
    padded = steps[None, :] >= case.lengths[:, None]  # (B, T)
    ids = x if case.batch_first else x.T
    assert (ids[padded] == case.pad_id).all()
    assert (ids[~padded] != case.pad_id).all()
    # the training data follows the same conventions
    train_x, train_lengths, train_y = case.train_data
    train_ids = train_x if case.batch_first else train_x.T
    assert train_ids.shape[0] == train_lengths.shape[0] == train_y.shape[-1]


def test_time_major_cases():
    for name in ("imdb_lstm", "char_rnn", zoo.SEQ2SEQ):
        case = zoo.build(name)
        assert not case.batch_first
        assert case.inputs.shape == (int(case.lengths.max()), case.labels.shape[-1])
    for name in ("mfcc_lightning", "nll_gru", "stacked_lstm"):
        assert zoo.build(name).batch_first


def test_imdb_lstm_is_the_tutorial_shape():
    case = zoo.build("imdb_lstm")
    assert case.pad_id == 1 and case.embedding.padding_idx == 1
    lstm = case.model.rnn
    assert lstm.bidirectional and lstm.num_layers == 2 and not lstm.batch_first
    assert case.hints == {"output": "logits"}
    # packed with enforce_sorted=False: the order of the batch does not matter
    perm = torch.randperm(case.inputs.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = case.call(case.inputs, case.lengths)
        out_perm = case.call(case.inputs[:, perm], case.lengths[perm])
    torch.testing.assert_close(out_perm, out[perm])


def test_nll_gru_returns_log_probabilities():
    case = zoo.build("nll_gru")
    with torch.no_grad():
        out = case.call(case.inputs, case.lengths)
    assert (out <= 0).all()
    torch.testing.assert_close(out.exp().sum(1), torch.ones(out.shape[0]))


def test_seq2seq_copies_digits():
    from zoo.seq2seq_gru import token_accuracy

    case = zoo.build(zoo.SEQ2SEQ)
    assert case.hints == {"embedding": "encoder.embedding", "batch_first": False}
    with torch.no_grad():
        out = case.call(case.inputs, case.lengths)
    trg_len, batch = case.labels.shape
    assert out.shape == (trg_len, batch, case.model.decoder.output_dim)
    assert token_accuracy(out, case.labels) >= 0.7
    # with teacher forcing off the output does not depend on chance
    with torch.no_grad():
        torch.testing.assert_close(case.call(case.inputs, case.lengths), out)


def test_mfcc_lightning_fits_in_a_trainer(tmp_path):
    import pytorch_lightning as pl
    from zoo.mfcc_lightning import make_dataloader

    model = copy.deepcopy(zoo.build("mfcc_lightning").model)
    loader = make_dataloader(64, batch_size=32, seed=1)
    batch = next(iter(loader))
    assert batch["features"].shape == (32, 12, 13) and batch["label"].shape == (32,)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    model.train()
    trainer.fit(model, loader, make_dataloader(32, batch_size=32, seed=2))
    assert trainer.global_step == 2
    assert "val_acc" in trainer.callback_metrics


@pytest.mark.parametrize("name", ["stacked_lstm", "char_rnn"])
def test_make_is_deterministic(name):
    import importlib

    module = importlib.import_module(f"zoo.{name}")
    a, b = module.make(3), module.make(3)
    torch.testing.assert_close(a.inputs, b.inputs)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
