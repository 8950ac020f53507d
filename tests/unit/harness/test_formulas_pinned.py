"""Every formula of the measurement core pinned to a value worked out by hand.

The inputs are chosen so that a plausible slip gives a different number: uneven
sample spacing and a non-linear power trace (so multiplying instead of dividing
by a sample interval, or swapping the interpolation's end points, changes the
result), percentiles whose rank falls between two samples, thresholds tested on
both sides. Each expected value is derived in the comment beside it.
"""

from __future__ import annotations

import pytest
from harness_fakes import FakeClock

from llenergymeasure.harness.energy.base import DeviceWindowEnergy, WindowEnergy, weakest_method
from llenergymeasure.harness.energy.integrate import (
    Coverage,
    count_changes,
    held_between_reads,
    integrate_power_j,
    sample_coverage,
    went_backwards,
)
from llenergymeasure.harness.energy.null import NullMeter
from llenergymeasure.harness.metrics import (
    adjusted_negative_warning,
    disagreement_warning,
    flops_estimate,
    latency_stats,
    per_second,
    per_token,
    percentile,
    short_window_warnings,
    timeline_disagreement_pct,
)
from llenergymeasure.harness.params import ParameterCounts
from llenergymeasure.harness.tokens import count_text_tokens, truncate_text

# Power samples at uneven times, on a trace that rises, falls and rises again (not a line).
TIMES_S = [0.0, 0.3, 1.0, 1.2, 2.0]
POWERS_W = [100.0, 190.0, 120.0, 250.0, 210.0]


# ------------------------------------------------------------ power integration


def test_window_edges_are_interpolated_between_unevenly_spaced_samples() -> None:
    # P(0.1) = 100 + (190 − 100) × (0.1 − 0) / (0.3 − 0) = 130 W
    # P(1.6) = 250 + (210 − 250) × (1.6 − 1.2) / (2.0 − 1.2) = 230 W
    # trapezoids: 0.2 × (130 + 190)/2 = 32; 0.7 × (190 + 120)/2 = 108.5; 0.2 × (120 + 250)/2 = 37;
    #             0.4 × (250 + 230)/2 = 96 → 273.5 J
    assert integrate_power_j(TIMES_S, POWERS_W, 0.1, 1.6) == pytest.approx(273.5, rel=1e-12)


def test_window_inside_one_sample_interval_uses_both_interpolated_edges() -> None:
    # P(0.4) = 190 + (120 − 190) × 0.1/0.7 = 180 W; P(0.9) = 190 − 70 × 0.6/0.7 = 130 W
    # one trapezoid: 0.5 × (180 + 130)/2 = 77.5 J
    assert integrate_power_j(TIMES_S, POWERS_W, 0.4, 0.9) == pytest.approx(77.5, rel=1e-12)


def test_power_after_the_last_sample_is_held() -> None:
    # P(1.5) = 250 − 40 × 0.3/0.8 = 235 W; after t = 2.0 the last sample (210 W) is held to t = 3.0
    # 0.5 × (235 + 210)/2 = 111.25; 1.0 × 210 = 210 → 321.25 J
    assert integrate_power_j(TIMES_S, POWERS_W, 1.5, 3.0) == pytest.approx(321.25, rel=1e-12)
    # wholly after the samples: 210 W × 4 s
    assert integrate_power_j(TIMES_S, POWERS_W, 3.0, 7.0) == pytest.approx(840.0, rel=1e-12)


def test_power_before_the_first_sample_is_held() -> None:
    # 100 W held over [−0.5, 0]: 50 J; then 0.3 × (100 + 190)/2 = 43.5 J → 93.5 J
    assert integrate_power_j(TIMES_S, POWERS_W, -0.5, 0.3) == pytest.approx(93.5, rel=1e-12)
    # wholly before the samples: 100 W × 2 s
    assert integrate_power_j(TIMES_S, POWERS_W, -3.0, -1.0) == pytest.approx(200.0, rel=1e-12)


def test_window_edges_on_sample_times() -> None:
    # [0.3, 1.2]: 0.7 × (190 + 120)/2 = 108.5; 0.2 × (120 + 250)/2 = 37 → 145.5 J
    assert integrate_power_j(TIMES_S, POWERS_W, 0.3, 1.2) == pytest.approx(145.5, rel=1e-12)
    # the whole span: 0.3 × 145 + 0.7 × 155 + 0.2 × 185 + 0.8 × 230 = 43.5 + 108.5 + 37 + 184 = 373 J
    assert integrate_power_j(TIMES_S, POWERS_W, 0.0, 2.0) == pytest.approx(373.0, rel=1e-12)


