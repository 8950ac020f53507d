"""Numerical helpers for power samples: pure functions, seconds / watts / joules.

`integrate_power_j` is the trapezoidal rule over instantaneous power samples,
with the power at each window edge linearly interpolated from the samples that
straddle it (or held from the nearest sample when the edge lies outside them).
"""

from __future__ import annotations

from collections.abc import Sequence
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
