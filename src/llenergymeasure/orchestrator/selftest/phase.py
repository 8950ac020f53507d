"""The counter phase test's arithmetic: a busy/idle square wave against the energy counter and the power timeline.

A load alternates busy and idle at a known frequency for a window. During it the
energy counter is read at every phase edge and instant power is sampled off the
hot path (default every 100 ms). From those readings:

- ``counter_energy_j``: the counter's delta over the window (measured);
- ``timeline_energy_j``: the trapezoid integral of the instant-power samples over
  the same window (integrated);
- ``deviation_pct``: (timeline − counter) / counter × 100;
- ``phases_seen``: phases in which the counter moved. A counter that updates
  more slowly than the phases change misses some; averaged power readings miss
  the shape altogether;
- ``busy_idle_ratio``: mean counter power of busy phases over idle phases (> 1
  when the counter resolves the wave).

A sampler whose period divides the wave's period sees the same phase every time
(aliasing): at 10 Hz with 100 ms sampling every sample lands in the same half of
the wave, and the timeline is off by (P_busy − P_mean) / P_mean. That is the
failure this test exists to show, per frequency, on real hardware.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from pydantic import Field

from llenergymeasure.schemas._base import StrictModel


@dataclass(frozen=True)
class Phase:
    start_s: float
    end_s: float
    busy: bool


class PhaseResult(StrictModel):
    """One frequency of the counter phase test."""

    frequency_hz: float = Field(description="Square-wave frequency of the busy/idle load, Hz.")
    window_s: float = Field(description="Length of the window, seconds.")
    counter_energy_j: float = Field(description="Energy counter delta over the window, joules (measured).")
    timeline_energy_j: float | None = Field(
        description="Trapezoid integral of the instant-power samples over the window, joules (integrated)."
    )
    deviation_pct: float | None = Field(description="(timeline − counter) / counter × 100, percent.")
    phases: int = Field(description="Busy and idle phases in the window (count).")
    phases_seen: int = Field(description="Phases during which the energy counter moved (count).")
    busy_idle_ratio: float | None = Field(description="Mean counter power of busy phases / of idle phases (ratio).")
    samples: int = Field(description="Instant-power samples in the window (count).")


def square_wave(frequency_hz: float, window_s: float, t0_s: float = 0.0) -> list[Phase]:
    """Busy then idle halves of each period, from `t0_s`, cut at the end of the window."""
    half = 0.5 / frequency_hz
    phases: list[Phase] = []
    k = 0
    while k * half < window_s - 1e-9:
        start = t0_s + k * half
        phases.append(Phase(start, min(start + half, t0_s + window_s), busy=k % 2 == 0))
        k += 1
    return phases


def analyse(
    frequency_hz: float,
    phases: Sequence[Phase],
    counter_j_at_edges: Sequence[float],
    power_samples: Sequence[tuple[float, float]],
) -> PhaseResult:
    """`counter_j_at_edges`: the counter (joules) at each phase start and at the end of the last phase.

    `power_samples`: (time s, instant power W) in time order, on the same clock as `phases`.
    """
    if len(counter_j_at_edges) != len(phases) + 1:
        raise ValueError(f"need {len(phases) + 1} counter readings (every phase edge), got {len(counter_j_at_edges)}")
    start, end = phases[0].start_s, phases[-1].end_s
    deltas = [b - a for a, b in pairwise(counter_j_at_edges)]
    counter_j = counter_j_at_edges[-1] - counter_j_at_edges[0]
    timeline_j = integrate(power_samples, start, end)
    busy_w = [d / (p.end_s - p.start_s) for d, p in zip(deltas, phases, strict=True) if p.busy]
    idle_w = [d / (p.end_s - p.start_s) for d, p in zip(deltas, phases, strict=True) if not p.busy]
    ratio = None
    if busy_w and idle_w and sum(idle_w) > 0:
        ratio = (sum(busy_w) / len(busy_w)) / (sum(idle_w) / len(idle_w))
    return PhaseResult(
        frequency_hz=frequency_hz,
        window_s=end - start,
        counter_energy_j=counter_j,
        timeline_energy_j=timeline_j,
        deviation_pct=(timeline_j - counter_j) / counter_j * 100 if timeline_j is not None and counter_j > 0 else None,
        phases=len(phases),
        phases_seen=sum(1 for d in deltas if d > 0),
        busy_idle_ratio=ratio,
        samples=sum(1 for t, _ in power_samples if start <= t <= end),
    )


def integrate(samples: Sequence[tuple[float, float]], start_s: float, end_s: float) -> float | None:
    """Trapezoid integral of (t, W) samples over [start_s, end_s], joules; the ends hold the nearest sample."""
    inside = [(t, w) for t, w in samples if start_s <= t <= end_s]
    if not inside:
        return None
    points = [(start_s, inside[0][1]), *inside, (end_s, inside[-1][1])]
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in pairwise(points))
