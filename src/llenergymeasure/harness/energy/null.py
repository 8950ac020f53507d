"""The null meter: no energy source on this host. Energy is ``None`` (never 0) with a warning."""

from __future__ import annotations

import time
from collections.abc import Callable

from llenergymeasure.harness.energy.base import EnergyMeter, WindowEnergy
from llenergymeasure.schemas.results import MeasurementWarning


class NullMeter(EnergyMeter):
    """Measures nothing; says why in every window."""

    source = "none"

    def __init__(self, reason: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.reason = reason
        self._clock = clock
        self._t0: float | None = None

    def describe(self) -> str:
        return f"none ({self.reason})"

    def start_window(self) -> None:
        self._t0 = self._clock()

    def stop_window(self) -> WindowEnergy:
        t0 = self._t0 if self._t0 is not None else self._clock()
        self._t0 = None
        return WindowEnergy(
            source="none",
            method="unavailable",
            energy_j=None,
            duration_s=self._clock() - t0,
            warnings=(
                MeasurementWarning(
                    code="no_energy_meter",
                    message=f"energy was not measured: {self.reason}; energy fields are null",
                ),
            ),
        )