def test_two_samples_are_enough_and_one_is_not() -> None:
    # P(0.5) = 100 + 100 × 0.5/2 = 125 W, P(1.5) = 175 W: 1 s × 150 W = 150 J
    assert integrate_power_j([0.0, 2.0], [100.0, 200.0], 0.5, 1.5) == pytest.approx(150.0, rel=1e-12)
    assert integrate_power_j([0.0], [100.0], 0.0, 1.0) is None
    assert integrate_power_j([], [], 0.0, 1.0) is None


def test_empty_or_reversed_window_is_zero_joules() -> None:
    assert integrate_power_j(TIMES_S, POWERS_W, 1.0, 1.0) == 0.0
    assert integrate_power_j(TIMES_S, POWERS_W, 1.5, 0.5) == 0.0


def test_counter_changes_skip_missing_readings() -> None:
    # 10→11, 11→13, 13→10 (a reset is a change too); the None between the two 13s is skipped
    assert count_changes([10, 10, 11, None, 13, None, 13, 10]) == 3
    assert count_changes([None, None]) == 0
    assert count_changes([4]) == 0


# -------------------------------------------------------------------- latency


def test_latency_percentiles_and_means_in_milliseconds() -> None:
    # ms sorted: 100 200 400 800 1600 (input unsorted); mean 3100/5 = 620
    # p50: rank 4 × 0.50 = 2   → 400
    # p90: rank 4 × 0.90 = 3.6 → 800 + (1600 − 800) × 0.6 = 1280
    # p99: rank 4 × 0.99 = 3.96 → 800 + 800 × 0.96 = 1568
    stats = latency_stats([0.8, 0.1, 1.6, 0.4, 0.2], "request", ttfts_s=[0.05, 0.15], itls_s=[0.01, 0.02, 0.06])
    assert stats is not None
    assert (stats.granularity, stats.count) == ("request", 5)
    assert stats.mean_ms == pytest.approx(620.0, rel=1e-12)
    assert stats.p50_ms == pytest.approx(400.0, rel=1e-12)
    assert stats.p90_ms == pytest.approx(1280.0, rel=1e-12)
    assert stats.p99_ms == pytest.approx(1568.0, rel=1e-12)
    assert (stats.min_ms, stats.max_ms) == pytest.approx((100.0, 1600.0), rel=1e-12)
    # TTFT ms 50, 150: mean 100; p50 rank 0.5 → 100; p90 rank 0.9 → 140; p99 rank 0.99 → 149
    ttft = (stats.ttft_mean_ms, stats.ttft_p50_ms, stats.ttft_p90_ms, stats.ttft_p99_ms)
    assert ttft == pytest.approx((100.0, 100.0, 140.0, 149.0), rel=1e-12)
    # ITL ms 10, 20, 60: mean 30; p50 rank 1 → 20; p90 rank 1.8 → 20 + 40 × 0.8 = 52; p99 rank 1.98 → 59.2
    itl = (stats.itl_mean_ms, stats.itl_p50_ms, stats.itl_p90_ms, stats.itl_p99_ms)
    assert itl == pytest.approx((30.0, 20.0, 52.0, 59.2), rel=1e-12)


def test_latency_granularity_is_batch_unless_request() -> None:
    stats = latency_stats([0.5], "batch")
    assert stats is not None
    assert stats.granularity == "batch"
    # one sample: every percentile is that sample
    assert (stats.p50_ms, stats.p99_ms, stats.mean_ms) == pytest.approx((500.0, 500.0, 500.0))
    assert (stats.ttft_mean_ms, stats.ttft_p50_ms, stats.ttft_p90_ms, stats.ttft_p99_ms) == (None,) * 4
    assert (stats.itl_mean_ms, stats.itl_p50_ms, stats.itl_p90_ms, stats.itl_p99_ms) == (None,) * 4


def test_percentile_between_ranks_and_at_the_ends() -> None:
    values = [1.0, 2.0, 4.0, 8.0]
    # rank 3 × 0.25 = 0.75 → 1 + 1 × 0.75 = 1.75; rank 3 × 0.5 = 1.5 → 2 + 2 × 0.5 = 3
    assert percentile(values, 25) == pytest.approx(1.75, rel=1e-12)
    assert percentile(values, 50) == pytest.approx(3.0, rel=1e-12)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 8.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


# ------------------------------------------------------------- rates and FLOPs


def test_rates_per_second_and_per_token() -> None:
    assert per_second(30, 4.0) == 7.5
    assert per_second(30, -1.0) == 0.0
    assert per_token(9.0, 4) == 2.25
    assert per_token(9.0, -1) is None


