"""Idle baseline: measured with the meter, reused from the cache, and subtracted (hand computations)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness.baseline import (
    adjusted_energy_j,
    colder_baseline_warning,
    measure_idle,
    resolve_baseline,
    staleness_warning,
)
from llenergymeasure.harness.energy.null import NullMeter
from llenergymeasure.harness.energy.nvml import NvmlMeter
from llenergymeasure.harness.energy.sampler import PowerSampler
from llenergymeasure.schemas.config.sections import BaselineConfig
from llenergymeasure.schemas.job import CachedBaseline
from llenergymeasure.schemas.results import BaselineProvenance

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
# idle at 60 W until t = 35 s, then 250 W of load
TRACE = PowerTrace.steps((0.0, 60.0), (35.0, 250.0))


def meter_for(clock: FakeClock) -> NvmlMeter:
    mds = measured([FakeNvmlDevice(TRACE, clock)])
    return NvmlMeter(mds, PowerSampler(mds, 0.1, clock=clock), clock=clock)


def test_baseline_adjusted_energy_matches_the_hand_computation(clock: FakeClock) -> None:
    meter = meter_for(clock)
    clock.t = 0.05
    baseline = measure_idle(meter, 30.0, sleep=clock.sleep, now=lambda: NOW)
    # counter ticks at 0.0 and 30.0 bracket the idle window [0.05, 30.05]: 60 W × 30 s / 30 s
    assert baseline.provenance.method == "measured"
    assert baseline.provenance.energy_method == "counter"
    assert baseline.power_w == pytest.approx(60.0, rel=1e-6)

    clock.t = 40.05
    meter.start_window()
    clock.advance(100.0)
    window = meter.stop_window()
    # by hand: 250 W × 100 s = 25,000 J raw; 60 W × 100 s = 6,000 J idle; adjusted 19,000 J
    assert window.energy_j == pytest.approx(25_000.0, rel=1e-6)
    assert adjusted_energy_j(window.energy_j, baseline.power_w, window.duration_s) == pytest.approx(19_000.0, rel=1e-6)


def test_adjusted_energy_unknown_without_a_baseline_or_energy() -> None:
    assert adjusted_energy_j(None, 60.0, 10.0) is None
    assert adjusted_energy_j(1000.0, None, 10.0) is None
    assert adjusted_energy_j(1000.0, 60.0, 10.0) == 400.0


def test_fresh_cached_baseline_is_reused_with_its_age(clock: FakeClock) -> None:
    cached = CachedBaseline(
        power_w=58.5, measured_at=NOW - timedelta(seconds=600), duration_s=30.0, device_ids=[0], energy_method="counter"
    )
    slept: list[float] = []
    outcome = resolve_baseline(
        BaselineConfig(ttl_seconds=3600), cached, [0], meter_for(clock), sleep=slept.append, now=lambda: NOW
    )
    assert slept == []  # nothing measured
    p = outcome.provenance
    assert (p.method, p.power_w, p.age_s, p.ttl_s, p.energy_method) == ("cached", 58.5, 600.0, 3600.0, "counter")


@pytest.mark.parametrize(
    ("age_s", "devices", "why"),
    [(4000.0, [0], "expired"), (60.0, [0, 1], "other device set")],
)
def test_unusable_cached_baseline_is_measured_again(
    clock: FakeClock, age_s: float, devices: list[int], why: str
) -> None:
    cached = CachedBaseline(
        power_w=58.5,
        measured_at=NOW - timedelta(seconds=age_s),
        duration_s=30.0,
        device_ids=devices,
        energy_method="counter",
    )
    clock.t = 0.05
    outcome = resolve_baseline(
        BaselineConfig(duration_seconds=30.0, ttl_seconds=3600),
        cached,
        [0],
        meter_for(clock),
        sleep=clock.sleep,
        now=lambda: NOW,
    )
    assert outcome.provenance.method == "measured", why
    assert outcome.power_w == pytest.approx(60.0, rel=1e-6)
    assert outcome.provenance.ttl_s == 3600.0


def test_disabled_and_unavailable_baselines(clock: FakeClock) -> None:
    disabled = resolve_baseline(BaselineConfig(enabled=False), None, [0], meter_for(clock), sleep=clock.sleep)
    assert (disabled.provenance.method, disabled.power_w) == ("disabled", None)
    slept: list[float] = []
    unavailable = resolve_baseline(BaselineConfig(), None, [], NullMeter("no GPU", clock=clock), sleep=slept.append)
    assert (unavailable.provenance.method, unavailable.power_w, slept) == ("unavailable", None, [])


def test_stale_baseline_warning_when_older_than_ttl_at_window_end() -> None:
    measured_at = NOW - timedelta(seconds=100)
    fresh = resolve_like(measured_at, ttl=3600.0)
    assert staleness_warning(fresh, NOW) is None
    warning = staleness_warning(fresh, NOW + timedelta(seconds=4000))
    assert warning is not None
    assert warning.code == "stale_baseline"


def resolve_like(measured_at: datetime, ttl: float):  # a measured baseline's provenance
    from llenergymeasure.schemas.results import BaselineProvenance

    return BaselineProvenance(method="measured", power_w=60.0, duration_s=30.0, measured_at=measured_at, ttl_s=ttl)


def test_baseline_records_the_meter_the_device_state_and_the_temperature(clock: FakeClock) -> None:
    clock.t = 0.05
    outcome = resolve_baseline(
        BaselineConfig(duration_seconds=30.0),
        None,
        [0],
        meter_for(clock),
        sleep=clock.sleep,
        now=lambda: NOW,
        device_state="cuda_context",
        temperature=lambda: 41.5,
    )
    p = outcome.provenance
    assert (p.method, p.meter, p.device_state, p.temperature_c) == ("measured", "nvml", "cuda_context", 41.5)


def test_cached_baseline_from_another_meter_is_measured_again(clock: FakeClock) -> None:
    cached = CachedBaseline(
        power_w=58.5,
        measured_at=NOW - timedelta(seconds=60),
        duration_s=30.0,
        device_ids=[0],
        energy_method="counter",
        meter="zeus",
        temperature_c=35.0,
    )
    clock.t = 0.05
    outcome = resolve_baseline(BaselineConfig(), cached, [0], meter_for(clock), sleep=clock.sleep, now=lambda: NOW)
    assert outcome.provenance.method == "measured"  # the nvml meter never subtracts a zeus baseline
    same = cached.model_copy(update={"meter": "nvml"})
    reused = resolve_baseline(BaselineConfig(), same, [0], meter_for(clock), sleep=clock.sleep, now=lambda: NOW)
    p = reused.provenance
    assert (p.method, p.meter, p.temperature_c) == ("cached", "nvml", 35.0)


def test_cached_baseline_much_colder_than_the_window_start_is_warned() -> None:
    cached = BaselineProvenance(method="cached", power_w=60.0, temperature_c=30.0)
    # threshold 10 °C: 40 °C at window start is exactly 10 °C warmer → no warning; 40.5 °C → warning
    assert colder_baseline_warning(cached, 40.0) is None
    warning = colder_baseline_warning(cached, 40.5)
    assert warning is not None and warning.code == "cached_baseline_colder"
    assert "30 °C" in warning.message and "10 °C colder" in warning.message
    # a baseline measured in this run, or a temperature unknown on either side, is not compared
    assert colder_baseline_warning(cached.model_copy(update={"method": "measured"}), 80.0) is None
    assert colder_baseline_warning(cached.model_copy(update={"temperature_c": None}), 80.0) is None
    assert colder_baseline_warning(cached, None) is None
