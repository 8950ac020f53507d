"""Known-trace tests of the NVML meter: a fake device fed a piecewise power trace, a counter ticking every 100 ms."""

from __future__ import annotations

import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness.energy.nvml import NvmlMeter
from llenergymeasure.harness.energy.sampler import PowerSampler

# idle 60 W, a step to 300 W, a ramp down to 150 W, a step to 220 W
TRACE = PowerTrace(((0.0, 60.0), (10.0, 60.0), (10.000001, 300.0), (100.0, 300.0), (200.0, 150.0), (200.000001, 220.0)))


def run_window(meter: NvmlMeter, sampler: PowerSampler, clock: FakeClock, t0: float, t1: float, step: float = 0.1):
    """Open the window at t0, sample every `step` seconds (what the sampler thread does), close it at t1."""
    clock.t = t0
    meter.start_window()
    while clock.t + step < t1:
        clock.advance(step)
        sampler.sample_now()
    clock.t = t1
    return meter.stop_window()


def make(devices: list[FakeNvmlDevice], clock: FakeClock) -> tuple[NvmlMeter, PowerSampler]:
    mds = measured(devices)
    sampler = PowerSampler(mds, 0.1, clock=clock)
    return NvmlMeter(mds, sampler, clock=clock), sampler


def test_trace_integral_is_what_the_fake_reports() -> None:
    # the analytic integral itself, by hand: 60 W × 10 s + 300 W × 90 s + (300 + 150)/2 × 100 s + 220 W × 100 s
    assert TRACE.energy(0.0, 300.0) == pytest.approx(600 + 27_000 + 22_500 + 22_000, rel=1e-6)


def test_counter_path_within_0_1_percent_of_the_analytic_integral(clock: FakeClock) -> None:
    meter, sampler = make([FakeNvmlDevice(TRACE, clock)], clock)
    window = run_window(meter, sampler, clock, 5.03, 305.03)
    expected = TRACE.energy(5.03, 305.03)
    assert window.method == "counter"
    assert window.source == "nvml"
    assert window.energy_j is not None
    assert abs(window.energy_j - expected) / expected < 0.001
    assert window.duration_s == pytest.approx(300.0)
    (device,) = window.per_device
    assert device.method == "counter"
    assert device.counter_updates == pytest.approx(3000, abs=2)  # one update per 100 ms tick
    assert not [w for w in window.warnings if w.severity == "warning"]


def test_integrated_power_path_within_2_percent(clock: FakeClock) -> None:
    device = FakeNvmlDevice(TRACE, clock, has_counter=False)
    meter, sampler = make([device], clock)
    window = run_window(meter, sampler, clock, 5.03, 305.03)
    expected = TRACE.energy(5.03, 305.03)
    assert window.method == "integrated_power"
    assert window.energy_j is not None
    assert abs(window.energy_j - expected) / expected < 0.02
    assert window.per_device[0].counter_updates is None
    assert any(w.code == "integrated_power" for w in window.warnings)


def test_window_shorter_than_one_counter_tick_warns_and_falls_back(clock: FakeClock) -> None:
    meter, sampler = make([FakeNvmlDevice(TRACE, clock)], clock)
    window = run_window(meter, sampler, clock, 50.01, 50.06, step=0.01)  # inside the tick [50.0, 50.1)
    codes = [w.code for w in window.warnings]
    assert "short_window" in codes
    assert window.per_device[0].counter_updates == 0
    assert window.method == "integrated_power"  # never a silent 0 J
    assert window.energy_j == pytest.approx(300.0 * 0.05, rel=0.01)


def test_multi_device_sums_and_per_device_values(clock: FakeClock) -> None:
    other = PowerTrace(((0.0, 90.0), (50.0, 90.0), (150.0, 410.0)))  # a ramp 90 → 410 W
    devices = [
        FakeNvmlDevice(TRACE, clock, uuid="GPU-a"),
        FakeNvmlDevice(other, clock, uuid="GPU-b", tick_s=0.1, counter_offset_mj=9_000_000),
    ]
    meter, sampler = make(devices, clock)
    window = run_window(meter, sampler, clock, 20.07, 220.07)
    expected = [TRACE.energy(20.07, 220.07), other.energy(20.07, 220.07)]
    assert [d.uuid for d in window.per_device] == ["GPU-a", "GPU-b"]
    assert [d.host_index for d in window.per_device] == [0, 1]
    for got, want in zip(window.per_device, expected, strict=True):
        assert got.energy_j is not None
        assert abs(got.energy_j - want) / want < 0.001
    assert window.energy_j == pytest.approx(sum(d.energy_j or 0.0 for d in window.per_device))
    assert abs((window.energy_j or 0.0) - sum(expected)) / sum(expected) < 0.001


def test_one_unknown_device_makes_the_total_unknown(clock: FakeClock) -> None:
    devices = [FakeNvmlDevice(TRACE, clock), FakeNvmlDevice(TRACE, clock, has_counter=False, has_instant_power=False)]
    meter, sampler = make(devices, clock)
    window = run_window(meter, sampler, clock, 20.0, 40.0)
    assert window.per_device[0].energy_j is not None
    assert window.per_device[1].energy_j is None
    assert window.per_device[1].method == "unavailable"
    assert window.energy_j is None  # a partial sum would under-report
    assert window.method == "unavailable"
    assert "energy_unavailable" in [w.code for w in window.warnings]


def test_counter_reset_falls_back_to_integration(clock: FakeClock) -> None:
    device = FakeNvmlDevice(TRACE, clock)
    meter, sampler = make([device], clock)
    clock.t = 20.0
    meter.start_window()
    device.counter_offset_mj = -10_000_000  # driver reloaded: the counter restarts lower
    while clock.t < 40.0:
        clock.advance(0.1)
        sampler.sample_now()
    window = meter.stop_window()
    assert window.method == "integrated_power"
    assert window.energy_j == pytest.approx(TRACE.energy(20.0, clock.t), rel=0.02)


def test_stop_without_start_is_an_error(clock: FakeClock) -> None:
    meter, _ = make([FakeNvmlDevice(TRACE, clock)], clock)
    with pytest.raises(RuntimeError):
        meter.stop_window()
