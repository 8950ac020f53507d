"""NVML energy meter: total-energy-counter deltas per GPU, instant-power integration as the fallback.

Per device of the experiment's set:

1. **counter** (measured): ``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta+)
   read at both edges; energy = the delta. The counter is read *last* when a
   window opens and *first* when it closes, right after the caller synchronised.
   A transient driver error at an edge is retried at once by the device adapter;
   one failed read never switches a device off the counter. The edges never wait
   for the sampler; a sample whose reads were still running when the window closed
   is left out of the reset check (its counter may be later than the closing edge's).
2. **integrated_power**: where the counter is missing, went backwards anywhere in
   the window (a driver reset: checked on the edge reads *and* every in-window
   timeline sample) or did not advance (a window shorter than one counter update),
   the timeline's instantaneous power samples (``NVML_FI_DEV_POWER_INSTANT``) are
   integrated over the window (trapezoids, edges interpolated), labelled so, with
   a ``warning``. The samples must cover the window: no gap longer than
   `max_gap_s` = max(3 × sampling interval, 0.5 s) over at least
   `MIN_COVERED_FRACTION` of it; otherwise (a dead sampler, say) the
   device's energy is refused.
3. otherwise the device's energy is ``None`` with a warning.

The set's energy is the sum of per-device values, or ``None`` if any device's is
unknown: a partial sum would silently under-report.

``counter_updates`` per device = the counter's value changes seen in the window
(edge reads and timeline samples). When no two consecutive reads were equal, the
reads, not the counter, limited that count: it is a lower bound and does not
mark the window as coarse (`DeviceWindowEnergy.counter_limited` is False).

Driver read errors since the previous window edge are reported (`nvml_read_errors`): this process's
and the sampler process's.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import ClassVar

from llenergymeasure.harness.energy.base import DeviceWindowEnergy, EnergyMeter, WindowEnergy, weakest_method
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.harness.energy.integrate import (
    count_changes,
    held_between_reads,
    integrate_power_j,
    sample_coverage,
    went_backwards,
)
from llenergymeasure.harness.energy.sampler import PowerSample, PowerSampler
from llenergymeasure.schemas.results import EnergySource, MeasurementWarning

#: the integrated-power fallback needs samples over at least this fraction of the window
MIN_COVERED_FRACTION = 0.9
#: and no gap longer than this many sampling intervals (at least `MIN_MAX_GAP_S`) counts as covered
MAX_GAP_INTERVALS = 3
MIN_MAX_GAP_S = 0.5


class NvmlMeter(EnergyMeter):
    """Energy of a GPU set from NVML. `sampler` provides the power samples for the fallback and update counts."""

    source: ClassVar[EnergySource] = "nvml"

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
        self._failures_seen: list[dict[str, int]] = [{} for _ in self.devices]

    @property
    def max_gap_s(self) -> float:
        return max(MAX_GAP_INTERVALS * self.sampler.interval_s, MIN_MAX_GAP_S)

    def describe(self) -> str:
        what = "simulated GPUs" if self.source == "simulated" else "GPUs"
        return f"nvml on {what} {[d.host_index for d in self.devices]}"

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
        warnings += self._read_error_warnings()  # after the samples were read: the sampler's failures are current
        values = [d.energy_j for d in per_device]
        total = None if any(v is None for v in values) else sum(v for v in values if v is not None)
        method = weakest_method([d.method for d in per_device]) if total is not None else "unavailable"
        return WindowEnergy(
            source=self.source,
            method=method,
            energy_j=total,
            duration_s=t1 - t0,
            per_device=tuple(per_device),
            warnings=tuple(warnings),
        )

    def _read_error_warnings(self) -> list[MeasurementWarning]:
        """One info warning per device whose driver reads failed since the previous window edge (retried)."""
        out = []
        for i, dev in enumerate(self.devices):
            now = Counter(dev.device.read_failures()) + Counter(self.sampler.read_failures(dev.host_index))
            new = {
                k: v - self._failures_seen[i].get(k, 0) for k, v in now.items() if v > self._failures_seen[i].get(k, 0)
            }
            self._failures_seen[i] = now
            if new:
                detail = ", ".join(f"{k} {v}" for k, v in sorted(new.items()))
                out.append(
                    MeasurementWarning(
                        code="nvml_read_errors",
                        message=f"GPU {dev.host_index}: {sum(new.values())} NVML read(s) failed and were retried "
                        f"({detail})",
                        severity="info",
                    )
                )
        return out

    def _device_energy(
        self,
        dev: MeasuredDevice,
        e0: int | None,
        e1: int | None,
        t0: float,
        t1: float,
        warnings: list[MeasurementWarning],
    ) -> DeviceWindowEnergy:
        samples = self.sampler.device_samples(dev.host_index, t0 - self.max_gap_s, t1 + self.max_gap_s)
        # in-window samples read entirely between the edge reads (a sampler read still running when the window
        # closed may return a later value than e1: it must not look like a reset)
        inside = [
            s.energy_mj for s in samples if t0 < s.t_s and (s.read_done_s if s.read_done_s is not None else s.t_s) < t1
        ]
        reads = [e0, *inside, e1]
        has_edges = e0 is not None and e1 is not None
        updates = count_changes(reads) if has_edges else None
        limited = held_between_reads(reads)
        reset = went_backwards(reads)
        if e0 is not None and e1 is not None and not reset and e1 > e0:
            energy = (e1 - e0) / 1000.0
            return DeviceWindowEnergy(dev.host_index, dev.uuid, energy, "counter", updates, counter_limited=limited)

        if not has_edges:
            reason = "has no total-energy counter (or it could not be read)"
        elif reset:
            reason = "energy counter went backwards inside the window (driver reset?)"
        else:
            reason = "energy counter did not advance during the window (shorter than one counter update)"
            warnings.append(
                MeasurementWarning(
                    code="short_window",
                    message=f"GPU {dev.host_index}: the {reason}; lengthen the window (more prompts)",
                )
            )
        return self._integrated(dev, samples, t0, t1, reason, updates, limited, warnings)

    def _integrated(
        self,
        dev: MeasuredDevice,
        samples: list[PowerSample],
        t0: float,
        t1: float,
        reason: str,
        updates: int | None,
        limited: bool,
        warnings: list[MeasurementWarning],
    ) -> DeviceWindowEnergy:
        powered = [(s.t_s, s.power_w) for s in samples if s.power_w is not None]
        times = [t for t, _ in powered]
        energy_j = integrate_power_j(times, [p for _, p in powered], t0, t1)
        unknown = DeviceWindowEnergy(dev.host_index, dev.uuid, None, "unavailable", updates, counter_limited=limited)
        if energy_j is None:
            warnings.append(
                MeasurementWarning(
                    code="energy_unavailable",
                    message=f"GPU {dev.host_index} {reason} and reports no instant power: its energy is unknown",
                )
            )
            return unknown
        cover = sample_coverage(times, t0, t1, self.max_gap_s)
        detail = (
            f"{len(powered)} instant-power samples, largest gap {cover.largest_gap_s:.2f} s, "
            f"{100 * cover.covered_fraction:.0f} % of the window covered"
        )
        if cover.covered_fraction < MIN_COVERED_FRACTION:
            warnings.append(
                MeasurementWarning(
                    code="energy_unavailable",
                    message=f"GPU {dev.host_index} {reason}, and its power samples cannot stand in for it ({detail}; "
                    f"needs gaps ≤ {self.max_gap_s:.2f} s over ≥ {100 * MIN_COVERED_FRACTION:.0f} % of the window): "
                    "its energy is unknown",
                )
            )
            return unknown
        warnings.append(
            MeasurementWarning(
                code="integrated_power",
                message=f"GPU {dev.host_index} {reason}: energy integrated from {detail}",
                severity="warning",
            )
        )
        return DeviceWindowEnergy(dev.host_index, dev.uuid, energy_j, "integrated_power", updates, limited)


class SimulatedNvmlMeter(NvmlMeter):
    """The same meter on simulated GPUs (``LLEM_SIMULATE_GPUS``): every figure is labelled ``simulated``."""

    source: ClassVar[EnergySource] = "simulated"
