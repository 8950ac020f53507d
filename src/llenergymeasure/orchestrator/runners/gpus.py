"""What the host knows about its GPUs: how many, and who else is using them.

One small interface (`GpuProbe`), a probing factory (`probe_gpus`) and a null
object (`NoGpus`), in the zeus style. pynvml is imported lazily, only here; a
host without the NVIDIA driver gets `NoGpus` (a CPU host), never an exception.
``LLEM_SIMULATE_GPUS=spec.json`` puts the simulated driver (``llenergymeasure.simgpu``)
under the same `NvmlGpus`, so pre-flight and device assignment see its devices.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class GpuProbe(Protocol):
    """Host GPUs as NVML sees them (host indices)."""

    def device_count(self) -> int: ...

    def foreign_processes(self, index: int, own_pids: frozenset[int] = frozenset()) -> list[int]:
        """Pids of compute processes on GPU `index` other than `own_pids`."""
        ...


class NoGpus:
    """A host with no usable NVIDIA GPU (no driver, no NVML, or zero devices)."""

    def device_count(self) -> int:
        return 0

    def foreign_processes(self, index: int, own_pids: frozenset[int] = frozenset()) -> list[int]:
        return []


class NvmlGpus:
    """GPUs through an initialised pynvml module (injected, so tests can pass a fake module)."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml

    @property
    def simulated(self) -> bool:
        """True for the simulated driver (LLEM_SIMULATE_GPUS)."""
        return bool(getattr(self._nvml, "simulated", False))

    def device_count(self) -> int:
        return int(self._nvml.nvmlDeviceGetCount())

    def foreign_processes(self, index: int, own_pids: frozenset[int] = frozenset()) -> list[int]:
        handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
        procs = list(self._nvml.nvmlDeviceGetComputeRunningProcesses(handle))
        return sorted({int(p.pid) for p in procs} - set(own_pids))


def probe_gpus(environ: Mapping[str, str] | None = None) -> GpuProbe:
    """`NvmlGpus` when NVML initialises and reports at least one device, else `NoGpus`.

    With ``LLEM_SIMULATE_GPUS`` set in `environ` (default: this process's environment), the simulated
    driver's devices instead; a missing or invalid spec raises `ConfigError` (exit 2) before anything runs.
    """
    from llenergymeasure.simgpu import simulated_nvml

    simulated = simulated_nvml(os.environ if environ is None else environ)
    if simulated is not None:
        return NvmlGpus(simulated)
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as e:  # ImportError, NVMLError_LibraryNotFound, driver not loaded...
        logger.debug("NVML unavailable, treating this host as CPU-only: %s", e)
        return NoGpus()
    probe = NvmlGpus(pynvml)
    try:
        if probe.device_count() > 0:
            return probe
    except Exception as e:  # NVMLError
        logger.debug("NVML device count failed: %s", e)
    return NoGpus()
