"""StreamingExplanationCallback: trainer.predict over a stream of steps explains the current
prediction after each one, as the offline decomposition does, and resumes from a checkpoint."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from captum_rnn.attr import RecurrentDecomposition
from captum_rnn.callbacks import StreamingExplanationCallback
from captum_rnn.models import RNNClassifier


class Monitor(RNNClassifier):
    """A monitoring module: each predict batch is the newest reading of every patient."""

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return None  # the callback makes the prediction and its explanation


def _trainer(callback):
    return pl.Trainer(
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )


def _steps(x):
    # one batch per time step: a dict {"vitals": (patients, features)}
    return DataLoader([{"vitals": x[:, t]} for t in range(x.shape[1])], batch_size=None)


def test_predict_streams_the_offline_explanation():
    torch.manual_seed(0)
    model = Monitor(3, input_size=4, cell="lstm", hidden_size=6).eval()
    x = torch.randn(3, 9, 4, generator=torch.Generator().manual_seed(0))
    seen = []
    callback = StreamingExplanationCallback(
        batch_to_step=lambda batch: batch["vitals"], on_update=lambda a, e: seen.append(e.step)
    )
    _trainer(callback).predict(model, _steps(x))
    assert seen == list(range(1, 10))
    assert [h.shape for h in callback.history] == [(3, t) for t in range(1, 10)]
    offline = RecurrentDecomposition(model).attribute(x).scores(callback.prediction)
    assert torch.allclose(callback.latest, offline, atol=1e-5)

    # a checkpointed stream resumes where it stopped
    half = StreamingExplanationCallback(batch_to_step=lambda batch: batch["vitals"])
    _trainer(half).predict(model, _steps(x[:, :4]))
    resumed = StreamingExplanationCallback(batch_to_step=lambda batch: batch["vitals"])
    resumed.load_state_dict(half.state_dict())
    _trainer(resumed).predict(model, _steps(x[:, 4:]))
    assert torch.allclose(resumed.latest, callback.latest, atol=1e-12)
    # without a saved state, a new predict run starts a new stream
    _trainer(resumed).predict(model, _steps(x[:, :2]))
    assert resumed.latest.shape == (3, 2)


def test_unreadable_batches_are_named():
    model = Monitor(2, input_size=4, cell="gru", hidden_size=4).eval()
    with pytest.raises(ValueError, match="batch_to_step="):
        _trainer(StreamingExplanationCallback()).predict(
            model, DataLoader([{"other": torch.randn(2, 4)}], batch_size=None)
        )
    with pytest.raises(TypeError, match="on_update"):
        StreamingExplanationCallback(on_update=3)
