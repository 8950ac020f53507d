"""Zeus meter: ``ZeusMonitor`` measurement windows (optional extra ``llenergymeasure[zeus]``).

Zeus reads NVML's total-energy counter on Volta and newer (method ``counter``)
and integrates power on older parts; which one applies is read from our own
NVML device (does it expose the counter?). Zeus is imported only when this
meter is constructed. Its GPU indices are the ones this process sees (after
container pinning), i.e. the job's ``device_ids``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.energy.base import DeviceWindowEnergy, EnergyMeter, WindowEnergy, weakest_method
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.schemas.results import EnergyMethod

_WINDOW = "llem"


class ZeusMeter(EnergyMeter):
    """GPU energy of the device set from a `zeus.monitor.ZeusMonitor`."""

    source = "zeus"

    def __init__(
        self,
        device_ids: Sequence[int],
        devices: Sequence[MeasuredDevice],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            from zeus.monitor import ZeusMonitor
        except ImportError as e:
            raise BackendError(
                "energy.backend is zeus but zeus is not installed", fix="pip install 'llenergymeasure[zeus]'"
            ) from e
        try:
            self._monitor: Any = ZeusMonitor(gpu_indices=list(device_ids))
        except Exception as e:  # zeus raises its own ZeusBaseError subclasses and NVML errors
            raise BackendError(f"zeus could not open GPUs {list(device_ids)}: {e}") from e
        self.device_ids = list(device_ids)
        self.devices = list(devices)
        self._clock = clock
        self._t0: float | None = None
        self._methods: list[EnergyMethod] = [
            "counter" if d.device.energy_mj() is not None else "integrated_power" for d in self.devices
        ]

    def describe(self) -> str:
        return f"zeus on GPUs {[d.host_index for d in self.devices]}"

    def start_window(self) -> None:
        self._monitor.begin_window(_WINDOW)
        self._t0 = self._clock()

    def stop_window(self) -> WindowEnergy:
        t1 = self._clock()
        measurement = self._monitor.end_window(_WINDOW)
        t0 = self._t0 if self._t0 is not None else t1
        self._t0 = None
        gpu_energy: dict[int, float] = dict(measurement.gpu_energy or {})
        per_device = tuple(
            DeviceWindowEnergy(dev.host_index, dev.uuid, gpu_energy.get(local), method)
            for local, dev, method in zip(self.device_ids, self.devices, self._methods, strict=True)
        )
        values = [d.energy_j for d in per_device]
        total = None if any(v is None for v in values) else float(sum(v for v in values if v is not None))
        cpu = getattr(measurement, "cpu_energy", None)
        dram = getattr(measurement, "dram_energy", None)
        return WindowEnergy(
            source="zeus",
            method=weakest_method(list(self._methods)) if total is not None else "unavailable",
            energy_j=total,
            duration_s=float(getattr(measurement, "time", t1 - t0)),
            per_device=per_device,
            cpu_energy_j=float(sum(cpu.values())) if cpu else None,
            ram_energy_j=float(sum(dram.values())) if dram else None,
        )
