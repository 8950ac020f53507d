"""Robustness of the device adapter, the NVML meter and the sampler: transient errors, resets, coverage, cost.

The devices are the simulated driver under the real pynvml adapter (`PynvmlProvider`), so the adapter's
error mapping runs exactly as on real NVML errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pynvml
import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness.energy.device import MAX_CONSECUTIVE_FAILURES, MeasuredDevice, PynvmlProvider
from llenergymeasure.harness.energy.nvml import NvmlMeter
from llenergymeasure.harness.energy.sampler import PowerSampler
from llenergymeasure.harness.preflight import new_process_warnings
from llenergymeasure.schemas.simulated_gpus import SimulatedGpuSpec
from llenergymeasure.simgpu import SimulatedNvml


def simulated(
    clock: FakeClock, faults: list[dict[str, object]], watts: float = 200.0
) -> tuple[SimulatedNvml, MeasuredDevice]:
    spec = SimulatedGpuSpec.model_validate(
        {"devices": [{"power": {"kind": "constant", "watts": watts}, "faults": faults}]}
    )
    nvml = SimulatedNvml(spec, clock=clock)
    dev = PynvmlProvider(nvml).device(0)
    return nvml, MeasuredDevice(0, dev.uuid, dev)


def test_one_transient_error_before_the_window_keeps_the_counter(clock: FakeClock) -> None:
    # the first energy read fails (a sampler tick before the window); the window must still use the counter
    _, dev = simulated(clock, [{"call": "energy", "nth": 1, "error": "unknown"}])
    sampler = PowerSampler([dev], 0.1, clock=clock)
    sampler.sample_now()  # energy read #1 fails here
    meter = NvmlMeter([dev], sampler, clock=clock)
    meter.start_window()
    for _ in range(30):
        clock.advance(0.1)
        sampler.sample_now(full=False)
    window = meter.stop_window()
    assert window.method == "counter"
    assert window.energy_j == pytest.approx(200.0 * 3.0, rel=1e-3)  # 200 W × 3 s
    read_errors = [w for w in window.warnings if w.code == "nvml_read_errors"]
    assert len(read_errors) == 1 and "1 NVML read(s) failed" in read_errors[0].message


def test_a_failed_edge_read_is_retried_at_once(clock: FakeClock) -> None:
    nvml, dev = simulated(clock, [{"call": "energy", "nth": 1, "error": "gpu_is_lost"}])
    assert dev.device.energy_mj() == 0  # read #1 failed, read #2 (the immediate retry) answered
    assert dev.device.read_failures() == {"energy": 1}
    assert nvml.nvmlDeviceGetHandleByIndex(0).calls["energy"] == 2


def test_only_repeated_failures_switch_a_reading_off(clock: FakeClock) -> None:
    faults = [{"call": "power", "nth": n, "error": "unknown"} for n in range(1, MAX_CONSECUTIVE_FAILURES + 1)]
    _, dev = simulated(clock, faults)
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        assert dev.device.power_instant_mw() is None
    _, ok = simulated(clock, faults[:-1])
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        ok.device.power_instant_mw()
    assert ok.device.power_instant_mw() == 200_000  # 4 failures in a row, then it answers again
    assert dev.device.power_instant_mw() is None  # the 5th failure in a row: given up
    assert dev.device.power_instant_mw() is None  # and not asked again
    assert dev.device.read_failures() == {"power_instant": MAX_CONSECUTIVE_FAILURES}


def test_counter_reset_inside_the_window_is_detected_from_the_samples(clock: FakeClock) -> None:
    # 100 W for 10 s; the counter restarts from 0 at 4 s and climbs back above its start value by the end
    trace = PowerTrace.steps((0.0, 100.0))
    device = FakeNvmlDevice(trace, clock, counter_offset_mj=500_000, tick_s=0.1)
    devs = measured([device])
    sampler = PowerSampler(devs, 0.1, clock=clock)
    meter = NvmlMeter(devs, sampler, clock=clock)
    meter.start_window()  # counter = 500 J
    for _ in range(100):
        clock.advance(0.1)
        if clock.t > 4.0:
            device.counter_offset_mj = -400_000  # at 10 s: 1,000 J − 400 J = 600 J > 500 J at the start
        sampler.sample_now(full=False)
    window = meter.stop_window()
    # edges alone would say 600 − 500 = 100 J (−90 %); the in-window samples show the reset → integrate 100 W × 10 s
    assert window.per_device[0].method == "integrated_power"
    assert window.energy_j == pytest.approx(1000.0, rel=1e-3)
    warning = next(w for w in window.warnings if w.code == "integrated_power")
    assert warning.severity == "warning" and "backwards" in warning.message


def test_integrated_fallback_refuses_when_the_sampler_died(clock: FakeClock) -> None:
    # no counter; the sampler thread died: only the two edge samples exist over a 10 s window
    device = FakeNvmlDevice(PowerTrace.steps((0.0, 100.0), (2.0, 300.0)), clock, has_counter=False)
    devs = measured([device])
    meter = NvmlMeter(devs, PowerSampler(devs, 0.1, clock=clock), clock=clock)
    meter.start_window()
    clock.advance(10.0)
    window = meter.stop_window()
    # true: 100 W × 2 s + 300 W × 8 s = 2,600 J; the two edge samples would say (100 + 300) / 2 × 10 = 2,000 J
    assert window.energy_j is None and window.method == "unavailable"
    warning = next(w for w in window.warnings if w.code == "energy_unavailable")
    assert "largest gap 10.00 s" in warning.message and "0 % of the window covered" in warning.message


def test_integrated_fallback_with_good_coverage_is_a_warning(clock: FakeClock) -> None:
    device = FakeNvmlDevice(PowerTrace.steps((0.0, 100.0), (5.0, 300.0)), clock, has_counter=False)
    devs = measured([device])
    sampler = PowerSampler(devs, 0.1, clock=clock)
    meter = NvmlMeter(devs, sampler, clock=clock)
    meter.start_window()
    for _ in range(100):
        clock.advance(0.1)
        sampler.sample_now(full=False)
    window = meter.stop_window()
    # by hand: 100 W × 5 s + 300 W × 5 s = 2,000 J (the 1 µs step edge costs < 0.01 %)
    assert window.energy_j == pytest.approx(2000.0, rel=0.01)
    warning = next(w for w in window.warnings if w.code == "integrated_power")
    assert warning.severity == "warning" and "100 % of the window covered" in warning.message


def test_counter_updates_limited_by_slow_reads_do_not_mark_a_long_window_coarse(clock: FakeClock) -> None:
    # counter updates every 20 ms; sampled once a second over 60 s: every read differs
    device = FakeNvmlDevice(PowerTrace.steps((0.0, 100.0)), clock, tick_s=0.02)
    devs = measured([device])
    sampler = PowerSampler(devs, 1.0, clock=clock)
    meter = NvmlMeter(devs, sampler, clock=clock)
    meter.start_window()
    for _ in range(60):
        clock.advance(1.0)
        sampler.sample_now(full=False)
    window = meter.stop_window()
    assert window.per_device[0].counter_updates == 60  # 59 in-window samples + 2 edges: 60 changes seen
    assert window.per_device[0].counter_limited is False
    assert window.counter_updates is None  # so short_window cannot fire on "60 < 100 updates"


def test_counter_updates_of_a_coarse_counter_are_counted_as_distinct_values(clock: FakeClock) -> None:
    # counter updates every 1 s, sampled every 100 ms over 5 s: 5 distinct updates, many equal reads
    device = FakeNvmlDevice(PowerTrace.steps((0.0, 100.0)), clock, tick_s=1.0)
    devs = measured([device])
    sampler = PowerSampler(devs, 0.1, clock=clock)
    meter = NvmlMeter(devs, sampler, clock=clock)
    clock.advance(0.5)
    meter.start_window()
    for _ in range(50):
        clock.advance(0.1)
        sampler.sample_now(full=False)
    window = meter.stop_window()
    assert window.counter_updates == 5  # updates at 1, 2, 3, 4, 5 s inside [0.5, 5.5]


def test_sampler_reads_each_device_with_one_driver_call_per_tick(clock: FakeClock) -> None:
    spec = SimulatedGpuSpec.model_validate({"devices": [{"power": {"kind": "constant", "watts": 1}}] * 2})
    nvml = SimulatedNvml(spec, clock=clock)
    provider = PynvmlProvider(nvml)
    devs = [MeasuredDevice(i, provider.device(i).uuid, provider.device(i)) for i in range(2)]
    calls_before = [nvml.nvmlDeviceGetHandleByIndex(i).calls["any"] for i in range(2)]
    sampler = PowerSampler(devs, 0.1, aux_interval_s=1.0, clock=clock)
    for k in range(20):  # what the thread does: full reads at k = 0 and 10
        sampler.sample_now(full=k % sampler.aux_every == 0)
    calls = [nvml.nvmlDeviceGetHandleByIndex(i).calls["any"] - calls_before[i] for i in range(2)]
    # 20 ticks × 1 field-values call + 2 full reads × 5 slow readings = 30 calls per device (was 7 × 20 = 140)
    assert calls == [30, 30]
    samples = sampler.device_samples(0)
    assert [s.power_w for s in samples] == [1.0] * 20
    assert [s.temperature_c is not None for s in samples] == [k % 10 == 0 for k in range(20)]


def test_processes_that_appear_during_the_window_are_foreign() -> None:
    assert new_process_warnings({0: {10}}, {0: {10}}) == []
    (warning,) = new_process_warnings({0: {10}, 1: set()}, {0: {10, 77}, 1: set()})
    assert warning.code == "foreign_processes" and "{0: [77]}" in warning.message


def test_not_supported_before_any_success_is_permanent(clock: FakeClock) -> None:
    no_counter = SimulatedGpuSpec.model_validate(
        {"devices": [{"power": {"kind": "constant", "watts": 1}, "energy_counter": False}]}
    )
    nvml = SimulatedNvml(no_counter, clock=clock)
    d = PynvmlProvider(nvml).device(0)
    assert d.energy_mj() is None and d.energy_mj() is None
    assert d.read_failures() == {}  # an absent counter is not a failure
    assert nvml.nvmlDeviceGetHandleByIndex(0).calls["energy"] == 1  # and it is not asked again


class NoEnergyField(SimulatedNvml):
    """A driver with the energy function but without the energy counter's field (older drivers)."""

    def _field(self, handle: Any, field_id: int, t: float, slot: Any) -> int:
        if field_id == pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
            return int(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return super()._field(handle, field_id, t, slot)


def test_a_missing_energy_field_does_not_switch_off_the_energy_counter(clock: FakeClock) -> None:
    spec = SimulatedGpuSpec.model_validate({"devices": [{"power": {"kind": "constant", "watts": 100}}]})
    dev = PynvmlProvider(NoEnergyField(spec, clock=clock)).device(0)
    clock.advance(1.0)
    assert dev.power_and_energy() == (100_000, None)
    assert dev.energy_mj() == 100_000  # 100 W × 1 s


class NoPowerField(SimulatedNvml):
    """A driver without the instant-power field (the energy counter's field is there)."""

    def _field(self, handle: Any, field_id: int, t: float, slot: Any) -> int:
        if field_id == pynvml.NVML_FI_DEV_POWER_INSTANT:
            return int(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return super()._field(handle, field_id, t, slot)


def test_a_reading_switched_off_leaves_the_other_fields_in_their_places(clock: FakeClock) -> None:
    spec = SimulatedGpuSpec.model_validate({"devices": [{"power": {"kind": "constant", "watts": 100}}]})
    nvml = NoPowerField(spec, clock=clock)
    dev = PynvmlProvider(nvml).device(0)
    clock.advance(1.0)
    assert dev.power_and_energy() == (None, 100_000)  # power: NOT_SUPPORTED, switched off for good
    clock.advance(1.0)
    asked: list[list[int]] = []
    ask = nvml.nvmlDeviceGetFieldValues
    nvml.nvmlDeviceGetFieldValues = lambda handle, ids: asked.append(list(ids)) or ask(handle, ids)  # type: ignore[method-assign]
    assert dev.power_and_energy() == (None, 200_000)  # the counter's value still lands in the energy slot
    assert asked == [[pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION]]  # the switched-off field is not asked again


class CountingDevice(FakeNvmlDevice):
    """Its counter advances by 1 J at every read. A read by `holder` is held until released; the next read by
    anyone else first runs `on_next_read` (to interleave threads deterministically)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(PowerTrace.steps((0.0, 100.0)), clock)
        self.value = 0
        self.holder: threading.Thread | None = None
        self.entered = threading.Event()
        self.release = threading.Event()
        self.on_next_read: Callable[[], None] | None = None

    def energy_mj(self) -> int | None:
        self.value += 1000
        return self.value

    def power_and_energy(self) -> tuple[int | None, int | None]:
        if threading.current_thread() is self.holder:
            self.entered.set()
            self.release.wait(5.0)
        elif self.on_next_read is not None:
            hook, self.on_next_read = self.on_next_read, None
            hook()
        return 100_000, self.energy_mj()


def test_a_sample_read_across_the_closing_edge_is_not_taken_for_a_counter_reset(clock: FakeClock) -> None:
    device = CountingDevice(clock)
    devs = measured([device])
    sampler = PowerSampler(devs, 0.1, clock=clock)
    meter = NvmlMeter(devs, sampler, clock=clock)
    meter.start_window()
    clock.t = 1.0
    reader = threading.Thread(target=sampler.sample_now, kwargs={"full": False})
    device.holder = reader
    reader.start()  # a tick stamped at 1.0 s, inside the window; its counter read is held
    assert device.entered.wait(5.0)
    clock.t = 2.0

    def finish_the_held_read() -> None:  # runs after the closing edge read e1, before the meter looks at samples
        clock.t = 2.5
        device.release.set()
        reader.join(5.0)

    device.on_next_read = finish_the_held_read
    window = meter.stop_window()
    held = [s for s in sampler.device_samples(0) if s.t_s == 1.0]
    assert held and held[0].energy_mj is not None and held[0].read_done_s == 2.5  # read after the edge: > e1
    assert window.per_device[0].method == "counter"  # not "went backwards"
    assert window.energy_j == pytest.approx(1.0)  # e0 = 2,000 mJ (2nd read), e1 = 3,000 mJ; the held read got 4,000
