"""Property-based: whatever the input, explain() answers with a clear error or a result that
keeps the invariants (one finite score per real token, padding never scored)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import captum_rnn
from captum_rnn.models import RNNClassifier

PAD = 1
VOCAB = 12

_MODEL = None


def model():
    global _MODEL
    if _MODEL is None:
        torch.manual_seed(0)
        _MODEL = RNNClassifier(
            3, vocab_size=VOCAB, hidden_size=4, embedding_dim=3, cell="gru", padding_idx=PAD
        ).eval()
    return _MODEL


# Words a clear message names: the argument or what was expected.
NAMED = (
    "option",
    "inputs",
    "lengths",
    "baselines",
    "target",
    "vocab",
    "dtype",
    "token id",
    "empty",
)


def _check_clear(error: Exception) -> None:
    assert isinstance(error, (ValueError, TypeError)), repr(error)
    assert any(word in str(error) for word in NAMED), str(error)


rows = st.lists(st.integers(-3, VOCAB + 3), min_size=0, max_size=7)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(rows, min_size=0, max_size=4),
    method=st.sampled_from(["integrated_gradients", "saliency", "occlusion"]),
    dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32, torch.bool]),
    pad_left=st.booleans(),
)
def test_token_inputs_give_a_clear_error_or_clean_scores(batch, method, dtype, pad_left):
    width = max((len(r) for r in batch), default=0)
    padded = [
        ([PAD] * (width - len(r)) + r) if pad_left else (r + [PAD] * (width - len(r)))
        for r in batch
    ]
    try:
        ids = torch.tensor(padded, dtype=torch.int64).to(dtype) if padded else torch.zeros(0, 0)
        explanations = captum_rnn.explain(model(), ids, method=method, n_steps=4, max_steps=4)
    except (ValueError, TypeError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "value cannot be converted" in str(error):
            return  # torch refused to build the tensor itself (negative uint8): not ours
        _check_clear(error)
        return
    assert len(explanations) == len(batch)
    for row, e in zip(padded, explanations, strict=True):
        real = [t for t in row if t != PAD]
        assert e.tokens == [str(t) for t in real]
        assert len(e.scores) == len(real)
        assert all(math.isfinite(s) for s in e.scores)
        assert e.predicted in range(3) and 0.0 <= e.probability <= 1.0


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=12
    ),
    shape=st.sampled_from([(1, 4, 3), (2, 2, 3), (4, 3), (1, 4, 2), (3,)]),
)
def test_continuous_inputs_refuse_nan_and_bad_shapes(values, shape):
    torch.manual_seed(0)
    net = RNNClassifier(2, input_size=3, hidden_size=4).eval()
    n = math.prod(shape)
    x = torch.tensor((values * n)[:n], dtype=torch.float32).reshape(shape)
    try:
        explanations = captum_rnn.explain(net, x, n_steps=4, max_steps=4)
    except (ValueError, TypeError) as error:
        _check_clear(error)
        if not bool(torch.isfinite(x).all()):
            assert "NaN" in str(error) or "inputs must" in str(error)
        return
    assert bool(torch.isfinite(x).all()) and x.shape[-1] == 3
    for e in explanations:
        assert all(math.isfinite(v) for row in e.feature_scores for v in row)


@settings(max_examples=30, deadline=None)
@given(
    target=st.one_of(
        st.none(), st.integers(-2, 5), st.floats(0, 2), st.lists(st.integers(-1, 4), max_size=3)
    )
)
def test_targets_are_checked(target):
    ids = torch.tensor([[2, 3, 4], [5, 6, PAD]])
    try:
        explanations = captum_rnn.explain(model(), ids, target=target, n_steps=4, max_steps=4)
    except (ValueError, TypeError) as error:
        _check_clear(error)
        return
    assert len(explanations) == 2
    assert all(e.target in range(3) for e in explanations)


def test_the_property_suite_sees_the_error_it_claims_to_check():
    with pytest.raises(ValueError, match="inputs"):
        captum_rnn.explain(model(), torch.tensor([[PAD, PAD]]))
