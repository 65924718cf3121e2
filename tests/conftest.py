"""Shared fixtures: tiny models and data made in the test process."""

from __future__ import annotations

import pytest
import torch

from captum_rnn.models import RNNClassifier, RNNRegressor


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    """One intra-op thread per test: the suite runs many tiny models, and on busy shared
    cores two spinning threads make each tiny op many times slower. No result depends on
    it (every comparison happens within one test)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def padded_batch(seed: int = 0, batch: int = 4, vocab: int = 30, max_len: int = 9):
    """Random token ids (batch, max_len) with varied lengths and trailing padding 0."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, max_len + 1, (batch,), generator=g)
    lengths[0] = max_len
    ids = torch.randint(2, vocab, (batch, max_len), generator=g)
    ids[torch.arange(max_len)[None, :] >= lengths[:, None]] = 0
    return ids, lengths


# Every token architecture the package offers, kept tiny.
TOKEN_CONFIGS = {
    "lstm-last": dict(cell="lstm"),
    "gru-bi-mean": dict(cell="gru", bidirectional=True, pooling="mean"),
    "rnn-2layer-max": dict(cell="rnn", num_layers=2, pooling="max"),
    "lstm-bi-additive": dict(cell="lstm", bidirectional=True, attention="additive"),
    "gru-dot": dict(cell="gru", attention="dot"),
}


def token_model(config: str = "lstm-bi-additive", num_classes: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    return RNNClassifier(
        num_classes, vocab_size=30, embedding_dim=8, hidden_size=12, **TOKEN_CONFIGS[config]
    ).eval()


def continuous_model(seed: int = 0, cell: str = "lstm", **kwargs):
    torch.manual_seed(seed)
    return RNNRegressor(input_size=3, hidden_size=12, cell=cell, **kwargs).eval()


@pytest.fixture(params=sorted(TOKEN_CONFIGS))
def any_token_model(request):
    return token_model(request.param)


def average_precision(scores, relevant):
    """AUPRC as average precision: mean precision at the rank of each relevant item."""
    order = torch.as_tensor(scores, dtype=torch.float64).argsort(descending=True)
    hits = torch.as_tensor(relevant, dtype=torch.float64)[order]
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    return float((precision * hits).sum() / hits.sum())


@pytest.fixture(scope="session")
def cue_task():
    """A bidirectional attention LSTM trained on planted-cue data, with held-out data."""
    import pytorch_lightning as pl

    from captum_rnn.data import SequenceDataModule, planted_cues

    data = planted_cues(800, length=(6, 16), vocab_size=30, seed=0)
    held_out = planted_cues(40, length=(6, 16), vocab_size=30, seed=1)
    torch.manual_seed(0)
    model = RNNClassifier(
        2,
        vocab_size=len(data.vocab),
        embedding_dim=16,
        hidden_size=16,
        bidirectional=True,
        attention="additive",
        lr=1e-2,
    )
    dm = SequenceDataModule(data.to_dataset(), batch_size=32, seed=0)
    trainer = pl.Trainer(
        max_epochs=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, dm)
    return model.eval(), held_out
