"""Real ECG from the MIT-BIH Arrhythmia Database, with beats labelled by a morphology rule.

Two openly licensed excerpts ship inside package archives and are read straight out of
them (never installed, imported or unpickled):

* **Record 208** (``scipy==1.9.3``'s ``scipy/misc/ecg.dat``): 5 minutes of lead MLII at
  360 Hz (19:35 to 24:35 of the record), about 500 beats with many premature
  ventricular contractions (PVCs), some fusion beats and noise artefacts. Moody & Mark,
  "The impact of the MIT-BIH Arrhythmia Database", IEEE EMB 20(3), 2001; PhysioNet
  (Goldberger et al., Circulation 101(23), 2000), Open Data Commons Attribution.
* **The sktime excerpt** (``sktime==1.2.0``'s ``sktime/datasets/data/mitdb/mitdb.csv``):
  7,500 samples (20.8 s at 360 Hz) of MIT-BIH ECG with the samples of one premature beat
  annotated (``annotation``).

**The beat labels here are rule labels, not a cardiologist's.** The expert annotations of
the database are not in these archives. :func:`label_beats` applies a documented
morphology rule instead: a beat whose QRS half-height width (the time the
baseline-corrected signal stays above half the R peak's height around the peak) is at
least 70 ms is *wide* (PVC-like); under 40 ms *narrow*; in between *borderline*. A beat
whose RR interval is under 85% of the median RR of its eight predecessors is
*premature* (a timing rule that also catches supraventricular premature beats, which are
narrow).
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ._fetch import fetch_package_file

__all__ = [
    "ECG_FS",
    "Beats",
    "ECGRecord",
    "ECGWindows",
    "detect_beats",
    "ecg_windows",
    "label_beats",
    "load_ecg_record208",
    "load_mitdb_excerpt",
    "parse_ecg_npz",
    "parse_mitdb_csv",
    "remove_baseline",
]

#: Sampling rate of both excerpts (Hz).
ECG_FS = 360.0

SCIPY_REQUIREMENT = "scipy==1.9.3"
#: The manylinux x86-64 CPython 3.10 wheel, fetched by that name on every platform.
SCIPY_SHA256 = "d01e1dd7b15bd2449c8bfc6b7cc67d630700ed655654f0dfcf121600bad205c9"
SCIPY_PIP_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.10",
    "--implementation",
    "cp",
    "--abi",
    "cp310",
)
_SCIPY_MEMBER = "scipy/misc/ecg.dat"
SKTIME_REQUIREMENT = "sktime==1.2.0"
SKTIME_SHA256 = "dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae"
_SKTIME_MEMBER = "sktime/datasets/data/mitdb/mitdb.csv"


@dataclass
class ECGRecord:
    """One ECG lead.

    Attributes:
        signal: float32 ``(samples,)`` in millivolts.
        fs: sampling rate in Hz.
        name: where it comes from.
        annotation: bool ``(samples,)``, True on an expert-annotated premature beat
            (the sktime excerpt), or ``None``.
    """

    signal: torch.Tensor
    fs: float
    name: str
    annotation: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.signal)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.signal) / self.fs


def parse_ecg_npz(data: bytes) -> torch.Tensor:
    """Read scipy's ``ecg.dat`` (an ``.npz`` archive holding the raw ADC values as
    ``uint16`` under ``"ecg"``) into millivolts: ``(adc - 1024) / 200``.

    Loaded with ``allow_pickle=False``: a file holding pickled objects is refused.

    Args:
        data: the file's bytes.

    Returns:
        float32 ``(samples,)`` in mV.

    Raises:
        ValueError: not an archive with a 1-D unsigned integer ``"ecg"`` array.

    Example:
        >>> buffer = io.BytesIO()
        >>> np.savez(buffer, ecg=np.array([1024, 1224], dtype=np.uint16))
        >>> parse_ecg_npz(buffer.getvalue()).tolist()
        [0.0, 1.0]
    """
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"ecg.dat is not an .npz archive of plain arrays: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError("ecg.dat is not an .npz archive (a bare array)")
    with loaded as archive:
        if "ecg" not in archive.files:
            raise ValueError(f"ecg.dat holds {archive.files}, expected an 'ecg' array")
        raw = archive["ecg"]  # an object array raises ValueError here: never unpickled
    if raw.ndim != 1 or raw.dtype.kind != "u":
        raise ValueError(f"ecg must be 1-D unsigned integers, got {raw.dtype} {raw.shape}")
    return torch.from_numpy((raw.astype(np.float64) - 1024.0) / 200.0).float()


def parse_mitdb_csv(text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read sktime's ``mitdb.csv``: a ``data,label`` header, then one sample per line.

    Args:
        text: the file's content.

    Returns:
        ``(signal float32 (samples,), annotation bool (samples,))``.

    Raises:
        ValueError: a wrong header or a malformed line (named by number).

    Example:
        >>> signal, annotation = parse_mitdb_csv("data,label\\n0.5,0\\n1.25,1\\n")
        >>> signal.tolist(), annotation.tolist()
        ([0.5, 1.25], [False, True])
    """
    lines = text.strip().splitlines()
    if not lines or lines[0].strip().replace(" ", "") != "data,label":
        raise ValueError("mitdb.csv must start with the header 'data,label'")
    values, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split(",")
        try:
            if len(parts) != 2:
                raise ValueError("expected two fields")
            value, label = float(parts[0]), int(parts[1])
            if label not in (0, 1) or not np.isfinite(value):
                raise ValueError("label must be 0 or 1 and the value finite")
        except ValueError as error:
            raise ValueError(f"mitdb.csv line {number}: {error}: {line!r}") from None
        values.append(value)
        labels.append(label)
    return torch.tensor(values, dtype=torch.float32), torch.tensor(labels, dtype=torch.bool)


