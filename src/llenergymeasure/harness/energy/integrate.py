"""Numerical helpers for power samples: pure functions, seconds / watts / joules.

`integrate_power_j` is the trapezoidal rule over instantaneous power samples,
with the power at each window edge linearly interpolated from the samples that
straddle it (or held from the nearest sample when the edge lies outside them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise


def _power_at(times_s: Sequence[float], powers_w: Sequence[float], t: float) -> float:
    if t <= times_s[0]:
        return powers_w[0]
    if t >= times_s[-1]:
        return powers_w[-1]
    for (ta, pa), (tb, pb) in pairwise(zip(times_s, powers_w, strict=True)):
        if ta <= t <= tb:
            return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)
    return powers_w[-1]  # unreachable for sorted times


def integrate_power_j(times_s: Sequence[float], powers_w: Sequence[float], t0: float, t1: float) -> float | None:
    """Energy in joules between `t0` and `t1` from power samples (sorted by time); None with < 2 samples."""
    if len(times_s) != len(powers_w):
        raise ValueError("times_s and powers_w differ in length")
    if len(times_s) < 2 or t1 <= t0:
        return None if len(times_s) < 2 else 0.0
    inner = [(t, p) for t, p in zip(times_s, powers_w, strict=True) if t0 < t < t1]
    points = [(t0, _power_at(times_s, powers_w, t0)), *inner, (t1, _power_at(times_s, powers_w, t1))]
    return sum((tb - ta) * (pa + pb) / 2.0 for (ta, pa), (tb, pb) in pairwise(points))


def count_changes(values: Sequence[int | None]) -> int:
    """Times a counter's value changed along `values` (None readings skipped)."""
    seen = [v for v in values if v is not None]
    return sum(1 for a, b in pairwise(seen) if a != b)


def went_backwards(values: Sequence[int | None]) -> bool:
    """True when a counter read along `values` decreased anywhere (a driver reset; None readings skipped)."""
    seen = [v for v in values if v is not None]
    return any(b < a for a, b in pairwise(seen))


def held_between_reads(values: Sequence[int | None]) -> bool:
    """True when two consecutive reads returned the same value: the counter, not the reads, limits how many
    updates were seen (so a low count means a coarse counter)."""
    seen = [v for v in values if v is not None]
    return any(a == b for a, b in pairwise(seen))


@dataclass(frozen=True)
class Coverage:
    """How well power samples cover a window: the largest gap between the points used, and the fraction
    of the window lying in gaps no longer than the allowed one."""

    largest_gap_s: float
    covered_fraction: float


def sample_coverage(times_s: Sequence[float], t0: float, t1: float, max_gap_s: float) -> Coverage:
    """Coverage of [t0, t1] by samples at `times_s`. An edge with no sample beyond it is uncovered up to the
    nearest sample (integration holds that sample's power there)."""
    span = t1 - t0
    if span <= 0:
        return Coverage(0.0, 1.0)
    ts = sorted(times_s)
    before = [t for t in ts if t <= t0]
    after = [t for t in ts if t >= t1]
    points = [before[-1] if before else -math.inf, *(t for t in ts if t0 < t < t1), after[0] if after else math.inf]
    largest, covered = 0.0, 0.0
    for a, b in pairwise(points):
        inside = min(b, t1) - max(a, t0)
        if inside <= 0:
            continue
        length = b - a
        largest = max(largest, length if math.isfinite(length) else inside)
        if length <= max_gap_s:
            covered += inside
    return Coverage(largest, covered / span)