def test_flops_count_the_output_projection_for_output_tokens_only() -> None:
    # body: 2 × 1,000 × (30 + 10) = 80,000; output projection: 2 × 500 × 10 output tokens = 10,000 → 90,000 FLOPs
    # per output token 90,000 / 10 = 9,000
    f = flops_estimate(ParameterCounts(body=1_000, output_projection=500, source="model"), 30, 10)
    assert (f.total_flops, f.flops_per_output_token) == (90_000.0, 9_000.0)
    assert (f.non_embedding_params, f.output_projection_params, f.params_source) == (1_000, 500, "model")
    assert f.method.startswith("2 × non-embedding params × (input + output tokens) + 2 × output-projection params")
    assert f.confidence == "medium"
    # no output tokens: the body's 2 × 1,000 × 30 = 60,000 only, and no per-token figure
    no_output = flops_estimate(ParameterCounts(body=1_000, output_projection=500, source="config.json"), 30, 0)
    assert (no_output.total_flops, no_output.flops_per_output_token, no_output.params_source) == (
        60_000.0,
        None,
        "config.json",
    )
    unknown = flops_estimate(None, 30, 10)
    assert (unknown.total_flops, unknown.flops_per_output_token, unknown.confidence) == (None, None, "low")
    assert unknown.method.endswith("window only (parameter count unknown)")


# ------------------------------------------------------------------- warnings


def test_negative_adjusted_energy_warns_and_zero_does_not() -> None:
    warning = adjusted_negative_warning(-0.5)
    assert warning is not None
    assert warning.code == "adjusted_energy_negative"
    assert warning.severity == "warning"
    assert warning.message == (
        "baseline-adjusted energy is negative: idle power was higher than the average during the window "
        "(stale or disturbed baseline); use energy_total_j"
    )
    assert adjusted_negative_warning(0.0) is None
    assert adjusted_negative_warning(12.0) is None
    assert adjusted_negative_warning(None) is None


def test_short_window_thresholds_are_exclusive() -> None:
    # exactly 10 s and exactly 100 updates are long enough
    assert short_window_warnings(10.0, 100) == []
    (warning,) = short_window_warnings(9.5, 99)
    assert warning.message == (
        "the measured window lasted 9.50 s (< 10 s) and saw 99 energy-counter updates (< 100); "
        "energy resolution is coarse — raise n"
    )


def test_timeline_disagreement_sign_and_tolerance_edge() -> None:
    # (940 − 1000)/1000 × 100 = −6 %
    assert timeline_disagreement_pct(940.0, 1000.0) == pytest.approx(-6.0, rel=1e-12)
    assert timeline_disagreement_pct(940.0, None) is None
    assert disagreement_warning(None, 5.0) is None
    assert disagreement_warning(5.0, 5.0) is None  # at the tolerance: no warning
    warning = disagreement_warning(-6.0, 5.0)
    assert warning is not None
    assert "-6.0 %" in warning.message
    assert "tolerance 5.0 %" in warning.message


# --------------------------------------------------------------------- tokens