def load_ecg_record208(cache_dir: str | os.PathLike[str] | None = None) -> ECGRecord:
    """Five minutes of MIT-BIH record 208, lead MLII, 360 Hz, in mV (108,000 samples).

    Read out of the pinned ``scipy==1.9.3`` wheel (SHA-256 checked); scipy itself is
    neither installed nor imported.

    Args:
        cache_dir: the download cache (default ``$CAPTUM_RNN_CACHE`` or ``~/.cache/captum_rnn``).

    Raises:
        DataUnavailableError: the wheel is not cached and cannot be downloaded.

    Example:
        >>> record = load_ecg_record208()  # doctest: +SKIP
        >>> len(record), record.fs  # doctest: +SKIP
        (108000, 360.0)
    """
    wheel = fetch_package_file(
        SCIPY_REQUIREMENT,
        SCIPY_SHA256,
        binary=True,
        cache_dir=cache_dir,
        pip_args=SCIPY_PIP_ARGS,
    )
    with zipfile.ZipFile(wheel) as archive:
        signal = parse_ecg_npz(archive.read(_SCIPY_MEMBER))
    return ECGRecord(signal, ECG_FS, "MIT-BIH record 208, MLII, 19:35-24:35")


def load_mitdb_excerpt(cache_dir: str | os.PathLike[str] | None = None) -> ECGRecord:
    """20.8 s of MIT-BIH ECG (360 Hz, mV) with one annotated premature beat.

    Read out of the pinned ``sktime==1.2.0`` wheel (SHA-256 checked); ``annotation``
    is True on the samples of the premature beat.

    Args:
        cache_dir: the download cache.

    Raises:
        DataUnavailableError: the wheel is not cached and cannot be downloaded.

    Example:
        >>> record = load_mitdb_excerpt()  # doctest: +SKIP
        >>> len(record), int(record.annotation.sum())  # doctest: +SKIP
        (7500, 352)
    """
    wheel = fetch_package_file(SKTIME_REQUIREMENT, SKTIME_SHA256, binary=True, cache_dir=cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(_SKTIME_MEMBER).decode("utf-8")
    signal, annotation = parse_mitdb_csv(text)
    return ECGRecord(signal, ECG_FS, "MIT-BIH excerpt (sktime mitdb.csv)", annotation)


def _as_array(signal: torch.Tensor | np.ndarray, fs: float) -> np.ndarray:
    x = np.asarray(signal.detach().cpu() if isinstance(signal, torch.Tensor) else signal)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"signal must be 1-D and non-empty, got shape {x.shape}")
    if not (isinstance(fs, (int, float)) and fs > 0):
        raise ValueError(f"fs must be a positive sampling rate in Hz, got {fs!r}")
    return x.astype(np.float64)


