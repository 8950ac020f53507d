"""The steady-state part of a continuous-batching window: pure functions over per-request timing.

vLLM and TensorRT-LLM receive the whole prompt set at once; their schedulers
fill the batch (prefills ramp the number of decoding requests up), hold it,
then drain it as the last requests finish. The ramp and the tail run at lower
occupancy than serving at load would, so besides the whole-window figures the
result reports a steady-state sub-window:

- **in flight**: a request is in flight from its first token to its last token
  (between them it holds a slot of the running batch and decodes every step);
- **plateau**: the interval from the first moment at least
  ``ceil(PLATEAU_FRACTION × peak)`` requests are in flight to the last moment
  they are (peak = the largest number in flight at once);
- **energy** of the sub-window: the sampled power timeline integrated over it,
  scaled by ``energy_total_j / timeline over the whole window`` — the timeline
  supplies the shape, the counter (or whatever measured the window) the level;
- **output tokens** inside it: each request's tokens are taken evenly spaced
  from its first token to its last (the backends report a mean inter-token
  latency, not every token's time), and those falling inside are counted.

The sub-window is not reported when requests carry no timing (batch
granularity), fewer than `MIN_REQUESTS` were timed, or it is shorter than
`MIN_SAMPLE_INTERVALS` timeline samples (the energy would rest on too few
points). PyTorch static batches are not treated this way: every ``generate``
call runs one batch from start to end at a fixed size, so the whole window is
already at that batch's occupancy (see docs/methodology.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llenergymeasure.harness.energy.sampler import PowerSampler, timeline_energy_j
from llenergymeasure.harness.window import WindowOutcome
from llenergymeasure.schemas.results import SteadyStateWindow

#: the plateau is where at least this fraction of the peak number of requests is in flight
PLATEAU_FRACTION = 0.9
#: fewer timed requests than this: no steady state
MIN_REQUESTS = 2
#: a steady window must span at least this many timeline sample intervals
MIN_SAMPLE_INTERVALS = 2

METHOD = (
    f"in-flight plateau: from the first to the last moment at least {PLATEAU_FRACTION:.0%} of the peak number of "
    "requests were between their first and last token; energy = power timeline over it × energy_total_j / "
    "timeline over the window; tokens evenly spaced between each request's first and last token"
)


@dataclass(frozen=True)
class RequestSpan:
    """One request's decoding span, seconds from the window's start, and its output tokens."""

    first_token_s: float
    end_s: float
    output_tokens: int


def plateau(spans: Sequence[RequestSpan], fraction: float = PLATEAU_FRACTION) -> tuple[float, float, int, int] | None:
    """``(start_s, end_s, peak, level)``: where at least ``level = ceil(fraction × peak)`` requests are in flight.

    A request counts from its first token (inclusive) to its end (exclusive). None without spans.
    """
    if not spans:
        return None
    # at equal times, ends before starts: a request ending as another starts does not overlap it
    events = sorted([(s.first_token_s, 1) for s in spans] + [(s.end_s, -1) for s in spans], key=lambda e: (e[0], e[1]))
    counts: list[tuple[float, int]] = []  # (time, in flight from this time on)
    in_flight = 0
    for t, delta in events:
        in_flight += delta
        if counts and counts[-1][0] == t:
            counts[-1] = (t, in_flight)
        else:
            counts.append((t, in_flight))
    peak = max(c for _, c in counts)
    level = math.ceil(fraction * peak)
    above = [i for i, (_, c) in enumerate(counts) if c >= level]
    start = counts[above[0]][0]
    end = counts[above[-1] + 1][0]  # the count drops below the level at the next change (the last one reaches 0)
    return start, end, peak, level


def tokens_between(spans: Sequence[RequestSpan], a: float, b: float) -> int:
    """Output tokens generated in [a, b], each request's tokens evenly spaced from its first token to its end."""
    total = 0
    for s in spans:
        n = s.output_tokens
        if n <= 0:
            continue
        if n == 1:
            total += 1 if a <= s.first_token_s <= b else 0
            continue
        step = (s.end_s - s.first_token_s) / (n - 1)
        if step <= 0:
            total += n if a <= s.first_token_s <= b else 0
            continue
        # token k at first + k × step: count k in [0, n-1] with a ≤ first + k × step ≤ b
        lo = max(0, math.ceil((a - s.first_token_s) / step - 1e-6))
        hi = min(n - 1, math.floor((b - s.first_token_s) / step + 1e-6))
        total += max(0, hi - lo + 1)
    return total


def calibrated_energy_j(
    energy_total_j: float | None, timeline_window_j: float | None, timeline_part_j: float | None
) -> float | None:
    """The part's energy: its timeline integral scaled so the whole window's timeline equals `energy_total_j`."""
    if energy_total_j is None or timeline_window_j is None or timeline_part_j is None or timeline_window_j <= 0:
        return None
    return energy_total_j * timeline_part_j / timeline_window_j


def steady_state_window(
    spans: Sequence[RequestSpan],
    *,
    energy_total_j: float | None,
    timeline_j: Callable[[float, float], float | None] | None,
    window_s: float,
    sample_interval_s: float,
) -> SteadyStateWindow | None:
    """The steady-state sub-window and its figures (see the module docstring); None when it cannot be derived.

    `timeline_j(a, b)` integrates the power timeline between offsets a and b of the window (None: no timeline).
    """
    if len(spans) < MIN_REQUESTS:
        return None
    found = plateau(spans)
    if found is None:
        return None
    start, end, peak, level = found
    start, end = max(0.0, start), min(window_s, end)
    if end - start < MIN_SAMPLE_INTERVALS * sample_interval_s or end <= start:
        return None
    tokens = tokens_between(spans, start, end)
    energy_j = None
    if timeline_j is not None:
        energy_j = calibrated_energy_j(energy_total_j, timeline_j(0.0, window_s), timeline_j(start, end))
    return SteadyStateWindow(
        start_s=start,
        end_s=end,
        duration_s=end - start,
        method=METHOD,
        peak_in_flight=peak,
        plateau_in_flight=level,
        output_tokens=tokens,
        output_tokens_per_s=tokens / (end - start),
        energy_j=energy_j,
        energy_per_output_token_j=energy_j / tokens if energy_j is not None and tokens > 0 else None,
    )


def spans_of(
    first_token_offsets_s: Sequence[float | None], end_offsets_s: Sequence[float | None], output_tokens: Sequence[int]
) -> list[RequestSpan] | None:
    """Spans for every request, or None when any request lacks timing."""
    spans = []
    for first, end, n in zip(first_token_offsets_s, end_offsets_s, output_tokens, strict=True):
        if first is None or end is None:
            return None
        spans.append(RequestSpan(first, end, n))
    return spans


def steady_state_of(
    window: WindowOutcome, sampler: PowerSampler | None, sample_interval_s: float
) -> SteadyStateWindow | None:
    """`steady_state_window` for a measured window: request offsets are from the window's start (`window.t0_s`)."""
    outputs = window.batch.outputs
    spans = spans_of(
        [o.first_token_offset_s for o in outputs], [o.end_offset_s for o in outputs], [o.output_tokens for o in outputs]
    )
    if spans is None:
        return None

    def timeline(a_s: float, b_s: float) -> float | None:
        assert sampler is not None
        return timeline_energy_j(sampler, window.t0_s + a_s, window.t0_s + b_s)

    return steady_state_window(
        spans,
        energy_total_j=window.energy.energy_j,
        timeline_j=timeline if sampler is not None else None,
        window_s=window.duration_s,
        sample_interval_s=sample_interval_s,
    )
