"""Timing helpers shared by the benchmark scripts (medians; CUDA synchronised)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so that a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """Seconds one call of ``fn`` takes, and what it returned."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def median_seconds(
    fn: Callable[[], object], device: torch.device, repeats: int, warm: bool = True
) -> float:
    """Median seconds of ``repeats`` calls of ``fn``, after one warm-up call."""
    if warm:
        fn()
    return statistics.median(timed(fn, device)[0] for _ in range(repeats))


def interleaved(
    fns: Mapping[str, Callable[[], object]], device: torch.device, repeats: int
) -> dict[str, float]:
    """Median seconds of each function, timed in alternation so load hits all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device)[0])
    return {name: statistics.median(t) for name, t in times.items()}
