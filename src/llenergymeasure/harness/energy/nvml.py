"""NVML energy meter: total-energy-counter deltas per GPU, instant-power integration as the fallback.

Per device of the experiment's set:

1. **counter** (measured): ``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta+)
   read at both edges; energy = the delta. The counter is read *last* when a
   window opens and *first* when it closes, right after the caller synchronised.
2. **integrated_power**: where the counter is missing, went backwards (driver
   reset) or did not advance (a window shorter than one counter update), the
   timeline's instantaneous power samples (``NVML_FI_DEV_POWER_INSTANT``) are
   integrated over the window (trapezoids, edges interpolated), and the result is
   labelled so.
3. otherwise the device's energy is ``None`` with a warning.

The set's energy is the sum of per-device values, or ``None`` if any device's is
unknown: a partial sum would silently under-report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from llenergymeasure.harness.energy.base import DeviceWindowEnergy, EnergyMeter, WindowEnergy, weakest_method
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.harness.energy.integrate import count_changes, integrate_power_j
from llenergymeasure.harness.energy.sampler import PowerSampler
from llenergymeasure.schemas.results import MeasurementWarning


class NvmlMeter(EnergyMeter):
    """Energy of a GPU set from NVML. `sampler` provides the power samples for the fallback and update counts."""

    source = "nvml"

    def __init__(
        self,
        devices: Sequence[MeasuredDevice],
        sampler: PowerSampler,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = list(devices)
        self.sampler = sampler
        self._clock = clock
        self._t0: float | None = None
        self._e0: list[int | None] = []

    def describe(self) -> str:
        return f"nvml on GPUs {[d.host_index for d in self.devices]}"

    def start_window(self) -> None:
        self.sampler.sample_now()
        self._e0 = [d.device.energy_mj() for d in self.devices]
        self._t0 = self._clock()

    def stop_window(self) -> WindowEnergy:
        if self._t0 is None:
            raise RuntimeError("stop_window() without start_window()")
        t1 = self._clock()
        e1 = [d.device.energy_mj() for d in self.devices]
        self.sampler.sample_now()
        t0, self._t0 = self._t0, None
        warnings: list[MeasurementWarning] = []
        per_device = [
            self._device_energy(dev, start, end, t0, t1, warnings)
            for dev, start, end in zip(self.devices, self._e0, e1, strict=True)
        ]
        values = [d.energy_j for d in per_device]
        total = None if any(v is None for v in values) else sum(v for v in values if v is not None)
        method = weakest_method([d.method for d in per_device]) if total is not None else "unavailable"
        return WindowEnergy(
            source="nvml",
            method=method,
            energy_j=total,
            duration_s=t1 - t0,
            per_device=tuple(per_device),
            warnings=tuple(warnings),
        )

    def _device_energy(
        self,
        dev: MeasuredDevice,
        e0: int | None,
        e1: int | None,
        t0: float,
        t1: float,
        warnings: list[MeasurementWarning],
    ) -> DeviceWindowEnergy:
        margin = 2 * self.sampler.interval_s
        samples = self.sampler.device_samples(dev.host_index, t0 - margin, t1 + margin)
        inside = [s.energy_mj for s in samples if t0 <= s.t_s <= t1]
        updates = count_changes([e0, *inside, e1]) if e0 is not None and e1 is not None else None
        if e0 is not None and e1 is not None and e1 > e0:
            return DeviceWindowEnergy(dev.host_index, dev.uuid, (e1 - e0) / 1000.0, "counter", updates)

        if e0 is None or e1 is None:
            reason = "has no total-energy counter"
        elif e1 == e0:
            reason = "energy counter did not advance during the window (shorter than one counter update)"
            warnings.append(
                MeasurementWarning(
                    code="short_window",
                    message=f"GPU {dev.host_index}: the {reason}; lengthen the window (more prompts)",
                )
            )
        else:
            reason = "energy counter went backwards (driver reset?)"
        powered = [(s.t_s, s.power_w) for s in samples if s.power_w is not None]
        energy_j = integrate_power_j([t for t, _ in powered], [p for _, p in powered], t0, t1)
        if energy_j is None:
            warnings.append(
                MeasurementWarning(
                    code="energy_unavailable",
                    message=f"GPU {dev.host_index} {reason} and reports no instant power: its energy is unknown",
                )
            )
            return DeviceWindowEnergy(dev.host_index, dev.uuid, None, "unavailable", updates)
        warnings.append(
            MeasurementWarning(
                code="integrated_power",
                message=f"GPU {dev.host_index} {reason}: energy integrated from {len(powered)} instant-power samples",
                severity="info",
            )
        )
        return DeviceWindowEnergy(dev.host_index, dev.uuid, energy_j, "integrated_power", updates)
