"""The timeline file and the throttle check pinned exactly: every parquet column's values and types, the units
metadata, the window marks, and the throttle mask."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness.energy.sampler import PowerSampler, throttled_between

# 100 W until t = 10, then a ramp to 300 W at t = 20
TRACE = PowerTrace(((10.0, 100.0), (20.0, 300.0)))


def two_ticks(clock: FakeClock) -> PowerSampler:
    devices = measured(
        [FakeNvmlDevice(TRACE, clock, uuid="GPU-a", throttle=0x4), FakeNvmlDevice(TRACE, clock, uuid="GPU-b")], 2
    )
    sampler = PowerSampler(devices, 0.1, clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock.t)
    for t in (10.0, 12.5):
        clock.t = t
        sampler.sample_now()
    return sampler


def test_parquet_columns_types_and_units(clock: FakeClock, tmp_path: Path) -> None:
    sampler = two_ticks(clock)
    path = tmp_path / "timeseries.parquet"
    assert sampler.write_parquet(path, window=(12.0, 13.0)) == 4
    table = pq.read_table(path)
    assert table.schema.metadata == {
        b"llem.units": b"timestamp=unix s; power=W (instant); energy counter=mJ; memory=MiB"
    }
    types = {f.name: f.type for f in table.schema}
    assert types == {
        "timestamp": pa.float64(),
        "elapsed_s": pa.float64(),
        "device_index": pa.int32(),
        "device_uuid": pa.string(),
        "power_w": pa.float64(),
        "energy_counter_mj": pa.int64(),
        "temperature_c": pa.float32(),
        "sm_clock_mhz": pa.int32(),
        "memory_used_mb": pa.float64(),
        "utilization_pct": pa.int16(),
        "throttle_reasons": pa.int64(),
        "in_window": pa.bool_(),
    }
    rows = table.to_pylist()
    # tick 1 at t = 10 s (100 W), tick 2 at t = 12.5 s: 100 + 200 × 2.5/10 = 150 W; elapsed from the first row
    assert [(r["timestamp"], r["elapsed_s"], r["device_index"], r["device_uuid"]) for r in rows] == [
        (1_700_000_010.0, 0.0, 2, "GPU-a"),
        (1_700_000_010.0, 0.0, 3, "GPU-b"),
        (1_700_000_012.5, 2.5, 2, "GPU-a"),
        (1_700_000_012.5, 2.5, 3, "GPU-b"),
    ]
    assert [r["power_w"] for r in rows] == [100.0, 100.0, 150.0, 150.0]
    # energy counter: offset + ∫ power to the last 100 ms tick, in mJ: 100 W × 10 s = 1,000 J;
    # by 12.5 s: 1,000 J + 2.5 s × (100 + 150)/2 W = 1,312.5 J
    offset = 123_456_789
    assert [r["energy_counter_mj"] for r in rows] == [offset + 1_000_000] * 2 + [offset + 1_312_500] * 2
    assert [r["temperature_c"] for r in rows] == [40.099998474121094] * 2 + [40.125] * 2  # 40 + t/100 as float32
    assert [(r["sm_clock_mhz"], r["memory_used_mb"], r["utilization_pct"]) for r in rows] == [(1980, 512.0, 97)] * 4
    assert [r["throttle_reasons"] for r in rows] == [4, 0, 4, 0]
    assert [r["in_window"] for r in rows] == [False, False, True, True]
    assert not (tmp_path / "timeseries.parquet.tmp").exists()


def test_parquet_without_a_window_marks_nothing_and_an_empty_timeline_is_a_file(
    clock: FakeClock, tmp_path: Path
) -> None:
    sampler = two_ticks(clock)
    assert sampler.write_parquet(tmp_path / "a.parquet") == 4
    assert pq.read_table(tmp_path / "a.parquet").column("in_window").to_pylist() == [False] * 4
    # rows exactly on both window edges are inside it
    sampler.write_parquet(tmp_path / "edges.parquet", window=(10.0, 12.5))
    assert pq.read_table(tmp_path / "edges.parquet").column("in_window").to_pylist() == [True] * 4
    empty = PowerSampler([], 0.1, clock=clock)
    assert empty.write_parquet(tmp_path / "b.parquet") == 0
    typed = pq.read_table(tmp_path / "a.parquet").schema
    empty_table = pq.read_table(tmp_path / "b.parquet")
    assert empty_table.num_rows == 0
    assert empty_table.schema == typed  # column types even without rows
    # one device: elapsed time counts from the first row
    single = PowerSampler(measured([FakeNvmlDevice(TRACE, clock)]), 0.1, clock=clock)
    for t in (3.0, 3.5):
        clock.t = t
        single.sample_now()
    single.write_parquet(tmp_path / "c.parquet")
    assert pq.read_table(tmp_path / "c.parquet").column("elapsed_s").to_pylist() == [0.0, 0.5]


def test_throttle_mask_and_bounds(clock: FakeClock) -> None:
    sampler = two_ticks(clock)  # GPU-a reports 0x4 at t = 10 and 12.5, GPU-b 0
    assert throttled_between(sampler, 10.0, 10.0, 0x4) is True  # bounds inclusive
    assert throttled_between(sampler, 12.5, 20.0, 0x4 | 0x8) is True
    assert throttled_between(sampler, 0.0, 20.0, 0x8) is False
    assert throttled_between(sampler, 10.1, 12.4, 0x4) is None  # no sample in between


def test_timeline_integral_uses_samples_at_most_two_intervals_beyond_the_window(clock: FakeClock) -> None:
    from llenergymeasure.harness.energy.sampler import timeline_energy_j

    # samples at 0.75 (100 W), 1.25 (200 W), 1.75 (200 W), 2.25 (100 W); window [1.0, 2.0], interval 0.1:
    # only samples within 0.2 s of the window are used, so both edges hold 200 W → 200 W × 1 s = 200 J
    # (using the outer samples too would interpolate 150 W at each edge and give 175 J)
    trace = PowerTrace(((0.75, 100.0), (1.25, 200.0), (1.75, 200.0), (2.25, 100.0)))
    sampler = PowerSampler(measured([FakeNvmlDevice(trace, clock)]), 0.1, clock=clock)
    for t in (0.75, 1.25, 1.75, 2.25):
        clock.t = t
        sampler.sample_now()
    assert timeline_energy_j(sampler, 1.0, 2.0) == pytest.approx(200.0, rel=1e-12)


def test_timeline_margin_scales_with_a_long_interval(clock: FakeClock) -> None:
    from llenergymeasure.harness.energy.sampler import timeline_energy_j

    # interval 2 s: samples at 0 (100 W), 2 (200 W), 4 (100 W) are all within 4 s of [1.5, 2.5]
    # P(1.5) = P(2.5) = 175 W → 0.5 × (175 + 200)/2 × 2 = 187.5 J
    trace = PowerTrace(((0.0, 100.0), (2.0, 200.0), (4.0, 100.0)))
    sampler = PowerSampler(measured([FakeNvmlDevice(trace, clock)]), 2.0, clock=clock)
    for t in (0.0, 2.0, 4.0):
        clock.t = t
        sampler.sample_now()
    assert timeline_energy_j(sampler, 1.5, 2.5) == pytest.approx(187.5, rel=1e-12)


def _sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llem-power-sampler"]


def test_sampler_thread_reads_fully_first_then_every_aux_interval() -> None:
    device = FakeNvmlDevice(TRACE, time.monotonic)
    sampler = PowerSampler(measured([device]), 0.01, aux_interval_s=0.05)  # a full read every 5th tick
    assert sampler.aux_every == 5
    sampler.start()
    (thread,) = _sampler_threads()
    assert thread.daemon
    sampler.start()  # idempotent: still one thread
    assert _sampler_threads() == [thread]
    time.sleep(0.5)
    sampler.stop()
    rows = sampler.samples()
    full = [s.temperature_c is not None for s in rows]
    assert full[0] is True  # tick 0 reads everything
    assert False in full  # the ticks between read power and energy only
    assert True in full[1:]  # and a later full read comes round
    assert all(s.power_w is not None and s.energy_mj is not None for s in rows)
    assert _sampler_threads() == []
    # stop released the thread: the sampler can run again
    sampler.start()
    time.sleep(0.05)
    sampler.stop()
    assert len(sampler.samples()) > len(rows)


def test_sampler_without_devices_starts_no_thread() -> None:
    sampler = PowerSampler([], 0.01)
    sampler.start()
    assert _sampler_threads() == []
    sampler.stop()


def test_a_failing_read_stops_the_sampler_with_a_logged_error(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeNvmlDevice):
        def power_and_energy(self) -> tuple[int | None, int | None]:
            raise RuntimeError("driver gone")

    sampler = PowerSampler(measured([Broken(TRACE, time.monotonic)]), 0.01)
    with caplog.at_level("ERROR", logger="llenergymeasure.harness.energy.sampler"):
        sampler.start()
        deadline = time.monotonic() + 5.0
        while _sampler_threads() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert _sampler_threads() == []  # the thread ended on its own
    assert "power sample failed; the sampler stops" in caplog.messages
    sampler.stop()
