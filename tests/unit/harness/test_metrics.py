"""Pure metric functions and numerics, checked against independent computations (numpy, hand arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

from llenergymeasure.harness.energy.integrate import count_changes, integrate_power_j
from llenergymeasure.harness.metrics import (
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


def test_percentile_matches_numpy() -> None:
    values = sorted(np.random.default_rng(7).gamma(2.0, 50.0, size=37).tolist())
    for q in (0, 12.5, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_latency_stats_in_milliseconds() -> None:
    lat_s = [0.1, 0.2, 0.3, 0.4]
    stats = latency_stats(lat_s, "request", ttfts_s=[0.01, 0.03])
    assert stats is not None
    assert (stats.count, stats.granularity) == (4, "request")
    assert stats.mean_ms == pytest.approx(250.0)
    assert stats.p50_ms == pytest.approx(250.0)
    assert stats.p90_ms == pytest.approx(float(np.percentile([100, 200, 300, 400], 90)))
    assert (stats.min_ms, stats.max_ms) == pytest.approx((100.0, 400.0))
    assert stats.ttft_mean_ms == pytest.approx(20.0)
    assert stats.itl_mean_ms is None
    assert latency_stats([], "batch") is None


def test_flops_count_the_output_projection_once_per_output_token() -> None:
    params = ParameterCounts(body=82_240, output_projection=64_000, source="model")
    f = flops_estimate(params, input_tokens=300, output_tokens=100)
    # by hand: 2 × 82,240 × 400 = 65,792,000 body; 2 × 64,000 × 100 = 12,800,000 lm_head → 78,592,000
    assert f.total_flops == 78_592_000
    assert f.flops_per_output_token == 785_920
    assert (f.non_embedding_params, f.output_projection_params, f.params_source) == (82_240, 64_000, "model")
    assert "output-projection" in f.method
    assert f.confidence == "medium"
    unknown = flops_estimate(None, 300, 100)
    assert (unknown.total_flops, unknown.confidence) == (None, "low")


def test_rates_and_per_token_never_invent_zeros() -> None:
    assert per_second(500, 10.0) == 50.0
    assert per_second(5, 0.0) == 0.0
    assert per_token(100.0, 400) == 0.25
    assert per_token(None, 400) is None
    assert per_token(100.0, 0) is None


def test_short_window_thresholds() -> None:
    assert short_window_warnings(12.0, 120) == []
    assert [w.code for w in short_window_warnings(9.99, 120)] == ["short_window"]
    assert [w.code for w in short_window_warnings(12.0, 99)] == ["short_window"]
    assert short_window_warnings(12.0, None) == []
    both = short_window_warnings(1.0, 3)[0].message
    assert "1.00 s" in both
    assert "3 energy-counter updates" in both


def test_timeline_cross_check() -> None:
    assert timeline_disagreement_pct(1050.0, 1000.0) == pytest.approx(5.0)
    assert timeline_disagreement_pct(None, 1000.0) is None
    assert timeline_disagreement_pct(10.0, 0.0) is None
    assert disagreement_warning(5.0, 10.0) is None
    warning = disagreement_warning(-12.0, 10.0)
    assert warning is not None
    assert warning.code == "timeline_counter_disagreement"


def test_trapezoid_integration_is_exact_for_a_linear_ramp() -> None:
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    powers = [100.0, 150.0, 200.0, 250.0, 300.0]  # P(t) = 100 + 50 t
    # ∫ from 0.5 to 3.5 of (100 + 50 t) dt = 100 × 3 + 25 × (3.5² − 0.5²) = 300 + 300 = 600
    assert integrate_power_j(times, powers, 0.5, 3.5) == pytest.approx(600.0)
    # edges outside the samples hold the nearest sample's power: 100 W × 1 s before t = 0
    assert integrate_power_j(times, powers, -1.0, 0.0) == pytest.approx(100.0)
    assert integrate_power_j([0.0], [100.0], 0.0, 1.0) is None
    with pytest.raises(ValueError):
        integrate_power_j([0.0, 1.0], [1.0], 0.0, 1.0)


def test_count_changes() -> None:
    assert count_changes([5, 5, 6, 6, 6, 9, None, 9, 10]) == 3
    assert count_changes([7, 7]) == 0
    assert count_changes([]) == 0
