import pytest
import torch

from captum_rnn.data import (
    PadCollate,
    SaliencySeries,
    SequenceDataset,
    spike_series,
    state_switching,
)


@pytest.fixture(params=["switching", "spikes"])
def data(request):
    if request.param == "switching":
        return state_switching(60, length=(5, 12), features=4, states=3, seed=0)
    return spike_series(60, length=(5, 12), features=3, seed=0)


def test_structure(data):
    assert isinstance(data, SaliencySeries) and len(data) == 60
    n, time, features = data.series.shape
    assert data.masks.shape == (n, time, features) and data.masks.dtype == torch.bool
    assert data.lengths.shape == (n,) and 5 <= int(data.lengths.min())
    assert int(data.lengths.max()) == time <= 12
    assert len(set(data.lengths.tolist())) > 1  # variable lengths
    assert int(data.labels.sum()) == 30 and set(data.labels.tolist()) == {0, 1}
    assert data.feature_names == [f"f{j}" for j in range(features)]


def test_masks_within_lengths_and_padding_is_zero(data):
    padded = torch.arange(data.series.shape[1])[None, :] >= data.lengths[:, None]
    assert not data.masks[padded].any()
    assert torch.all(data.series[padded] == 0)
    assert data.time_masks.shape == padded.shape


def test_label_is_exactly_a_function_of_the_masked_entries(data):
    assert torch.equal(data.label_of(data.series), data.labels)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        # Anything outside the mask, padded steps included, may change: never the label.
        noise = 10 * torch.randn(data.series.shape, generator=g)
        changed = torch.where(data.masks, data.series, noise)
        assert torch.equal(data.label_of(changed), data.labels)
    # Flipping the masked entries flips every label.
    flipped = torch.where(data.masks, -data.series, data.series)
    assert torch.equal(data.label_of(flipped), 1 - data.labels)


def test_switching_mask_follows_the_hidden_state():
    data = state_switching(40, length=(8, 16), features=5, states=3, switch_prob=0.3, seed=2)
    real = torch.arange(data.series.shape[1])[None, :] < data.lengths[:, None]
    # One salient entry per real step: the driver of the state at that step.
    assert torch.equal(data.masks.sum(dim=-1), real.long())
    assert torch.all(data.states[~real] == -1)
    states = data.states[real]
    assert set(states.tolist()) == {0, 1, 2} and data.drivers == {0: 0, 1: 1, 2: 2}
    assert torch.equal(data.masks[real].float().argmax(-1), states)
    # Features 3 and 4 are distractors, never salient; the chain does switch.
    assert not data.masks[..., 3:].any()
    assert bool((data.states[:, 1:] != data.states[:, :-1])[real[:, 1:]].any())
    # The driver is the loud feature: noise elsewhere has std 0.3.
    assert data.series[data.masks].std() > 2 * data.series[real[..., None] & ~data.masks].std()


def test_switching_margin_keeps_labels_away_from_chance():
    data = state_switching(50, length=10, features=2, margin=1.0, seed=0)
    total = (data.series * data.masks).sum(dim=(1, 2))
    assert torch.all(total.abs() >= 10**0.5 - 1e-5)


def test_spike_is_the_only_large_entry():
    data = spike_series(30, length=(6, 9), features=2, height=4.0, noise=0.1, seed=3)
    assert torch.all(data.masks.sum(dim=(1, 2)) == 1)
    spikes = data.series[data.masks]
    assert torch.equal(spikes, torch.where(data.labels.bool(), 4.0, -4.0))
    assert data.states is None and data.drivers == {}


@pytest.mark.parametrize("make", [state_switching, spike_series])
def test_deterministic_for_a_seed(make):
    a, b, c = make(20, seed=5), make(20, seed=5), make(20, seed=6)
    for name in ("series", "lengths", "labels", "masks"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.labels, c.labels) or not torch.equal(a.lengths, c.lengths)


def test_to_dataset_round_trips_through_pad_collate(data):
    ds = data.to_dataset()
    assert isinstance(ds, SequenceDataset) and ds.is_continuous and len(ds) == len(data)
    x, lengths, labels = PadCollate()([ds[i] for i in range(len(ds))])
    assert torch.equal(lengths, data.lengths) and torch.equal(labels, data.labels)
    assert torch.equal(x, data.series[:, : x.shape[1]])


def test_label_of_checks_shape():
    data = spike_series(4, length=5, seed=0)
    with pytest.raises(ValueError, match="series must have shape"):
        data.label_of(torch.zeros(4, 6, 3))


@pytest.mark.parametrize(
    "make, kwargs, error",
    [
        (state_switching, {"n": -1}, ValueError),
        (state_switching, {"n": 2.5}, TypeError),
        (state_switching, {"n": 4, "features": 0}, ValueError),
        (state_switching, {"n": 4, "features": 2, "states": 3}, ValueError),
        (state_switching, {"n": 4, "length": (6, 3)}, ValueError),
        (state_switching, {"n": 4, "length": 0}, ValueError),
        (state_switching, {"n": 4, "length": "long"}, TypeError),
        (state_switching, {"n": 4, "switch_prob": 1.5}, ValueError),
        (state_switching, {"n": 4, "noise": -1.0}, ValueError),
        (state_switching, {"n": 4, "margin": 3.0}, ValueError),
        (state_switching, {"n": 4, "seed": "0"}, TypeError),
        (spike_series, {"n": 4, "height": 0.0}, ValueError),
        (spike_series, {"n": 4, "features": True}, TypeError),
        (spike_series, {"n": 4, "length": (2, 1)}, ValueError),
    ],
)
def test_bad_arguments(make, kwargs, error):
    with pytest.raises(error, match=next(iter(k for k in kwargs if k != "n"), "n")):
        make(**kwargs)
