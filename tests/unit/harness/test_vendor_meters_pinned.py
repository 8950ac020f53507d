"""The zeus and CodeCarbon adapters pinned exactly: index mapping, sums, conversions, errors and warnings.

The vendor packages are replaced at their import by small fakes that record what
the adapter asked for and return known readings (kWh for CodeCarbon, J for zeus).
"""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.errors import BackendError

TRACE = PowerTrace(((0.0, 100.0),))


# ----------------------------------------------------------------------- zeus


class FakeMonitor:
    """Records begin/end keys; `end_window` returns the class's `measurement`."""

    last: ClassVar[FakeMonitor | None] = None
    measurement: ClassVar[Any] = None
    fail: ClassVar[str | None] = None

    def __init__(self, gpu_indices: list[int]) -> None:
        if FakeMonitor.fail:
            raise RuntimeError(FakeMonitor.fail)
        self.gpu_indices = gpu_indices
        self.calls: list[tuple[str, str]] = []
        FakeMonitor.last = self

    def begin_window(self, key: str) -> None:
        self.calls.append(("begin", key))

    def end_window(self, key: str) -> Any:
        self.calls.append(("end", key))
        return FakeMonitor.measurement


@pytest.fixture
def zeus(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = types.ModuleType("zeus.monitor")
    module.ZeusMonitor = FakeMonitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeus", types.ModuleType("zeus"))
    monkeypatch.setitem(sys.modules, "zeus.monitor", module)
    monkeypatch.setattr(FakeMonitor, "fail", None)
    from llenergymeasure.harness.energy import zeus as zeus_module

    return zeus_module


def test_zeus_window_sums_gpus_cpu_and_dram(zeus: Any, clock: FakeClock) -> None:
    FakeMonitor.measurement = types.SimpleNamespace(
        time=12.5, gpu_energy={0: 1000.0, 1: 234.5}, cpu_energy={0: 50.0, 1: 25.0}, dram_energy={0: 10.0}
    )
    devices = measured([FakeNvmlDevice(TRACE, clock, uuid="GPU-a"), FakeNvmlDevice(TRACE, clock, uuid="GPU-b")], 3)
    meter = zeus.ZeusMeter([0, 1], devices, clock=clock, environ={})
    assert meter.describe() == "zeus on GPUs [3, 4]"
    meter.start_window()
    window = meter.stop_window()
    assert FakeMonitor.last is not None
    assert FakeMonitor.last.calls == [("begin", "llem"), ("end", "llem")]
    assert [(d.host_index, d.uuid, d.energy_j, d.method) for d in window.per_device] == [
        (3, "GPU-a", 1000.0, "counter"),
        (4, "GPU-b", 234.5, "counter"),
    ]
    # GPUs 1000 + 234.5; CPU 50 + 25; DRAM 10; zeus's own window length
    assert (window.energy_j, window.cpu_energy_j, window.ram_energy_j) == (1234.5, 75.0, 10.0)
    assert (window.source, window.method, window.duration_s, window.warnings) == ("zeus", "counter", 12.5, ())


def test_zeus_window_length_from_our_clock_when_zeus_gives_none(zeus: Any, clock: FakeClock) -> None:
    FakeMonitor.measurement = types.SimpleNamespace(gpu_energy={0: 10.0})
    meter = zeus.ZeusMeter([0], measured([FakeNvmlDevice(TRACE, clock)]), clock=clock, environ={})
    clock.t = 5.0
    meter.start_window()
    clock.t = 7.25
    window = meter.stop_window()
    assert (window.duration_s, window.cpu_energy_j, window.ram_energy_j) == (2.25, None, None)
    clock.t = 9.0
    assert meter.stop_window().duration_s == 0.0  # no window open: nothing elapsed


def test_zeus_missing_gpu_reading_makes_the_total_unavailable(zeus: Any, clock: FakeClock) -> None:
    FakeMonitor.measurement = types.SimpleNamespace(time=1.0, gpu_energy=None, cpu_energy={}, dram_energy={})
    meter = zeus.ZeusMeter([0], measured([FakeNvmlDevice(TRACE, clock)]), clock=clock, environ={})
    meter.start_window()
    window = meter.stop_window()
    assert (window.energy_j, window.method, window.per_device[0].energy_j) == (None, "unavailable", None)
    assert (window.cpu_energy_j, window.ram_energy_j) == (None, None)


def test_zeus_nonpositive_delta_message(zeus: Any, clock: FakeClock) -> None:
    FakeMonitor.measurement = types.SimpleNamespace(time=1.0, gpu_energy={0: -5.0})
    meter = zeus.ZeusMeter([0], measured([FakeNvmlDevice(TRACE, clock)], 7), clock=clock, environ={})
    meter.start_window()
    (warning,) = meter.stop_window().warnings
    assert warning.message == (
        "zeus measured -5.0 J on GPU 7 over the window (a counter that did not move, wrapped or was reset): "
        "that GPU's energy is unavailable"
    )


def test_zeus_device_lists_must_match(zeus: Any, clock: FakeClock) -> None:
    FakeMonitor.measurement = types.SimpleNamespace(time=1.0, gpu_energy={0: 1.0, 1: 1.0})
    meter = zeus.ZeusMeter([0, 1], measured([FakeNvmlDevice(TRACE, clock)]), clock=clock, environ={})
    meter.start_window()
    with pytest.raises(ValueError, match="zip"):
        meter.stop_window()


def test_zeus_indices_follow_cuda_visible_devices(zeus: Any) -> None:
    assert zeus.zeus_indices([2, 5], ["a", "b"], {}) == [2, 5]
    assert zeus.zeus_indices([2, 5], ["a", "b"], {"CUDA_VISIBLE_DEVICES": "  "}) == [2, 5]
    # entries are trimmed; a UUID entry matches the device's UUID; the first match wins
    assert zeus.zeus_indices([2, 5], ["GPU-x", None], {"CUDA_VISIBLE_DEVICES": "5, GPU-x ,2"}) == [1, 0]
    assert zeus.zeus_indices([2], [None], {"CUDA_VISIBLE_DEVICES": "2,2"}) == [0]
    with pytest.raises(BackendError) as info:
        zeus.zeus_indices([4], [None], {"CUDA_VISIBLE_DEVICES": "0,1"})
    assert info.value.message == "GPU 4 of the set is not in CUDA_VISIBLE_DEVICES=0,1: zeus cannot measure it"
    assert info.value.fix == "leave CUDA_VISIBLE_DEVICES to the harness, or use energy.backend: nvml"
    with pytest.raises(ValueError, match="zip"):
        zeus.zeus_indices([0, 1], ["a"], {"CUDA_VISIBLE_DEVICES": "0,1"})


def test_zeus_meter_reads_the_process_environment_by_default(
    zeus: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "9,4")
    zeus.ZeusMeter([4], measured([FakeNvmlDevice(TRACE, clock)]), clock=clock)
    assert FakeMonitor.last is not None
    assert FakeMonitor.last.gpu_indices == [1]


def test_zeus_errors_name_the_fix(zeus: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = measured([FakeNvmlDevice(TRACE, clock)])
    monkeypatch.setattr(FakeMonitor, "fail", "no NVML")
    with pytest.raises(BackendError) as info:
        zeus.ZeusMeter([3], devices, clock=clock, environ={})
    assert info.value.message == "zeus could not open GPUs [3]: no NVML"
    monkeypatch.setitem(sys.modules, "zeus.monitor", None)  # not installed: the import fails
    with pytest.raises(BackendError) as info:
        zeus.ZeusMeter([3], devices, clock=clock, environ={})
    assert info.value.message == "energy.backend is zeus but zeus is not installed"
    assert info.value.fix == "pip install 'llenergymeasure[zeus]'"


# ----------------------------------------------------------------- codecarbon


class FakeTracker:
    """Records its keyword arguments; reports the class's kWh readings on stop."""

    made: ClassVar[list[FakeTracker]] = []
    readings: ClassVar[dict[str, float | None]] = {}

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.started = False
        self.final_emissions_data: Any = None
        FakeTracker.made.append(self)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.final_emissions_data = types.SimpleNamespace(**FakeTracker.readings)


@pytest.fixture
def codecarbon(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = types.ModuleType("codecarbon")
    module.OfflineEmissionsTracker = FakeTracker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "codecarbon", module)
    FakeTracker.made = []
    from llenergymeasure.harness.energy import codecarbon as codecarbon_module

    return codecarbon_module


def test_codecarbon_tracker_is_offline_quiet_and_pinned_to_the_gpus(codecarbon: Any, clock: FakeClock) -> None:
    FakeTracker.readings = {"cpu_energy": 0.0, "ram_energy": 0.0, "gpu_energy": 0.001}
    meter = codecarbon.CodeCarbonMeter([0, 2], country_iso_code="FRA", clock=clock)
    meter.start_window()
    (tracker,) = FakeTracker.made
    assert tracker.started
    assert tracker.kwargs == {
        "country_iso_code": "FRA",
        "save_to_file": False,
        "log_level": "error",
        "measure_power_secs": 1,
        "gpu_ids": [0, 2],
    }
    clock.advance(4.0)
    window = meter.stop_window()
    # 0.001 kWh × 3.6e6 J/kWh = 3,600 J over 4 s
    assert (window.energy_j, window.duration_s, window.method, window.scope) == (3600.0, 4.0, "estimated", "gpus")
    assert window.source == "codecarbon"
    assert [w.code for w in window.warnings] == ["estimated_energy"]
    assert window.warnings[0].message == "energy is a CodeCarbon estimate (TDP/RAM models), not a measurement"
    # a tracker measures one cycle: the next window needs start_window again
    with pytest.raises(RuntimeError, match=r"^stop_window\(\) without start_window\(\)$"):
        meter.stop_window()


def test_codecarbon_without_gpus_uses_usa_and_no_gpu_ids(codecarbon: Any, clock: FakeClock) -> None:
    FakeTracker.readings = {"cpu_energy": 0.002, "ram_energy": None, "gpu_energy": None}
    meter = codecarbon.CodeCarbonMeter([], clock=clock)
    meter.start_window()
    assert FakeTracker.made[0].kwargs == {
        "country_iso_code": "USA",
        "save_to_file": False,
        "log_level": "error",
        "measure_power_secs": 1,
    }
    clock.advance(3.0)
    window = meter.stop_window()
    # CPU 0.002 kWh = 7,200 J; RAM unknown counts as 0 in the host figure
    assert (window.energy_j, window.cpu_energy_j, window.ram_energy_j) == (7200.0, 7200.0, None)
    assert (window.scope, window.method) == ("host_cpu_ram", "estimated")
    host = window.warnings[1]
    assert (host.code, host.severity) == ("whole_host_estimate", "warning")
    assert host.message == (
        "no GPU: energy_total_j and the J/token figures are CodeCarbon's estimate for the whole machine's CPU and "
        "RAM over the window (TDP/RAM models; every other process and the idle draw included), not the energy of "
        "the inference alone"
    )


def test_codecarbon_without_a_cpu_reading_has_no_host_estimate(codecarbon: Any, clock: FakeClock) -> None:
    FakeTracker.readings = {"ram_energy": 0.001}
    meter = codecarbon.CodeCarbonMeter([], clock=clock)
    meter.start_window()
    window = meter.stop_window()
    assert (window.energy_j, window.method, window.cpu_energy_j, window.ram_energy_j) == (
        None,
        "unavailable",
        None,
        3600.0,
    )
    assert [w.code for w in window.warnings] == ["estimated_energy"]


@pytest.mark.parametrize(
    ("gpu_kwh", "said"), [(None, "no"), (0.0, "0.0"), (-0.001, "-3600.0")], ids=["missing", "zero", "negative"]
)
def test_codecarbon_unreadable_gpus_are_unavailable(codecarbon: Any, clock: FakeClock, gpu_kwh: Any, said: str) -> None:
    FakeTracker.readings = {"cpu_energy": 0.001, "ram_energy": 0.001, "gpu_energy": gpu_kwh}
    meter = codecarbon.CodeCarbonMeter([1], clock=clock)
    clock.t = 2.0
    meter.start_window()
    clock.t = 14.5
    window = meter.stop_window()
    assert (window.energy_j, window.method, window.scope) == (None, "unavailable", "gpus")
    assert (window.cpu_energy_j, window.ram_energy_j) == (3600.0, 3600.0)
    assert window.warnings[1].code == "codecarbon_gpu_unavailable"
    assert window.warnings[1].message == (
        f"CodeCarbon reported {said} GPU energy for GPUs [1] over a 12.5 s window (it could not read them): "
        "GPU energy is unavailable — use energy.backend: nvml"
    )


def test_codecarbon_not_installed(codecarbon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    with pytest.raises(BackendError) as info:
        codecarbon.CodeCarbonMeter([0])
    assert info.value.message == "energy.backend is codecarbon but codecarbon is not installed"
    assert info.value.fix == "pip install 'llenergymeasure[codecarbon]'"


def test_codecarbon_small_gpu_figures_and_a_missing_ram_reading(codecarbon: Any, clock: FakeClock) -> None:
    # 2e-7 kWh × 3.6e6 J/kWh = 0.72 J: small but a reading
    FakeTracker.readings = {"cpu_energy": 0.001, "gpu_energy": 2e-7}
    meter = codecarbon.CodeCarbonMeter([0], clock=clock)
    meter.start_window()
    window = meter.stop_window()
    assert (window.energy_j, window.method) == (pytest.approx(0.72), "estimated")
    assert (window.cpu_energy_j, window.ram_energy_j) == (3600.0, None)


def test_codecarbon_stop_on_a_fresh_meter_is_an_error(codecarbon: Any, clock: FakeClock) -> None:
    with pytest.raises(RuntimeError, match=r"^stop_window\(\) without start_window\(\)$"):
        codecarbon.CodeCarbonMeter([0], clock=clock).stop_window()


def test_zeus_keeps_small_positive_readings(zeus: Any, clock: FakeClock) -> None:
    FakeMonitor.measurement = types.SimpleNamespace(time=1.0, gpu_energy={0: 0.5})
    meter = zeus.ZeusMeter([0], measured([FakeNvmlDevice(TRACE, clock)]), clock=clock, environ={})
    assert meter.device_ids == [0]
    meter.start_window()
    window = meter.stop_window()
    assert (window.energy_j, window.warnings) == (0.5, ())


def test_factory_hands_its_clock_to_every_meter(
    zeus: Any, codecarbon: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llenergymeasure.harness.energy.factory import create_meter

    devices = measured([FakeNvmlDevice(TRACE, clock)])
    clock.t = 42.0
    nvml = create_meter("nvml", device_ids=[0], devices=devices, sampler=None, clock=clock)
    assert nvml.sampler.sample_now() == 42.0  # type: ignore[attr-defined]
    FakeMonitor.measurement = types.SimpleNamespace(gpu_energy={0: 1.0})  # no zeus time: our clock's
    FakeTracker.readings = {"cpu_energy": 0.001}
    for name in ("zeus", "codecarbon"):
        meter = create_meter(
            name, device_ids=[0], devices=devices, sampler=None, clock=clock, is_installed=lambda m: True
        )
        clock.t = 50.0
        meter.start_window()
        clock.t = 53.5
        assert meter.stop_window().duration_s == 3.5, name


def test_factory_refuses_an_unknown_meter(clock: FakeClock) -> None:
    from llenergymeasure.harness.energy.factory import create_meter

    with pytest.raises(BackendError) as info:
        create_meter("bogus", device_ids=[], devices=[], sampler=None, clock=clock)
    assert (info.value.message, info.value.fix) == (
        "unknown energy backend 'bogus'",
        "use auto, nvml, zeus, codecarbon or null",
    )


def test_factory_null_simulated_and_auto_fallback(
    zeus: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from llenergymeasure.harness.energy.factory import create_meter
    from llenergymeasure.harness.energy.nvml import NvmlMeter, SimulatedNvmlMeter
    from llenergymeasure.harness.energy.sampler import PowerSampler

    devices = measured([FakeNvmlDevice(TRACE, clock), FakeNvmlDevice(TRACE, clock)])
    null = create_meter("null", device_ids=[0], devices=devices, sampler=None, clock=clock)
    assert null.describe() == "none (energy.backend is null)"
    clock.t = 1.0
    null.start_window()
    clock.t = 3.0
    assert null.stop_window().duration_s == 2.0

    # simulated GPUs: only nvml (or auto) reads them, labelled simulated, on the factory's clock and devices
    sim = create_meter("auto", device_ids=[0, 1], devices=devices, sampler=None, clock=clock, simulated=True)
    assert isinstance(sim, SimulatedNvmlMeter)
    clock.t = 7.0
    assert sim.sampler.sample_now() == 7.0
    assert len(sim.sampler.samples()) == 2  # both devices read
    given = PowerSampler(devices, 0.1, clock=clock)
    assert (
        create_meter("nvml", device_ids=[0, 1], devices=devices, sampler=given, clock=clock, simulated=True).sampler
        is given
    )  # type: ignore[attr-defined]
    for name, devs in (("zeus", devices), ("auto", [])):
        with pytest.raises(BackendError) as info:
            create_meter(name, device_ids=[0], devices=devs, sampler=None, clock=clock, simulated=True)
        assert info.value.message == f"energy.backend {name} cannot read simulated GPUs"
        assert info.value.fix == "use energy.backend auto or nvml with LLEM_SIMULATE_GPUS (or unset it)"

    # auto: zeus installed but failing → a logged warning, then nvml with the given sampler
    monkeypatch.setattr(FakeMonitor, "fail", "no NVML")
    with caplog.at_level("WARNING", logger="llenergymeasure.harness.energy.factory"):
        meter = create_meter(
            "auto", device_ids=[0, 1], devices=devices, sampler=given, clock=clock, is_installed=lambda m: True
        )
    assert isinstance(meter, NvmlMeter)
    assert meter.sampler is given
    assert caplog.messages == [
        "energy meter zeus unavailable (zeus could not open GPUs [0, 1]: no NVML); trying the next"
    ]
