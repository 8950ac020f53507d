"""The NVML meter's fallback and reports pinned exactly: coverage threshold, warning texts, read-error counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness.energy.nvml import NvmlMeter, SimulatedNvmlMeter
from llenergymeasure.harness.energy.sampler import PowerSampler

FLAT = PowerTrace(((0.0, 200.0),))  # 200 W throughout


@dataclass
class FailingDevice(FakeNvmlDevice):
    """A fake device whose driver-error counts the test sets."""

    failures: dict[str, int] = field(default_factory=dict)

    def read_failures(self) -> dict[str, int]:
        return dict(self.failures)


def meter_for(devices: list[FakeNvmlDevice], clock: FakeClock, interval_s: float, first: int = 0) -> NvmlMeter:
    mds = measured(devices, first)
    return NvmlMeter(mds, PowerSampler(mds, interval_s, clock=clock), clock=clock)


def test_describe_names_the_gpus_and_whether_they_are_simulated(clock: FakeClock) -> None:
    devices = measured([FakeNvmlDevice(FLAT, clock), FakeNvmlDevice(FLAT, clock)], 2)
    sampler = PowerSampler(devices, 0.1, clock=clock)
    assert NvmlMeter(devices, sampler, clock=clock).describe() == "nvml on GPUs [2, 3]"
    assert SimulatedNvmlMeter(devices, sampler, clock=clock).describe() == "nvml on simulated GPUs [2, 3]"
    # max gap: 3 intervals, at least 0.5 s
    assert NvmlMeter(devices, PowerSampler(devices, 0.25, clock=clock), clock=clock).max_gap_s == 0.75
    assert NvmlMeter(devices, sampler, clock=clock).max_gap_s == 0.5


def test_integration_accepted_at_exactly_ninety_percent_coverage(clock: FakeClock) -> None:
    # samples every 0.25 s from 0 to 9 s, then none until the window closes at 10 s: the 1 s gap is longer than
    # the allowed 0.75 s (3 × 0.25), so 9 of the 10 s are covered — exactly the 90 % needed
    meter = meter_for([FakeNvmlDevice(FLAT, clock, has_counter=False)], clock, 0.25)
    meter.start_window()
    for k in range(1, 37):
        clock.t = k * 0.25
        meter.sampler.sample_now()
    clock.t = 10.0
    window = meter.stop_window()
    assert (window.method, window.energy_j) == ("integrated_power", pytest.approx(2000.0))  # 200 W × 10 s
    d = window.per_device[0]
    assert (d.host_index, d.uuid, d.method, d.counter_updates, d.counter_limited) == (
        0,
        "GPU-fake-0",
        "integrated_power",
        None,
        False,
    )
    (warning,) = window.warnings
    assert (warning.code, warning.severity) == ("integrated_power", "warning")
    assert warning.message == (
        "GPU 0 has no total-energy counter (or it could not be read): energy integrated from 38 instant-power "
        "samples, largest gap 1.00 s, 90 % of the window covered"
    )


def test_integration_refused_when_samples_do_not_cover_the_window(clock: FakeClock) -> None:
    # only the two edge samples: one 2 s gap, nothing covered (a dead sampler thread)
    meter = meter_for([FakeNvmlDevice(FLAT, clock, has_counter=False)], clock, 0.1, first=5)
    clock.t = 10.0
    meter.start_window()
    clock.t = 12.0
    window = meter.stop_window()
    assert (window.method, window.energy_j, window.per_device[0].method) == ("unavailable", None, "unavailable")
    d = window.per_device[0]
    assert (d.host_index, d.uuid, d.counter_updates, d.counter_limited) == (5, "GPU-fake-0", None, False)
    (warning,) = window.warnings
    assert (warning.code, warning.severity) == ("energy_unavailable", "warning")
    assert warning.message == (
        "GPU 5 has no total-energy counter (or it could not be read), and its power samples cannot stand in for "
        "it (2 instant-power samples, largest gap 2.00 s, 0 % of the window covered; needs gaps ≤ 0.50 s over "
        "≥ 90 % of the window): its energy is unknown"
    )


def test_read_errors_are_reported_once_per_window_edge_with_counts(clock: FakeClock) -> None:
    device = FailingDevice(FLAT, clock)
    other = FailingDevice(FLAT, clock)
    meter = meter_for([device, other], clock, 0.1)
    clock.t = 1.0
    meter.start_window()
    device.failures = {"power_instant": 2, "energy": 1}
    clock.t = 2.0
    first = [w for w in meter.stop_window().warnings if w.code == "nvml_read_errors"]
    assert [(w.message, w.severity) for w in first] == [
        ("GPU 0: 3 NVML read(s) failed and were retried (energy 1, power_instant 2)", "info")
    ]
    # next window: only the failures since the previous edge count
    device.failures = {"power_instant": 2, "energy": 4}
    other.failures = {"temperature": 1}
    meter.start_window()
    clock.t = 3.0
    second = [w.message for w in meter.stop_window().warnings if w.code == "nvml_read_errors"]
    assert second == [
        "GPU 0: 3 NVML read(s) failed and were retried (energy 3)",
        "GPU 1: 1 NVML read(s) failed and were retried (temperature 1)",
    ]
    meter.start_window()
    clock.t = 4.0
    assert [w for w in meter.stop_window().warnings if w.code == "nvml_read_errors"] == []


def test_a_counter_that_never_moves_falls_back_with_its_update_count(clock: FakeClock) -> None:
    # the counter updates every 1000 s: constant over [10, 12]; power samples every 0.25 s stand in
    device = FakeNvmlDevice(FLAT, clock, uuid="GPU-slow", tick_s=1000.0)
    meter = meter_for([device], clock, 0.25, first=1)
    clock.t = 10.0
    meter.start_window()
    for k in range(1, 8):
        clock.t = 10.0 + k * 0.25
        meter.sampler.sample_now()
    clock.t = 12.0
    window = meter.stop_window()
    d = window.per_device[0]
    # 200 W × 2 s = 400 J; 0 counter changes, and equal consecutive reads: the counter limited the count
    assert (d.host_index, d.uuid, d.method, d.counter_updates, d.counter_limited) == (
        1,
        "GPU-slow",
        "integrated_power",
        0,
        True,
    )
    assert d.energy_j == pytest.approx(400.0)
    assert [w.code for w in window.warnings] == ["short_window", "integrated_power"]
    # the same counter with only the edge samples: refused, the count still reported
    clock.t = 20.0
    meter.start_window()
    clock.t = 22.0
    refused = meter.stop_window().per_device[0]
    assert (refused.energy_j, refused.method, refused.counter_updates, refused.counter_limited) == (
        None,
        "unavailable",
        0,
        True,
    )
