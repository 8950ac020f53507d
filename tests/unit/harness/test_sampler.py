"""The power timeline sampler: thread lifecycle, samples, its integral, throttling, and the parquet file."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness.energy.device import THROTTLE_POWER_THERMAL_MASK
from llenergymeasure.harness.energy.sampler import PowerSampler, throttled_between, timeline_energy_j

TRACE = PowerTrace(((0.0, 100.0), (10.0, 300.0)))  # a ramp 100 → 300 W over 10 s


def sampled(clock: FakeClock, devices: list[FakeNvmlDevice], until: float, step: float = 0.1) -> PowerSampler:
    sampler = PowerSampler(measured(devices), step, clock=clock)
    while clock.t <= until + 1e-9:
        sampler.sample_now()
        clock.advance(step)
    return sampler


def test_timeline_integral_of_two_devices(clock: FakeClock) -> None:
    flat = PowerTrace(((0.0, 50.0),))
    sampler = sampled(clock, [FakeNvmlDevice(TRACE, clock), FakeNvmlDevice(flat, clock, uuid="GPU-b")], until=10.0)
    # ramp: ∫ 2..8 of (100 + 20 t) dt = 600 + 10 × (64 − 4) = 1200 J; flat: 50 W × 6 s = 300 J
    assert timeline_energy_j(sampler, 2.0, 8.0) == pytest.approx(1500.0, rel=1e-6)


def test_timeline_without_power_samples_is_unknown(clock: FakeClock) -> None:
    sampler = sampled(clock, [FakeNvmlDevice(TRACE, clock, has_instant_power=False)], until=2.0)
    assert timeline_energy_j(sampler, 0.5, 1.5) is None


def test_throttling_is_detected_only_for_power_and_thermal_reasons(clock: FakeClock) -> None:
    idle_only = sampled(clock, [FakeNvmlDevice(TRACE, clock, throttle=0x1)], until=1.0)  # GpuIdle: not a throttle
    assert throttled_between(idle_only, 0.0, 1.0, THROTTLE_POWER_THERMAL_MASK) is False
    clock.t = 0.0
    hot = sampled(clock, [FakeNvmlDevice(TRACE, clock, throttle=0x20)], until=1.0)  # SW thermal slowdown
    assert throttled_between(hot, 0.0, 1.0, THROTTLE_POWER_THERMAL_MASK) is True


def test_parquet_has_every_sample_and_marks_the_window(clock: FakeClock, tmp_path: Path) -> None:
    sampler = sampled(clock, [FakeNvmlDevice(TRACE, clock)], until=2.0)
    n = sampler.write_parquet(tmp_path / "timeseries.parquet", window=(0.45, 1.55))
    table = pq.read_table(tmp_path / "timeseries.parquet")
    assert n == table.num_rows == 21
    assert {
        "timestamp",
        "elapsed_s",
        "device_index",
        "device_uuid",
        "power_w",
        "energy_counter_mj",
        "temperature_c",
        "sm_clock_mhz",
        "memory_used_mb",
        "utilization_pct",
        "throttle_reasons",
        "in_window",
    } <= set(table.column_names)
    power = table.column("power_w").to_pylist()
    assert power[0] == pytest.approx(100.0)
    assert power[10] == pytest.approx(120.0)  # t = 1.0 s on the ramp
    assert (
        sum(table.column("in_window").to_pylist()) == 11
    )  # t = 0.5 … 1.5 (edges between ticks: no float-rounding ambiguity)
    assert not (tmp_path / "timeseries.parquet.tmp").exists()
    assert "study_id" not in table.column_names  # no run identity given: no identity columns


def test_parquet_carries_the_run_identity(clock: FakeClock, tmp_path: Path) -> None:
    sampler = sampled(clock, [FakeNvmlDevice(TRACE, clock)], until=0.5)
    n = sampler.write_parquet(tmp_path / "t.parquet", window=(0.0, 0.5), run_ids=("s1", "002-abcd", 3))
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column("study_id").to_pylist() == ["s1"] * n
    assert table.column("experiment_id").to_pylist() == ["002-abcd"] * n
    assert table.column("cycle").to_pylist() == [3] * n


def test_background_thread_samples_on_a_grid_and_stops() -> None:
    device = FakeNvmlDevice(TRACE, time.monotonic)
    sampler = PowerSampler(measured([device]), 0.02)
    sampler.start()
    time.sleep(0.25)
    sampler.stop()
    count = len(sampler.samples())
    assert 6 <= count <= 16  # ~12 ticks in 0.25 s at 20 ms
    time.sleep(0.06)
    assert len(sampler.samples()) == count  # stopped for good
    sampler.stop()  # idempotent


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PowerSampler([], 0.0)
