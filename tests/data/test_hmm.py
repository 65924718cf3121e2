"""The HMM "state" and "switch feature" data: shapes, padding, ground truth, statistics."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from captum_rnn.data import HMMSeries, hmm_state, hmm_switch_feature


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 6),
    low=st.integers(1, 12),
    extra=st.integers(0, 8),
    seed=st.integers(0, 100),
    switch=st.booleans(),
)
def test_shapes_padding_and_one_salient_cell_per_real_step(n, low, extra, seed, switch):
    make = hmm_switch_feature if switch else hmm_state
    data = make(n, length=(low, low + extra), seed=seed)
    assert isinstance(data, HMMSeries) and len(data) == n
    real = data.real
    assert data.series.shape[:2] == data.labels.shape == data.states.shape
    assert bool((data.masks.sum(-1) == real).all())  # one cell per real step, none at padding
    assert bool((data.series[~real] == 0).all())
    assert bool((data.labels[~real] == -1).all()) and bool((data.labels[real] >= 0).all())
    # the salient cell is the state's important feature
    important = torch.tensor([1, 2]) if not switch else torch.arange(3)
    cells = data.masks.float().argmax(-1)
    assert bool((cells[real] == important[data.states[real]]).all())


def test_seeded_and_distinct():
    a, b, c = hmm_state(5, 30, seed=3), hmm_state(5, 30, seed=3), hmm_state(5, 30, seed=4)
    assert torch.equal(a.series, b.series) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.series, c.series)


def test_state_statistics_follow_tint_parameters():
    data = hmm_state(300, 200, seed=0)
    x, s = data.series.numpy(), data.states.numpy()
    for k, mean in enumerate(((0.1, 1.6, 0.5), (-0.1, -0.4, -1.5))):
        np.testing.assert_allclose(x[s == k].mean(0), mean, atol=0.03)
        np.testing.assert_allclose(x[s == k].var(0), 0.801, atol=0.03)
    # label probability is sigmoid(2 x) of the important feature
    important = np.where(s == 0, x[..., 1], x[..., 2])
    p = 1 / (1 + np.exp(-2 * important))
    np.testing.assert_allclose(data.label_probs.numpy()[s >= 0], p[s >= 0], rtol=1e-5)
    # drawn labels agree with their probabilities
    y = data.labels.numpy()
    assert abs(y[s >= 0].mean() - p[s >= 0].mean()) < 0.01


def test_switch_feature_is_sticky_and_shifts_the_important_feature():
    data = hmm_switch_feature(100, 100, stay=0.9, shift=2.0, seed=1)
    s = data.states
    changes = (s[:, 1:] != s[:, :-1]).float().mean()
    assert 0.07 < float(changes) < 0.13
    x = data.series.numpy()
    for k in range(3):
        assert abs(x[s.numpy() == k][:, k].mean() - 2.0) < 0.1


def test_prefixes_hold_every_prefix_with_its_last_label():
    data = hmm_state(3, length=(4, 6), seed=2)
    x, lengths, y = data.prefixes(min_length=2)
    assert x.shape[0] == int((data.lengths - 1).sum())
    row = 0
    for i, n in enumerate(data.lengths.tolist()):
        for t in range(2, n + 1):
            assert int(lengths[row]) == t and int(y[row]) == int(data.labels[i, t - 1])
            assert torch.equal(x[row, :t], data.series[i, :t])
            assert bool((x[row, t:] == 0).all())
            row += 1


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": 0}, "n must be"), ({"length": (5, 2)}, "length"), ({"p0": 2.0}, "p0")],
)
def test_bad_arguments_name_the_keyword(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        hmm_state(**{"n": 2, **kwargs})
