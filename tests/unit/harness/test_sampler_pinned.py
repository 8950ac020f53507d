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

from llenergymeasure.harness.energy.sampler import PowerSampler, next_tick, read_sample, throttled_between

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


@pytest.mark.parametrize(
    ("k", "now_s", "expected"),
    [
        (0, 0.01, 1),  # on time: the next grid point
        (0, 0.25, 1),  # exactly at the next grid point: not late
        (0, 0.3, 2),  # late by 0.05 s: tick 1 is missed, tick 2 (0.5 s) is ahead
        (0, 0.6, 3),  # late by 0.35 s: ticks 1 and 2 are skipped, never burst
        (4, 1.5, 7),  # late by exactly one interval: ticks 5 and 6 are skipped
    ],
)
def test_next_tick_stays_on_the_grid_and_skips_missed_ticks(k: int, now_s: float, expected: int) -> None:
    assert next_tick(k, 0.0, now_s, 0.25) == expected
    assert next_tick(k, 100.0, 100.0 + now_s, 0.25) == expected  # the grid starts at start_s


def test_sampler_defaults_are_100_ms_ticks_and_a_full_read_every_second() -> None:
    sampler = PowerSampler([])
    assert (sampler.interval_s, sampler.aux_every) == (0.1, 10)
    assert PowerSampler([], 0.5, aux_interval_s=0.1).aux_every == 1  # at least every tick


def test_bad_sampler_arguments_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"^interval_s must be positive$"):
        PowerSampler([], -0.1)
    with pytest.raises(ValueError, match=r"^a sampler process stamps samples with the system clocks: do not inject"):
        PowerSampler([], 0.1, wall_clock=lambda: 0.0, child={"driver": {}, "device_ids": [], "host_ids": []})


def test_read_sample_reads_everything_unless_told_and_stamps_the_end_only_with_a_clock(clock: FakeClock) -> None:
    (dev,) = measured([FakeNvmlDevice(TRACE, clock, throttle=0x4)])
    full = read_sample(dev, 1.0, 2.0)
    assert full.temperature_c is not None and full.throttle_reasons == 0x4 and full.read_done_s is None
    part = read_sample(dev, 1.0, 2.0, full=False, clock=lambda: 1.5)
    assert (part.temperature_c, part.sm_clock_mhz, part.memory_used_mb) == (None, None, None)
    assert (part.utilization_pct, part.throttle_reasons) == (None, None)
    assert part.read_done_s == 1.5 and part.power_w is not None


def test_parquet_says_where_the_sampler_ran_and_types_run_ids_without_a_study(tmp_path: Path) -> None:
    device = FakeNvmlDevice(TRACE, time.monotonic)
    sampler = PowerSampler(measured([device]), 0.01)
    sampler.start()
    time.sleep(0.05)
    sampler.stop()
    sampler.write_parquet(tmp_path / "t.parquet", run_ids=(None, "000-abcd", 1))
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.schema.metadata[b"llem.sampler"] == b"thread"
    types = {name: table.schema.field(name).type for name in ("study_id", "experiment_id", "cycle")}
    assert types == {"study_id": pa.string(), "experiment_id": pa.string(), "cycle": pa.int32()}
    assert not list(tmp_path.glob("*.tmp"))
