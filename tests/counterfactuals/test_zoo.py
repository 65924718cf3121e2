"""counterfactuals() on users' own models (tests/zoo/): time-major, packed, padding fed as
content, one logit; every flip checked by calling the model the way its user does."""

from __future__ import annotations

import pytest
import torch
import zoo

import captum_rnn
from tests.rules._cue_net import one_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

TOKEN = ["imdb_lstm", "char_rnn", "nll_gru"]
CONTINUOUS = ["mfcc_lightning", "stacked_lstm"]


def _user_class(case, x: torch.Tensor) -> int:
    """The class the user's own call gives one unpadded sequence ``x`` (batch-first view)."""
    batch = x[None] if case.batch_first else x[:, None] if x.dim() == 1 else x[:, None, :]
    with torch.no_grad():
        out = case.call(batch, torch.tensor([x.shape[0]]))
    out = out.reshape(1, -1)
    return int(out[0, 0] > 0) if out.shape[-1] == 1 else int(out.argmax(-1))


def _rows(case, count):
    inputs = case.inputs[:count] if case.batch_first else case.inputs[:, :count]
    lengths = None if case.lengths is None else case.lengths[:count]
    return inputs, lengths


def _sequences(case, data):
    x, lengths, _ = data
    x = x if case.batch_first else x.transpose(0, 1)
    return [x[i, : int(lengths[i])] if lengths is not None else x[i] for i in range(len(x))]


@pytest.mark.parametrize("name", TOKEN)
def test_token_models_in_their_own_layout(name):
    case = zoo.build(name)
    inputs, lengths = _rows(case, 4)
    train = _sequences(case, case.train_data)
    before = {k: v.clone() for k, v in case.model.state_dict().items()}
    cfs = captum_rnn.counterfactuals(
        case.model, inputs, lengths=lengths, train_dataset=train, max_edits=2, **case.hints
    )
    assert len(cfs) == 4
    seen = set(torch.cat(train).tolist()) - {case.pad_id}
    ids = inputs if case.batch_first else inputs.transpose(0, 1)
    for i, cf in enumerate(cfs):
        real = ids[i][ids[i] != case.pad_id]
        assert torch.equal(cf.original, real)  # padding stripped wherever it stands
        assert case.pad_id not in cf.counterfactual.tolist()
        assert {new for _, _, new in cf.edits} <= seen  # only tokens seen in training
        assert cf.original_prediction == _user_class(case, cf.original)
        assert cf.prediction == _user_class(case, cf.counterfactual)
        assert cf.flipped == (cf.prediction != cf.original_prediction)
    assert sum(cf.flipped for cf in cfs) >= 3
    after = case.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", CONTINUOUS)
@pytest.mark.parametrize("method", ["native_guide", "comte"])
def test_series_models_in_their_own_layout(name, method):
    case = zoo.build(name)
    inputs, lengths = _rows(case, 4)
    train = _sequences(case, case.train_data)
    frames = torch.cat(train)
    low, high = frames.min(0).values, frames.max(0).values
    cfs = captum_rnn.counterfactuals(
        case.model, inputs, lengths=lengths, train_dataset=train, method=method, **case.hints
    )
    for cf in cfs:
        assert cf.original_prediction == _user_class(case, cf.original)
        assert cf.prediction == _user_class(case, cf.counterfactual)
        assert cf.flipped == (cf.prediction != cf.original_prediction)
        moved = cf.counterfactual[cf.changed]
        columns = cf.changed.nonzero()[:, 1]
        assert bool(((moved >= low[columns]) & (moved <= high[columns])).all())
    assert sum(cf.flipped for cf in cfs) >= 3