def remove_baseline(
    signal: torch.Tensor | np.ndarray, fs: float, window_s: float = 0.6
) -> np.ndarray:
    """The signal minus its running median over ``window_s`` seconds (baseline wander
    and the slow P and T waves go; the QRS stays).

    Args:
        signal: one lead, ``(samples,)``.
        fs: sampling rate in Hz.
        window_s: the median's window in seconds.

    Returns:
        float64 ``(samples,)``.

    Example:
        >>> float(remove_baseline(np.full(100, 3.0), fs=100).max())
        0.0
    """
    x = _as_array(signal, fs)
    half = max(1, int(window_s * fs) // 2)
    padded = np.pad(x, (half, half), mode="edge")
    stride = max(1, half // 36)  # the median of a subsample: ~72 values per window
    return x - np.median(sliding_window_view(padded, 2 * half + 1)[:, ::stride], axis=1)


def detect_beats(
    signal: torch.Tensor | np.ndarray, fs: float, *, refractory_s: float = 0.25
) -> np.ndarray:
    """R-peak (QRS) sample indices: the largest ``|deviation from baseline|`` within
    100 ms after each crossing of half the 99.5th percentile, at most one per
    ``refractory_s``.

    Args:
        signal: one lead, ``(samples,)``.
        fs: sampling rate in Hz.
        refractory_s: the shortest interval between two beats.

    Returns:
        int64 sample indices, increasing.

    Example:
        >>> t = np.arange(720) / 360
        >>> detect_beats(np.exp(-(((t - 0.5) / 0.01) ** 2)), 360).tolist()
        [180]
    """
    deviation = np.abs(remove_baseline(signal, fs))
    threshold = 0.5 * np.percentile(deviation, 99.5)
    reach, gap = max(1, int(0.1 * fs)), int(refractory_s * fs)
    peaks: list[int] = []
    for start in np.flatnonzero(deviation > threshold):
        if peaks and start - peaks[-1] < gap:
            continue
        peaks.append(int(start + np.argmax(deviation[start : start + reach])))
    return np.asarray(peaks, dtype=np.int64)


@dataclass
class Beats:
    """Detected beats and their rule labels (rule labels, not a cardiologist's).

    Attributes:
        peaks: sample index of each R peak.
        width_ms: QRS half-height width of each beat.
        amplitude: baseline-corrected signal at the peak (mV).
        rr_ms: interval from the previous beat (NaN for the first).
        wide: width at least ``wide_ms``: PVC-like.
        narrow: width under ``narrow_ms``.
        premature: RR under ``premature`` times the median RR of the eight beats before.
        fs: sampling rate.
    """

    peaks: np.ndarray
    width_ms: np.ndarray
    amplitude: np.ndarray
    rr_ms: np.ndarray
    wide: np.ndarray
    narrow: np.ndarray
    premature: np.ndarray
    fs: float

    def __len__(self) -> int:
        return len(self.peaks)

    @property
    def borderline(self) -> np.ndarray:
        """Neither wide nor narrow."""
        return ~(self.wide | self.narrow)


def _half_height_width(deviation: np.ndarray, peak: int) -> int:
    """Samples around ``peak`` where the deviation keeps the peak's sign and at least
    half its height."""
    half, sign = abs(deviation[peak]) / 2, np.sign(deviation[peak])
    above = sign * deviation >= half
    left = peak
    while left > 0 and above[left - 1]:
        left -= 1
    right = peak
    while right < len(deviation) - 1 and above[right + 1]:
        right += 1
    return right - left + 1


def label_beats(
    signal: torch.Tensor | np.ndarray,
    fs: float,
    *,
    wide_ms: float = 70.0,
    narrow_ms: float = 40.0,
    premature: float = 0.85,
) -> Beats:
    """Detect the beats and label them by the documented rules (not a cardiologist's).

    QRS half-height width: on the signal minus its 0.6 s running median, the time the
    signal stays on the R peak's side of half its height, contiguously around the peak.
    Wide (at least ``wide_ms``) is PVC-like: a ventricular beat spreads through the
    muscle slowly, so its QRS is wide; a normal beat's is narrow (under ``narrow_ms``).

    Args:
        signal: one lead, ``(samples,)``.
        fs: sampling rate in Hz.
        wide_ms: width from which a beat is wide.
        narrow_ms: width under which a beat is narrow.
        premature: RR share of the local median under which a beat is premature.

    Returns:
        :class:`Beats`.

    Example:
        >>> fs = 360
        >>> t = np.arange(2 * fs) / fs
        >>> narrow, wide = np.exp(-((t - 0.5) / 0.01) ** 2), np.exp(-((t - 1.5) / 0.05) ** 2)
        >>> beats = label_beats(narrow + wide, fs)
        >>> beats.wide.tolist(), beats.narrow.tolist()
        ([False, True], [True, False])
    """
    if not 0 < narrow_ms <= wide_ms:
        raise ValueError(f"need 0 < narrow_ms <= wide_ms, got {narrow_ms} and {wide_ms}")
    deviation = remove_baseline(signal, fs)
    peaks = detect_beats(signal, fs)
    width = np.array([_half_height_width(deviation, int(p)) for p in peaks], dtype=np.float64)
    width_ms = 1000.0 * width / fs
    rr = np.full(len(peaks), np.nan)
    rr[1:] = 1000.0 * np.diff(peaks) / fs
    is_premature = np.zeros(len(peaks), dtype=bool)
    for i in range(2, len(peaks)):
        local = np.median(rr[max(1, i - 8) : i])
        is_premature[i] = rr[i] < premature * local
    return Beats(
        peaks=peaks,
        width_ms=width_ms,
        amplitude=deviation[peaks] if len(peaks) else np.zeros(0),
        rr_ms=rr,
        wide=width_ms >= wide_ms,
        narrow=width_ms < narrow_ms,
        premature=is_premature,
        fs=float(fs),
    )


@dataclass
class ECGWindows:
    """Fixed-length windows of one lead, for a sequence classifier.

    Attributes:
        inputs: float32 ``(windows, steps, 1)``: the baseline-corrected signal divided by
            the median R amplitude, averaged over ``downsample`` samples.
        labels: 1 when the window holds a wide (PVC-like) beat, 0 when all its beats are
            narrow (rule labels).
        starts: first sample of each window in the record.
        wide_steps: per window, the steps (after downsampling) of its wide beats' peaks.
        fs: the windows' sampling rate (``record fs / downsample``).
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    starts: torch.Tensor
    wide_steps: list[list[int]]
    fs: float

    def __len__(self) -> int:
        return len(self.labels)

    def near_wide(self, radius_s: float = 0.12) -> torch.Tensor:
        """Bool ``(windows, steps)``: within ``radius_s`` of a wide beat's peak."""
        steps = self.inputs.shape[1]
        out = torch.zeros(len(self), steps, dtype=torch.bool)
        reach = int(round(radius_s * self.fs))
        for i, peaks in enumerate(self.wide_steps):
            for p in peaks:
                out[i, max(0, p - reach) : p + reach + 1] = True
        return out


def ecg_windows(
    signal: torch.Tensor | np.ndarray,
    fs: float,
    beats: Beats | None = None,
    *,
    seconds: float = 1.2,
    stride_s: float = 0.2,
    downsample: int = 4,
    margin_s: float = 0.15,
    keep_all: bool = False,
) -> ECGWindows:
    """Cut one lead into windows labelled by the beats they hold.

    A window is positive when a wide beat's peak lies at least ``margin_s`` inside it,
    negative when it holds no wide or borderline beat at all (not even within
    ``margin_s`` outside its edges); other windows are dropped unless ``keep_all``
    (then their label is 1 if a wide peak lies inside, else 0).

    Args:
        signal: one lead.
        fs: its sampling rate.
        beats: from :func:`label_beats` (computed when ``None``).
        seconds: window length.
        stride_s: step between window starts.
        downsample: samples averaged into one step.
        margin_s: how far inside the window a wide peak must lie.
        keep_all: keep the ambiguous windows too (for scanning a whole record).

    Returns:
        :class:`ECGWindows`.

    Raises:
        ValueError: windows longer than the signal, or none that could be labelled.

    Example:
        >>> record = load_ecg_record208()  # doctest: +SKIP
        >>> windows = ecg_windows(record.signal, record.fs)  # doctest: +SKIP
        >>> windows.inputs.shape[1:], windows.fs  # doctest: +SKIP
        (torch.Size([108, 1]), 90.0)
    """
    if not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be a positive int, got {downsample!r}")
    beats = label_beats(signal, fs) if beats is None else beats
    deviation = remove_baseline(signal, fs)
    scale = float(np.median(np.abs(beats.amplitude))) if len(beats) else 1.0
    deviation = deviation / (scale if scale > 0 else 1.0)
    length, stride = int(round(seconds * fs)), max(1, int(round(stride_s * fs)))
    length -= length % downsample
    if length < downsample or length > len(deviation):
        raise ValueError(
            f"seconds={seconds} gives windows of {length} samples for a signal of {len(deviation)}"
        )
    margin = int(round(margin_s * fs))
    wide_peaks, other = beats.peaks[beats.wide], beats.peaks[beats.borderline]
    inputs, labels, starts, wide_steps = [], [], [], []
    for start in range(0, len(deviation) - length + 1, stride):
        end = start + length
        inside = wide_peaks[(wide_peaks >= start + margin) & (wide_peaks < end - margin)]
        near = ((wide_peaks >= start - margin) & (wide_peaks < end + margin)).any() or (
            (other >= start - margin) & (other < end + margin)
        ).any()
        if len(inside):
            label = 1
        elif not near:
            label = 0
        elif keep_all:
            label = int(((wide_peaks >= start) & (wide_peaks < end)).any())
        else:
            continue
        inside = wide_peaks[(wide_peaks >= start) & (wide_peaks < end)]
        block = deviation[start:end].reshape(-1, downsample).mean(axis=1)
        inputs.append(torch.from_numpy(block).float()[:, None])
        labels.append(label)
        starts.append(start)
        wide_steps.append([int(p - start) // downsample for p in inside])
    if not inputs:
        raise ValueError("no window could be labelled; lower margin_s or pass keep_all=True")
    return ECGWindows(
        torch.stack(inputs),
        torch.tensor(labels),
        torch.tensor(starts),
        wide_steps,
        fs / downsample,
    )
