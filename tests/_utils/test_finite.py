"""NaN padding (tslearn's convention) is accepted where lengths say it is padding, and
gives the same explanations and metrics as zero padding; NaN at a real step is refused."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import captum_rnn
from captum_rnn._utils.finite import fill_non_finite_padding, non_finite_message
from captum_rnn.attr import time_forward_attributions
from captum_rnn.metrics import comprehensiveness
from captum_rnn.models import RNNClassifier


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RNNClassifier(2, input_size=3, hidden_size=8, cell="gru").eval()


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    seed=st.integers(0, 100),
)
def test_non_finite_padding_becomes_zero_and_real_steps_stay(lengths, bad, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), 6, 3, generator=generator)
    n = torch.tensor(lengths)
    padded = torch.arange(6)[None, :] >= n[:, None]
    dirty = x.masked_fill(padded[..., None] & (torch.rand(x.shape, generator=generator) < 0.5), bad)
    out = fill_non_finite_padding(dirty, n)
    assert torch.isfinite(out).all()
    assert torch.equal(out[~padded], x[~padded])  # real steps untouched
    assert torch.equal(out[padded] * 0, torch.zeros_like(out[padded]))
    if bool(padded.any()) and not bool(torch.isfinite(dirty).all()):
        # no lengths: every step is real, so the same values are an error
        with pytest.raises(ValueError, match="NaN or infinite"):
            fill_non_finite_padding(dirty, None)


def test_the_error_names_the_step_and_the_lengths_to_pass():
    finite = torch.tensor([[True, True, True], [True, False, False]])
    message = non_finite_message(finite)
    assert "sequence 1, step 1" in message and "lengths=[3, 1]" in message
    holey = torch.tensor([[True, False, True]])  # a hole inside: not padding
    assert "lengths=" not in non_finite_message(holey)


def test_explain_metrics_and_time_forward_read_nan_padding_as_padding(model):
    x = torch.randn(3, 6, 3, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([6, 4, 2])
    padded = torch.arange(6)[None, :] >= lengths[:, None]
    zeros, nans = (
        x.masked_fill(padded[..., None], 0.0),
        x.masked_fill(padded[..., None], float("nan")),
    )
    a = captum_rnn.explain(model, zeros, lengths=lengths, n_steps=8)
    b = captum_rnn.explain(model, nans, lengths=lengths, n_steps=8)
    for e, f in zip(a, b, strict=True):
        assert e.scores == f.scores
    assert torch.equal(
        comprehensiveness(model, zeros, a, lengths=lengths),
        comprehensiveness(model, nans, b, lengths=lengths),
    )
    assert torch.equal(
        time_forward_attributions(model, zeros, lengths, "saliency"),
        time_forward_attributions(model, nans, lengths, "saliency"),
    )
    with pytest.raises(ValueError, match=r"pass lengths=\[6, 4, 2\]"):
        captum_rnn.explain(model, nans, n_steps=8)
    with pytest.raises(ValueError, match="sequence 1, step 4"):
        captum_rnn.explain(model, nans, lengths=torch.tensor([6, 5, 2]), n_steps=8)
    assert torch.isnan(nans[1, 4:]).all()  # the caller's tensor is not filled in place
