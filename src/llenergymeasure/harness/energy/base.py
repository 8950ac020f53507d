"""`EnergyMeter`: the one small interface every energy source implements.

A meter measures *windows*: ``start_window()`` right after the device is
synchronised, ``stop_window()`` right after it is synchronised again. The same
meter measures the idle baseline and the measured window. Every figure says how
it was obtained (``counter`` / ``integrated_power`` / ``estimated``), and an
unavailable figure is ``None`` with a warning — never 0.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from llenergymeasure.schemas.results import EnergyMethod, EnergyScope, EnergySource, MeasurementWarning

#: trust order, best first: an aggregate over devices takes the weakest method present
_METHOD_RANK: dict[str, int] = {"counter": 0, "integrated_power": 1, "estimated": 2, "unavailable": 3}


def weakest_method(methods: list[EnergyMethod]) -> EnergyMethod:
    """The least trustworthy of `methods` (``unavailable`` for an empty list)."""
    if not methods:
        return "unavailable"
    return max(methods, key=lambda m: _METHOD_RANK[m])


@dataclass(frozen=True)
class DeviceWindowEnergy:
    """One GPU's energy over a window."""

    host_index: int
    uuid: str | None
    energy_j: float | None
    method: EnergyMethod
    counter_updates: int | None = None
    #: True when the counter (not the reads) limited `counter_updates`: some consecutive reads were equal
    counter_limited: bool = True


@dataclass(frozen=True)
class WindowEnergy:
    """What a meter measured over one window.

    `energy_j` is the headline figure: the sum over the device set for GPU meters;
    for an estimator on a host without GPUs, CPU + RAM (see the meter's docstring).
    """

    source: EnergySource
    method: EnergyMethod
    energy_j: float | None
    duration_s: float
    per_device: tuple[DeviceWindowEnergy, ...] = ()
    cpu_energy_j: float | None = None
    ram_energy_j: float | None = None
    warnings: tuple[MeasurementWarning, ...] = field(default_factory=tuple)
    #: what `energy_j` covers: the device set's GPUs, or the whole host's CPU + RAM (an estimator without GPUs)
    scope: EnergyScope = "gpus"

    @property
    def counter_updates(self) -> int | None:
        """Fewest counter updates seen on any device of the set whose counter limited the count (None when no
        such device: a count limited by how often the counter was read says nothing about its resolution)."""
        counts = [d.counter_updates for d in self.per_device if d.counter_updates is not None and d.counter_limited]
        return min(counts) if counts else None


class EnergyMeter(abc.ABC):
    """Measures energy over windows; reusable (baseline window, then the measured window)."""

    source: ClassVar[EnergySource]

    @abc.abstractmethod
    def start_window(self) -> None:
        """Open a window: read the counters now."""

    @abc.abstractmethod
    def stop_window(self) -> WindowEnergy:
        """Close the window opened by `start_window` and return its energy."""

    def close(self) -> None:  # noqa: B027 - optional hook, most meters hold nothing to release
        """Release the meter's resources; idempotent."""

    def describe(self) -> str:
        """One line for the log: which meter, on what."""
        return self.source
