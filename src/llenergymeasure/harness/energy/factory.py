"""Choose the energy meter: ``energy.backend`` by name, or ``auto`` = zeus → nvml → codecarbon → null.

Only one meter is active per run. ``auto`` probes in trust order: zeus and nvml
need GPUs of the set to be visible to NVML; codecarbon (an estimate) is used
only when GPUs are there but no GPU meter can run. On a host without GPUs
``auto`` never falls back to CodeCarbon's whole-host CPU/RAM estimate (it is not
the inference's energy): the null meter reports energy as unavailable, and
``energy.backend: codecarbon`` asks for that estimate explicitly (labelled
``scope: host_cpu_ram`` with a warning). A meter named explicitly that cannot run is an error
(in-container pre-flight reports it before anything is loaded).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Sequence

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.energy.base import EnergyMeter
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.harness.energy.null import NullMeter
from llenergymeasure.harness.energy.nvml import NvmlMeter, SimulatedNvmlMeter
from llenergymeasure.harness.energy.sampler import PowerSampler

logger = logging.getLogger(__name__)


def installed(module: str) -> bool:
    """True when `module` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def meter_problem(
    name: str, devices: Sequence[MeasuredDevice], is_installed: Callable[[str], bool] = installed
) -> str | None:
    """Why the meter `name` cannot run here, or None when it can (``auto`` always can: it degrades)."""
    if name in ("nvml", "zeus") and not devices:
        return f"energy.backend {name} needs NVIDIA GPUs visible to NVML, and the run has none"
    if name in ("zeus", "codecarbon") and not is_installed(name):
        return f"energy.backend {name} needs the {name} package (pip install 'llenergymeasure[{name}]')"
    return None


def create_meter(
    name: str,
    *,
    device_ids: Sequence[int],
    devices: Sequence[MeasuredDevice],
    sampler: PowerSampler | None,
    clock: Callable[[], float] = time.monotonic,
    is_installed: Callable[[str], bool] = installed,
    simulated: bool = False,
) -> EnergyMeter:
    """The meter `name` (auto, nvml, zeus, codecarbon, null) for this device set.

    `is_installed` answers "can this optional package be imported?" (injectable for tests).
    `simulated`: the devices come from the simulated driver; only the nvml meter reads them
    (``auto`` → nvml, labelled ``simulated``); zeus and codecarbon would read real hardware.
    """
    if name == "null":
        return NullMeter("energy.backend is null", clock=clock)
    if simulated:
        if name not in ("auto", "nvml") or not devices:
            raise BackendError(
                f"energy.backend {name} cannot read simulated GPUs",
                fix="use energy.backend auto or nvml with LLEM_SIMULATE_GPUS (or unset it)",
            )
        return SimulatedNvmlMeter(devices, sampler or PowerSampler(devices, clock=clock), clock=clock)
    if name != "auto":
        problem = meter_problem(name, devices, is_installed)
        if problem:
            raise BackendError(problem)
        return _construct(name, device_ids, devices, sampler, clock)
    if not devices:
        return NullMeter(
            "no GPU visible to NVML (energy.backend: codecarbon gives a whole-host CPU/RAM estimate on request)",
            clock=clock,
        )
    for candidate in ("zeus", "nvml", "codecarbon"):
        if meter_problem(candidate, devices, is_installed) is None:
            try:
                return _construct(candidate, device_ids, devices, sampler, clock)
            except BackendError as e:
                logger.warning("energy meter %s unavailable (%s); trying the next", candidate, e.message)
    reason = "no GPU visible to NVML and no estimator (zeus/codecarbon) installed"
    return NullMeter(reason, clock=clock)


def _construct(
    name: str,
    device_ids: Sequence[int],
    devices: Sequence[MeasuredDevice],
    sampler: PowerSampler | None,
    clock: Callable[[], float],
) -> EnergyMeter:
    if name == "nvml":
        return NvmlMeter(devices, sampler or PowerSampler(devices, clock=clock), clock=clock)
    if name == "zeus":
        from llenergymeasure.harness.energy.zeus import ZeusMeter

        return ZeusMeter(device_ids, devices, clock=clock)
    if name == "codecarbon":
        from llenergymeasure.harness.energy.codecarbon import CodeCarbonMeter

        return CodeCarbonMeter(device_ids, clock=clock)
    raise BackendError(f"unknown energy backend {name!r}", fix="use auto, nvml, zeus, codecarbon or null")
