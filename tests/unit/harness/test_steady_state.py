"""Steady state of a continuous-batching window and latency percentiles: pure functions against hand computations."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness.backends.base import GenerationBatch, RequestOutput
from llenergymeasure.harness.energy.base import WindowEnergy
from llenergymeasure.harness.energy.sampler import PowerSampler
from llenergymeasure.harness.metrics import latency_stats, percentile
from llenergymeasure.harness.steady_state import (
    RequestSpan,
    calibrated_energy_j,
    plateau,
    steady_state_of,
    steady_state_window,
    tokens_between,
)
from llenergymeasure.harness.window import WindowOutcome

# ten requests: request i gets its first token at 0.1·i s and its last 10 s later, 101 tokens 0.1 s apart
RAMP = [RequestSpan(first_token_s=i / 10, end_s=10 + i / 10, output_tokens=101) for i in range(10)]


def test_plateau_is_where_in_flight_requests_stay_near_their_peak() -> None:
    # in flight: 1, 2, ... 10 by t = 0.9; 10 until the first ends at 10.0, 9 until 10.1, then 8 ...
    # peak 10, level ceil(0.9 × 10) = 9: from t = 0.8 (9 in flight) to t = 10.1 (drops to 8)
    assert plateau(RAMP) == (pytest.approx(0.8), pytest.approx(10.1), 10, 9)
    # a lower fraction widens it: level ceil(0.5 × 10) = 5 → from 0.4 to 10.5
    assert plateau(RAMP, fraction=0.5) == (pytest.approx(0.4), pytest.approx(10.5), 10, 5)
    assert plateau([]) is None


def test_a_request_ending_as_another_starts_does_not_overlap_it() -> None:
    back_to_back = [RequestSpan(0.0, 1.0, 5), RequestSpan(1.0, 2.0, 5)]
    assert plateau(back_to_back) == (0.0, 2.0, 1, 1)


def test_tokens_between_counts_evenly_spaced_tokens_inside_the_interval() -> None:
    span = [RequestSpan(first_token_s=0.0, end_s=9.0, output_tokens=10)]  # tokens at 0, 1, ..., 9 s
    assert tokens_between(span, 2.5, 6.0) == 4  # 3, 4, 5, 6
    assert tokens_between(span, 3.0, 6.0) == 4  # both edges inclusive
    assert tokens_between(span, -5.0, 50.0) == 10
    assert tokens_between([RequestSpan(5.0, 5.0, 1)], 4.0, 6.0) == 1
    assert tokens_between([RequestSpan(5.0, 5.0, 1)], 5.5, 6.0) == 0


def test_steady_state_energy_is_the_counter_calibrated_timeline() -> None:
    # the timeline reads a flat 100 W; the counter measured 5 % more over the window (10.9 s: 1,090 J → 1,144.5 J)
    def timeline(a: float, b: float) -> float:
        return 100.0 * (b - a)

    steady = steady_state_window(RAMP, energy_total_j=1144.5, timeline_j=timeline, window_s=10.9, sample_interval_s=0.1)
    assert steady is not None
    assert (steady.start_s, steady.end_s) == (pytest.approx(0.8), pytest.approx(10.1))
    assert (steady.peak_in_flight, steady.plateau_in_flight) == (10, 9)
    # 930 J of timeline over [0.8, 10.1] × 1,144.5 / 1,090 = 976.5 J
    assert steady.energy_j == pytest.approx(976.5)
    # tokens of request i at 0.1·(i + k), k = 0..100, inside [0.8, 10.1]: max(0, 8 − i) ≤ k ≤ min(100, 101 − i)
    # → i = 0: 8..100 = 93; i = 1..8: 94 each (7..100, 6..99, ..., 0..93); i = 9: 0..92 = 93 → 938
    assert steady.output_tokens == 938
    assert steady.energy_per_output_token_j == pytest.approx(976.5 / 938)
    assert steady.output_tokens_per_s == pytest.approx(938 / 9.3)
    assert "plateau" in steady.method


def test_steady_state_of_a_window_integrates_the_sampled_timeline_from_the_window_start() -> None:
    t0 = 40.0
    clock = FakeClock(t0)
    # 100 W until 5.05 s into the window, 300 W after (the step falls between two 0.1 s samples)
    trace = PowerTrace.steps((0.0, 100.0), (t0 + 5.05, 300.0))
    sampler = PowerSampler(measured([FakeNvmlDevice(trace, clock)]), 0.1, clock=clock)
    for k in range(110):  # samples at t0, t0 + 0.1, ..., t0 + 10.9
        clock.t = t0 + k / 10
        sampler.sample_now()
    # by hand: window [0, 10.9]: 100 × 5.05 + 300 × 5.85 = 2,260 J; plateau [0.8, 10.1]: 100 × 4.25 + 300 × 5.05
    # = 1,940 J; the counter read 2 % more than the timeline, 2,305.2 J → steady 2,305.2 × 1,940 / 2,260 = 1,978.8 J
    outputs = [RequestOutput(8, 101, 10.0, first_token_offset_s=s.first_token_s, end_offset_s=s.end_s) for s in RAMP]
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    window = WindowOutcome(
        GenerationBatch(outputs, "request"), WindowEnergy("nvml", "counter", 2305.2, 10.9), t0, t0 + 10.9, at, at
    )
    steady = steady_state_of(window, sampler, 0.1)
    assert steady is not None
    assert steady.energy_j == pytest.approx(1978.8)
    assert steady_state_of(window, None, 0.1) is not None  # tokens without a timeline
    static = WindowOutcome(GenerationBatch([RequestOutput(8, 16, 1.0)], "batch"), window.energy, t0, t0 + 1, at, at)
    assert steady_state_of(static, sampler, 0.1) is None  # no per-request timing: the whole window is used


def test_no_steady_state_without_enough_requests_time_or_timeline() -> None:
    assert (
        steady_state_window(RAMP[:1], energy_total_j=1.0, timeline_j=None, window_s=10.0, sample_interval_s=0.1) is None
    )
    # a plateau shorter than two sampling intervals (9.3 s < 2 × 5 s) carries too few samples
    assert steady_state_window(RAMP, energy_total_j=1.0, timeline_j=None, window_s=10.9, sample_interval_s=5.0) is None
    no_timeline = steady_state_window(RAMP, energy_total_j=1.0, timeline_j=None, window_s=10.9, sample_interval_s=0.1)
    assert no_timeline is not None and no_timeline.energy_j is None and no_timeline.output_tokens == 938
    assert calibrated_energy_j(None, 1.0, 1.0) is None
    assert calibrated_energy_j(10.0, 0.0, 1.0) is None
    assert calibrated_energy_j(1000.0, 950.0, 380.0) == pytest.approx(400.0)


def test_p99_is_linear_interpolation_not_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]  # 1 … 10
    # linear: rank (10 − 1) × 0.99 = 8.91 → 9 + 0.91 × (10 − 9) = 9.91; nearest rank would give ceil(9.9) → 10
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 50) == pytest.approx(5.5)


def test_ttft_and_itl_percentiles_are_reported_in_ms() -> None:
    ttfts = [v / 1000 for v in range(1, 11)]  # 1 … 10 ms
    itls = [0.002, 0.004]  # 2 and 4 ms
    stats = latency_stats([0.1] * 10, "request", ttfts_s=ttfts, itls_s=itls)
    assert stats is not None
    assert stats.percentile_method == "linear"
    assert (stats.ttft_mean_ms, stats.ttft_p50_ms, stats.ttft_p90_ms, stats.ttft_p99_ms) == (
        pytest.approx(5.5),
        pytest.approx(5.5),
        pytest.approx(9.1),
        pytest.approx(9.91),
    )
    # two values: rank (2 − 1) × q / 100 → p50 = 3, p90 = 2 + 0.9 × 2 = 3.8, p99 = 2 + 0.99 × 2 = 3.98
    assert (stats.itl_mean_ms, stats.itl_p50_ms, stats.itl_p90_ms, stats.itl_p99_ms) == (
        pytest.approx(3.0),
        pytest.approx(3.0),
        pytest.approx(3.8),
        pytest.approx(3.98),
    )
    bare = latency_stats([0.1], "batch")
    assert bare is not None and bare.ttft_p99_ms is None and bare.itl_p50_ms is None
