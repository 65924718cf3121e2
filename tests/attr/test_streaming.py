"""Streaming explanation: after the last step the attribution is the offline decomposition
of the whole sequence; the stream can be saved, resumed and reset."""

from __future__ import annotations

import pytest
import torch
import zoo
from hypothesis import given, settings
from hypothesis import strategies as st

from captum_rnn.attr import RecurrentDecomposition, StreamingExplainer
from captum_rnn.models import RNNClassifier


def _model(cell, layers=1, bidirectional=False, **kwargs):
    torch.manual_seed(1)
    kwargs.setdefault("input_size", 3)
    return RNNClassifier(
        3, cell=cell, hidden_size=5, num_layers=layers, bidirectional=bidirectional, **kwargs
    ).eval()


def _stream(explainer, x):
    return [explainer.update(x[:, t]) for t in range(x.shape[1])]


@settings(max_examples=12, deadline=None)
@given(
    cell=st.sampled_from(["lstm", "gru"]),
    layers=st.integers(1, 2),
    steps=st.integers(1, 40),  # past the buffer's first growth (16 steps)
    batch=st.integers(1, 3),
    target=st.sampled_from([None, 0, 2]),
)
def test_last_step_equals_the_offline_explanation(cell, layers, steps, batch, target):
    model = _model(cell, layers)
    x = torch.randn(batch, steps, 3, generator=torch.Generator().manual_seed(steps))
    stream = StreamingExplainer(model, target=target)
    history = _stream(stream, x)
    assert [h.shape for h in history] == [(batch, t + 1) for t in range(steps)]
    offline = RecurrentDecomposition(model).attribute(x)
    explained = stream.prediction
    assert torch.allclose(history[-1], offline.scores(explained), atol=1e-5, rtol=0)
    with torch.no_grad():
        logits = model(x).double()
    assert torch.allclose(stream.logits, logits, atol=1e-5)
    if target is None:
        assert torch.equal(explained, logits.argmax(-1))
    # every intermediate attribution is the offline one of the prefix
    middle = (steps - 1) // 2
    prefix = RecurrentDecomposition(model).attribute(x[:, : middle + 1])
    with torch.no_grad():
        now = model(x[:, : middle + 1]).argmax(-1) if target is None else target
    assert torch.allclose(history[middle], prefix.scores(now), atol=1e-5, rtol=0)


def test_token_models_and_float32():
    model = _model("gru", input_size=None, vocab_size=20, embedding_dim=4)
    ids = torch.randint(1, 20, (2, 12), generator=torch.Generator().manual_seed(0))
    offline = RecurrentDecomposition(model).attribute(ids)
    for dtype in (torch.float64, torch.float32):
        stream = StreamingExplainer(model, dtype=dtype)
        last = _stream(stream, ids)[-1]
        assert last.dtype == dtype
        assert torch.allclose(last.double(), offline.scores(stream.prediction), atol=1e-5)


def test_state_dict_resumes_and_reset_starts_again():
    model = _model("lstm", layers=2)
    x = torch.randn(2, 20, 3, generator=torch.Generator().manual_seed(3))
    whole = StreamingExplainer(model)
    expected = _stream(whole, x)[-1]
    first = StreamingExplainer(model)
    _stream(first, x[:, :7])
    saved = first.state_dict()
    _stream(first, x[:, 7:9])  # moving on does not change what was saved
    resumed = StreamingExplainer(model)
    resumed.load_state_dict(saved)
    assert torch.equal(_stream(resumed, x[:, 7:])[-1], expected)
    first.reset()
    assert torch.equal(_stream(first, x)[-1], expected)
    with pytest.raises(KeyError, match="state_dict"):
        resumed.load_state_dict({"step": 3})


def test_users_models_from_the_zoo():
    for name in ("mfcc_lightning", "stacked_lstm", "nll_gru"):
        case = zoo.build(name)
        inputs = case.inputs[:4, :8]
        stream = StreamingExplainer(case.model, **case.hints)
        last = _stream(stream, inputs)[-1]
        offline = RecurrentDecomposition(case.model, **case.hints).attribute(inputs)
        assert torch.allclose(last, offline.scores(stream.prediction), atol=1e-5), name


def test_what_cannot_stream_is_refused():
    with pytest.raises(ValueError, match="bidirectional"):
        StreamingExplainer(_model("gru", bidirectional=True))
    stream = StreamingExplainer(_model("gru"))
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        stream.update(torch.randn(2, 4))
    with pytest.raises(RuntimeError, match="update"):
        _ = stream.prediction
    with pytest.raises(ValueError, match="dtype"):
        StreamingExplainer(_model("gru"), dtype=torch.float16)
    mean = StreamingExplainer(_model("lstm", pooling="mean"))
    with pytest.raises(ValueError, match="mean"):
        mean.update(torch.randn(2, 3))
    imdb = zoo.build("imdb_lstm")  # packed, but bidirectional
    with pytest.raises(ValueError, match="bidirectional"):
        StreamingExplainer(imdb.model, **imdb.hints)
