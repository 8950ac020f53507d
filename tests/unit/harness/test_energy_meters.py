"""The meter factory's probing, the null meter, and the zeus / codecarbon adapters (vendor faked at its import)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.energy.factory import create_meter
from llenergymeasure.harness.energy.null import NullMeter
from llenergymeasure.harness.energy.nvml import NvmlMeter

TRACE = PowerTrace(((0.0, 100.0),))


def test_auto_without_gpus_or_estimators_is_the_null_meter(clock: FakeClock) -> None:
    meter = create_meter("auto", device_ids=[], devices=[], sampler=None, clock=clock)
    assert isinstance(meter, NullMeter)
    meter.start_window()
    clock.advance(2.0)
    window = meter.stop_window()
    assert (window.energy_j, window.method, window.source) == (None, "unavailable", "none")
    assert window.duration_s == 2.0
    assert [w.code for w in window.warnings] == ["no_energy_meter"]


def nothing_installed(module: str) -> bool:
    return False


def test_auto_with_gpus_and_no_zeus_is_nvml(clock: FakeClock) -> None:
    devices = measured([FakeNvmlDevice(TRACE, clock)])
    meter = create_meter(
        "auto", device_ids=[0], devices=devices, sampler=None, clock=clock, is_installed=nothing_installed
    )
    assert isinstance(meter, NvmlMeter)


def test_explicit_meter_that_cannot_run_is_an_error(clock: FakeClock) -> None:
    with pytest.raises(BackendError, match="needs NVIDIA GPUs"):
        create_meter("nvml", device_ids=[], devices=[], sampler=None, clock=clock)
    devices = measured([FakeNvmlDevice(TRACE, clock)])
    with pytest.raises(BackendError, match="needs the zeus package"):
        create_meter("zeus", device_ids=[0], devices=devices, sampler=None, clock=clock, is_installed=nothing_installed)
    assert isinstance(create_meter("null", device_ids=[0], devices=devices, sampler=None, clock=clock), NullMeter)


@dataclass
class _Measurement:
    time: float
    gpu_energy: dict[int, float]
    cpu_energy: dict[int, float] | None = None
    dram_energy: dict[int, float] | None = None


class _FakeZeusMonitor:
    instances: ClassVar[list[_FakeZeusMonitor]] = []

    def __init__(self, gpu_indices: list[int]) -> None:
        self.gpu_indices = gpu_indices
        self.windows: list[str] = []
        _FakeZeusMonitor.instances.append(self)

    def begin_window(self, key: str) -> None:
        self.windows.append(key)

    def end_window(self, key: str) -> _Measurement:
        return _Measurement(time=4.0, gpu_energy=dict(_FakeZeusMonitor.energy_j), cpu_energy={0: 50.0})

    energy_j: ClassVar[dict[int, float]] = {0: 400.0, 1: 380.0}  # by zeus index


def _install_fake_zeus(monkeypatch: pytest.MonkeyPatch) -> None:
    monitor_module = types.ModuleType("zeus.monitor")
    monitor_module.ZeusMonitor = _FakeZeusMonitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeus", types.ModuleType("zeus"))
    monkeypatch.setitem(sys.modules, "zeus.monitor", monitor_module)


def test_zeus_meter_maps_per_gpu_energy(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_zeus(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    devices = measured([FakeNvmlDevice(TRACE, clock), FakeNvmlDevice(TRACE, clock, has_counter=False)], 4)
    meter = create_meter(
        "auto", device_ids=[0, 1], devices=devices, sampler=None, clock=clock, is_installed=lambda m: m == "zeus"
    )
    assert meter.source == "zeus"
    meter.start_window()
    window = meter.stop_window()
    assert _FakeZeusMonitor.instances[-1].gpu_indices == [0, 1]
    assert [(d.host_index, d.energy_j, d.method) for d in window.per_device] == [
        (4, 400.0, "counter"),
        (5, 380.0, "integrated_power"),  # that GPU has no energy counter: zeus integrates power there
    ]
    assert window.energy_j == 780.0
    assert window.method == "integrated_power"
    assert window.cpu_energy_j == 50.0
    assert window.duration_s == 4.0


def test_zeus_gets_indices_relative_to_cuda_visible_devices(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_zeus(monkeypatch)
    from llenergymeasure.harness.energy.zeus import ZeusMeter

    # NVML GPUs 2 and 3 of this process, CUDA_VISIBLE_DEVICES=3,2 → zeus sees them as 1 and 0
    devices = measured([FakeNvmlDevice(TRACE, clock, uuid="GPU-a"), FakeNvmlDevice(TRACE, clock, uuid="GPU-b")], 6)
    meter = ZeusMeter([2, 3], devices, clock=clock, environ={"CUDA_VISIBLE_DEVICES": "3,2"})
    assert _FakeZeusMonitor.instances[-1].gpu_indices == [1, 0]
    meter.start_window()
    window = meter.stop_window()
    assert [(d.host_index, d.energy_j) for d in window.per_device] == [(6, 380.0), (7, 400.0)]
    # UUID entries are matched too
    ZeusMeter([2, 3], devices, clock=clock, environ={"CUDA_VISIBLE_DEVICES": "GPU-b,GPU-a"})
    assert _FakeZeusMonitor.instances[-1].gpu_indices == [1, 0]


@pytest.mark.parametrize("delta_j", [0.0, -986_772.0])
def test_zeus_zero_or_negative_delta_is_unavailable_with_a_warning(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, delta_j: float
) -> None:
    _install_fake_zeus(monkeypatch)
    monkeypatch.setattr(_FakeZeusMonitor, "energy_j", {0: 400.0, 1: delta_j})
    from llenergymeasure.harness.energy.zeus import ZeusMeter

    devices = measured([FakeNvmlDevice(TRACE, clock), FakeNvmlDevice(TRACE, clock)])
    meter = ZeusMeter([0, 1], devices, clock=clock, environ={})
    meter.start_window()
    window = meter.stop_window()
    assert [d.energy_j for d in window.per_device] == [400.0, None]
    assert (window.energy_j, window.method) == (None, "unavailable")
    assert [w.code for w in window.warnings] == ["zeus_nonpositive_delta"]


class _FakeTracker:
    gpu_kwh: float = 0.0  # what CodeCarbon reports for GPUs it cannot read

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.final_emissions_data: Any = None

    def start(self) -> None:
        pass

    def stop(self) -> float:
        gpu_kwh = self.gpu_kwh
        self.final_emissions_data = types.SimpleNamespace(cpu_energy=0.001, ram_energy=0.0005, gpu_energy=gpu_kwh)
        return 0.0


def test_codecarbon_meter_converts_kwh_and_labels_estimates(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("codecarbon")
    module.OfflineEmissionsTracker = _FakeTracker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "codecarbon", module)
    meter = create_meter(
        "codecarbon", device_ids=[], devices=[], sampler=None, clock=clock, is_installed=lambda m: m == "codecarbon"
    )
    assert meter.source == "codecarbon"
    meter.start_window()
    clock.advance(10.0)
    window = meter.stop_window()
    # 1 kWh = 3.6e6 J: CPU 0.001 kWh = 3,600 J, RAM 0.0005 kWh = 1,800 J; no GPU in the run → CPU + RAM
    assert window.cpu_energy_j == pytest.approx(3600.0)
    assert window.ram_energy_j == pytest.approx(1800.0)
    assert window.energy_j == pytest.approx(5400.0)
    assert window.method == "estimated"
    assert "estimated_energy" in [w.code for w in window.warnings]
    # a whole-machine CPU/RAM estimate is labelled as such, with a warning next to the J/token figures
    assert window.scope == "host_cpu_ram"
    (host,) = [w for w in window.warnings if w.code == "whole_host_estimate"]
    assert host.severity == "warning"


def test_auto_without_gpus_never_picks_the_whole_host_estimate(clock: FakeClock) -> None:
    # codecarbon installed, no GPU: the run's energy is unavailable, not CodeCarbon's CPU/RAM estimate
    meter = create_meter(
        "auto", device_ids=[], devices=[], sampler=None, clock=clock, is_installed=lambda m: m == "codecarbon"
    )
    assert meter.source == "none"
    meter.start_window()
    clock.advance(1.0)
    assert meter.stop_window().energy_j is None


def test_codecarbon_zero_kwh_for_gpus_is_unavailable_not_zero_joules(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("codecarbon")
    module.OfflineEmissionsTracker = _FakeTracker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "codecarbon", module)
    from llenergymeasure.harness.energy.codecarbon import CodeCarbonMeter

    meter = CodeCarbonMeter([0], clock=clock)
    meter.start_window()
    clock.advance(10.0)
    window = meter.stop_window()
    assert (window.energy_j, window.method, window.scope) == (None, "unavailable", "gpus")
    assert "codecarbon_gpu_unavailable" in [w.code for w in window.warnings]
    assert window.cpu_energy_j == pytest.approx(3600.0)  # CPU/RAM kept in their own fields

    monkeypatch.setattr(_FakeTracker, "gpu_kwh", 0.002)
    meter.start_window()
    clock.advance(10.0)
    window = meter.stop_window()
    assert (window.energy_j, window.method) == (pytest.approx(7200.0), "estimated")  # 0.002 kWh × 3.6e6 J/kWh
