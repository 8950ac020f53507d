"""CodeCarbon meter: an *estimate* (optional extra ``llenergymeasure[codecarbon]``).

CodeCarbon models CPU power from TDP tables (or RAPL where readable) and RAM
power from its size; every figure from it is labelled ``estimated``. A tracker
measures one start/stop cycle only, so each window gets a fresh
``OfflineEmissionsTracker`` (no network: offline mode, no file output).

`energy_j`: the GPUs' energy when the run has GPUs. CodeCarbon reports 0 kWh for
GPUs it could not read: that is ``None`` (unavailable) with a
``codecarbon_gpu_unavailable`` warning, never 0 J.

On a host without GPUs, `energy_j` is CPU + RAM energy — the devices the model
ran on, but estimated for the *whole machine* (CPU TDP model or RAPL, RAM
size model): every other process and the idle draw are in it. The result says
so explicitly: ``energy.scope = "host_cpu_ram"``, method ``estimated``, and a
``whole_host_estimate`` warning (severity warning) next to the J/token figures.
CPU and RAM energy are always kept in their own fields. CodeCarbon reports kWh;
we convert (1 kWh = 3.6e6 J).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.energy.base import EnergyMeter, WindowEnergy
from llenergymeasure.schemas.results import MeasurementWarning

J_PER_KWH = 3.6e6


class CodeCarbonMeter(EnergyMeter):
    """Estimated energy from CodeCarbon's offline tracker."""

    source = "codecarbon"

    def __init__(
        self,
        device_ids: Sequence[int],
        *,
        country_iso_code: str = "USA",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as e:
            raise BackendError(
                "energy.backend is codecarbon but codecarbon is not installed",
                fix="pip install 'llenergymeasure[codecarbon]'",
            ) from e
        self._tracker_cls: Any = OfflineEmissionsTracker
        self.device_ids = list(device_ids)
        self.country_iso_code = country_iso_code
        self._clock = clock
        self._tracker: Any = None
        self._t0: float | None = None

    def start_window(self) -> None:
        kwargs: dict[str, Any] = {
            "country_iso_code": self.country_iso_code,
            "save_to_file": False,
            "log_level": "error",
            "measure_power_secs": 1,
        }
        if self.device_ids:
            kwargs["gpu_ids"] = list(self.device_ids)
        self._tracker = self._tracker_cls(**kwargs)
        self._tracker.start()
        self._t0 = self._clock()

    def stop_window(self) -> WindowEnergy:
        t1 = self._clock()
        if self._tracker is None:
            raise RuntimeError("stop_window() without start_window()")
        self._tracker.stop()
        data = self._tracker.final_emissions_data
        self._tracker = None
        t0 = self._t0 if self._t0 is not None else t1
        cpu_j = _joules(getattr(data, "cpu_energy", None))
        ram_j = _joules(getattr(data, "ram_energy", None))
        gpu_j = _joules(getattr(data, "gpu_energy", None))
        host_j = None if cpu_j is None else cpu_j + (ram_j or 0.0)
        warnings = [
            MeasurementWarning(
                code="estimated_energy",
                message="energy is a CodeCarbon estimate (TDP/RAM models), not a measurement",
            )
        ]
        if self.device_ids:
            energy_j = gpu_j if gpu_j is not None and gpu_j > 0 else None
            if energy_j is None:
                warnings.append(
                    MeasurementWarning(
                        code="codecarbon_gpu_unavailable",
                        message=f"CodeCarbon reported {gpu_j if gpu_j is not None else 'no'} GPU energy for GPUs "
                        f"{self.device_ids} over a {t1 - t0:.1f} s window (it could not read them): GPU energy is "
                        "unavailable — use energy.backend: nvml",
                    )
                )
        else:
            energy_j = host_j
            if energy_j is not None:
                warnings.append(
                    MeasurementWarning(
                        code="whole_host_estimate",
                        message="no GPU: energy_total_j and the J/token figures are CodeCarbon's estimate for the "
                        "whole machine's CPU and RAM over the window (TDP/RAM models; every other process and the "
                        "idle draw included), not the energy of the inference alone",
                    )
                )
        return WindowEnergy(
            source="codecarbon",
            method="estimated" if energy_j is not None else "unavailable",
            energy_j=energy_j,
            duration_s=t1 - t0,
            cpu_energy_j=cpu_j,
            ram_energy_j=ram_j,
            warnings=tuple(warnings),
            scope="gpus" if self.device_ids else "host_cpu_ram",
        )


def _joules(kwh: float | None) -> float | None:
    return None if kwh is None else float(kwh) * J_PER_KWH