class _WordTokenizer:
    """One id per word; decoding joins words with single spaces (so a decoded text can differ from the input)."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert add_special_tokens is False
        return [len(w) for w in text.split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join("w" * i for i in ids)


def test_truncate_leaves_a_text_that_fits_untouched_and_cuts_one_that_does_not() -> None:
    tok = _WordTokenizer()
    # 3 words: fits in 3 (returned as given, double spaces kept), not in 2 (decoded from the first 2 ids)
    assert truncate_text(tok, "ab  cde f", 3) == "ab  cde f"
    assert truncate_text(tok, "ab  cde f", 2) == "ww www"
    assert count_text_tokens(tok, "ab  cde f") == 3


# ------------------------------------------------------------- meters' basics


def test_null_meter_window_and_reason(clock: FakeClock) -> None:
    meter = NullMeter("no GPU visible", clock=clock)
    assert meter.describe() == "none (no GPU visible)"
    clock.t = 3.0
    meter.start_window()
    clock.t = 7.5
    window = meter.stop_window()
    assert (window.source, window.method, window.energy_j, window.duration_s) == ("none", "unavailable", None, 4.5)
    assert [(w.code, w.message) for w in window.warnings] == [
        ("no_energy_meter", "energy was not measured: no GPU visible; energy fields are null")
    ]
    # closing again without opening: an empty window, not the old one
    clock.t = 9.0
    assert meter.stop_window().duration_s == 0.0
    assert NullMeter("x", clock=clock).stop_window().duration_s == 0.0


def test_weakest_method_and_fewest_counter_updates() -> None:
    assert weakest_method([]) == "unavailable"
    assert weakest_method(["counter", "estimated", "integrated_power"]) == "estimated"
    assert weakest_method(["counter", "integrated_power", "counter"]) == "integrated_power"
    assert weakest_method(["counter"]) == "counter"
    devices = (
        DeviceWindowEnergy(0, "a", 1.0, "counter", counter_updates=120),
        DeviceWindowEnergy(1, "b", 1.0, "counter", counter_updates=80),
        DeviceWindowEnergy(2, "c", 1.0, "counter", counter_updates=5, counter_limited=False),  # limited by reads
        DeviceWindowEnergy(3, "d", 1.0, "integrated_power", counter_updates=None),
    )
    window = WindowEnergy(source="nvml", method="counter", energy_j=4.0, duration_s=1.0, per_device=devices)
    assert window.counter_updates == 80
    only_read_limited = WindowEnergy(
        source="nvml", method="counter", energy_j=1.0, duration_s=1.0, per_device=devices[2:]
    )
    assert only_read_limited.counter_updates is None


# ------------------------------------------------------------ counter checks


def test_counter_went_backwards_and_held_between_reads_skip_missing_readings() -> None:
    assert went_backwards([5, None, 4]) is True
    assert went_backwards([5, 5, None, 6]) is False
    assert went_backwards([None, 3]) is False
    assert held_between_reads([5, None, 5, 6]) is True
    assert held_between_reads([5, 6, None, 7]) is False
    assert held_between_reads([]) is False


def test_sample_coverage_of_a_window() -> None:
    # window [0.1, 2.0], allowed gap 0.5; points used: 0.0 (last before), 0.2, 1.5, 1.6, then none after
    # gaps: [0, 0.2] → 0.1 s inside, covered; [0.2, 1.5] → 1.3 s, not covered; [1.5, 1.6] → 0.1 s covered;
    # [1.6, ∞) → 0.4 s inside, open-ended, not covered. Largest 1.3 s; covered 0.2 of 1.9 s
    cover = sample_coverage([1.6, 0.0, 1.5, 0.2], 0.1, 2.0, 0.5)  # unsorted input
    assert cover.largest_gap_s == pytest.approx(1.3, rel=1e-12)
    assert cover.covered_fraction == pytest.approx(0.2 / 1.9, rel=1e-12)


def test_sample_coverage_with_no_sample_beyond_either_edge() -> None:
    # one sample in the middle of [0, 1]: both halves end at the window edge, 0.5 s each, neither covered
    assert sample_coverage([0.5], 0.0, 1.0, 2.0) == Coverage(0.5, 0.0)
    # samples exactly on both edges: one 1 s gap, covered when the allowed gap is 1 s (inclusive)
    assert sample_coverage([0.0, 1.0], 0.0, 1.0, 1.0) == Coverage(1.0, 1.0)
    assert sample_coverage([0.0, 1.0], 0.0, 1.0, 0.99) == Coverage(1.0, 0.0)
    # an empty or reversed window is fully covered
    assert sample_coverage([], 2.0, 2.0, 0.5) == Coverage(0.0, 1.0)
    assert sample_coverage([], 3.0, 2.0, 0.5) == Coverage(0.0, 1.0)


def test_installed_probes_without_importing() -> None:
    from llenergymeasure.harness.energy.factory import installed

    assert installed("json") is True
    assert installed("llem_no_such_module_anywhere") is False


def test_integration_input_checks() -> None:
    with pytest.raises(ValueError, match=r"^times_s and powers_w differ in length$"):
        integrate_power_j([0.0, 1.0], [1.0], 0.0, 1.0)
    # two samples and an empty window: zero joules, not "unknown"
    assert integrate_power_j([0.0, 1.0], [5.0, 5.0], 1.0, 1.0) == 0.0


def test_rates_below_one_unit() -> None:
    assert per_second(5, 0.5) == 10.0  # 5 tokens in half a second
    assert per_token(3.0, 1) == 3.0  # one token carries all 3 J
    # 2 × 1,000 × (3 + 1) + 2 × 500 × 1 = 9,000 FLOPs over a single output token
    assert (
        flops_estimate(ParameterCounts(body=1_000, output_projection=500, source="model"), 3, 1).flops_per_output_token
        == 9_000.0
    )


def test_duplicate_sample_times_at_a_window_edge() -> None:
    # two readings at t = 1 (an edge read and a sampler tick at the same instant), 10 W then 20 W
    times, powers = [0.0, 1.0, 1.0, 2.0], [0.0, 10.0, 20.0, 30.0]
    # a window opening at t = 1 takes the first reading there (the pair that ends at 1): 1 s × (10 + 30)/2 = 20 J
    assert integrate_power_j(times, powers, 1.0, 2.0) == 20.0
    # a window closing on the last, duplicated time takes the last reading there: 1 s × (0 + 20)/2 = 10 J
    assert integrate_power_j([0.0, 1.0, 1.0], [0.0, 10.0, 20.0], 0.0, 1.0) == 10.0
