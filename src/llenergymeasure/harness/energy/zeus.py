"""Zeus meter: ``ZeusMonitor`` measurement windows (optional extra ``llenergymeasure[zeus]``).

Zeus reads NVML's total-energy counter on Volta and newer (method ``counter``)
and integrates power on older parts; which one applies is read from our own
NVML device (does it expose the counter?). Zeus is imported only when this
meter is constructed.

Indices: the meter is given the set's NVML indices (as this process sees them,
after container pinning), but ``ZeusMonitor(gpu_indices=...)`` takes indices
*relative to* ``CUDA_VISIBLE_DEVICES`` (which the harness sets to the set).
`zeus_indices` maps one to the other (by index or UUID entry); without the
variable they are the same.

A per-GPU delta of zero or less (a counter that did not move, wrapped or was
reset) is ``None`` with a ``zeus_nonpositive_delta`` warning, never 0 J or a
negative figure; the total is then unavailable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.energy.base import DeviceWindowEnergy, EnergyMeter, WindowEnergy, weakest_method
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.schemas.results import EnergyMethod, MeasurementWarning

_WINDOW = "llem"


def zeus_indices(nvml_ids: Sequence[int], uuids: Sequence[str | None], environ: Mapping[str, str]) -> list[int]:
    """Zeus's GPU indices for the NVML indices `nvml_ids`: positions in ``CUDA_VISIBLE_DEVICES`` when it is set."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not visible.strip():
        return list(nvml_ids)
    entries = [e.strip() for e in visible.split(",")]
    out = []
    for nvml_id, uuid in zip(nvml_ids, uuids, strict=True):
        matches = [i for i, e in enumerate(entries) if e == str(nvml_id) or (uuid is not None and e == uuid)]
        if not matches:
            raise BackendError(
                f"GPU {nvml_id} of the set is not in CUDA_VISIBLE_DEVICES={visible}: zeus cannot measure it",
                fix="leave CUDA_VISIBLE_DEVICES to the harness, or use energy.backend: nvml",
            )
        out.append(matches[0])
    return out


class ZeusMeter(EnergyMeter):
    """GPU energy of the device set from a `zeus.monitor.ZeusMonitor`."""

    source = "zeus"

    def __init__(
        self,
        device_ids: Sequence[int],
        devices: Sequence[MeasuredDevice],
        *,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        try:
            from zeus.monitor import ZeusMonitor
        except ImportError as e:
            raise BackendError(
                "energy.backend is zeus but zeus is not installed", fix="pip install 'llenergymeasure[zeus]'"
            ) from e
        env = os.environ if environ is None else environ
        self.zeus_ids = zeus_indices(list(device_ids), [d.uuid for d in devices], env)
        try:
            self._monitor: Any = ZeusMonitor(gpu_indices=list(self.zeus_ids))
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
        per_device = []
        warnings = []
        for zeus_id, dev, method in zip(self.zeus_ids, self.devices, self._methods, strict=True):
            energy_j = gpu_energy.get(zeus_id)
            if energy_j is not None and energy_j <= 0:
                warnings.append(
                    MeasurementWarning(
                        code="zeus_nonpositive_delta",
                        message=f"zeus measured {energy_j:.1f} J on GPU {dev.host_index} over the window (a counter "
                        "that did not move, wrapped or was reset): that GPU's energy is unavailable",
                    )
                )
                energy_j = None
            per_device.append(DeviceWindowEnergy(dev.host_index, dev.uuid, energy_j, method))
        values = [d.energy_j for d in per_device]
        total = None if any(v is None for v in values) else float(sum(v for v in values if v is not None))
        cpu = getattr(measurement, "cpu_energy", None)
        dram = getattr(measurement, "dram_energy", None)
        return WindowEnergy(
            source="zeus",
            method=weakest_method(list(self._methods)) if total is not None else "unavailable",
            energy_j=total,
            duration_s=float(getattr(measurement, "time", t1 - t0)),
            per_device=tuple(per_device),
            cpu_energy_j=float(sum(cpu.values())) if cpu else None,
            ram_energy_j=float(sum(dram.values())) if dram else None,
            warnings=tuple(warnings),
        )
