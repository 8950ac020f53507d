"""What the host knows about its GPUs: how many, and who else is using them.

One small interface (`GpuProbe`), a probing factory (`probe_gpus`) and a null
object (`NoGpus`), in the zeus style. pynvml is imported lazily, only here; a
host without the NVIDIA driver library gets `NoGpus` (a CPU host), never an
exception. A host where the library is there but NVML fails to initialise
(driver/library version mismatch, no permission on /dev/nvidia*, driver not
loaded) gets a `NoGpus` carrying the error, which pre-flight reports instead of
silently running on CPU.
``LLEM_SIMULATE_GPUS=spec.json`` puts the simulated driver (``llenergymeasure.simgpu``)
under the same `NvmlGpus`, so pre-flight and device assignment see its devices.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

#: NVML init errors that mean "no NVIDIA driver on this host" (a CPU host); every other one is a broken GPU host
CPU_HOST_NVML_ERRORS = frozenset({"NVMLError_LibraryNotFound"})


@dataclass(frozen=True)
class GpuDescription:
    """One host GPU as ``llem config`` shows it."""

    index: int
    name: str
    memory_gib: float


class GpuProbe(Protocol):
    """Host GPUs as NVML sees them (host indices)."""

    def device_count(self) -> int: ...

    def describe(self) -> tuple[str | None, list[GpuDescription]]:
        """(driver version, every device); (None, []) without NVML."""
        ...

    def foreign_processes(self, index: int, own_pids: frozenset[int] = frozenset()) -> list[int]:
        """Pids of compute processes on GPU `index` other than `own_pids`."""
        ...


class NoGpus:
    """A host with no usable NVIDIA GPU (no driver, no NVML, or zero devices).

    `nvml_error` is set when the NVIDIA library is installed but NVML failed to
    initialise: a GPU host that is broken, not a CPU host.
    """

    def __init__(self, nvml_error: str | None = None) -> None:
        self.nvml_error = nvml_error

    def device_count(self) -> int:
        return 0

    def device_uuids(self) -> list[str]:
        return []

    def describe(self) -> tuple[str | None, list[GpuDescription]]:
        return None, []

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

    def device_uuids(self) -> list[str]:
        """UUID of every device, in NVML index order (what a cluster node reports about itself)."""
        out = []
        for i in range(self.device_count()):
            raw = self._nvml.nvmlDeviceGetUUID(self._nvml.nvmlDeviceGetHandleByIndex(i))
            out.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        return out

    def describe(self) -> tuple[str | None, list[GpuDescription]]:
        nvml = self._nvml
        devices = []
        for i in range(self.device_count()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            name = nvml.nvmlDeviceGetName(handle)
            memory_gib = float(nvml.nvmlDeviceGetMemoryInfo(handle).total) / 1024**3
            devices.append(GpuDescription(i, name.decode() if isinstance(name, bytes) else str(name), memory_gib))
        driver = nvml.nvmlSystemGetDriverVersion()
        return (driver.decode() if isinstance(driver, bytes) else str(driver)), devices

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
    except ImportError as e:
        logger.debug("nvidia-ml-py missing, treating this host as CPU-only: %s", e)
        return NoGpus()
    return probe_nvml(pynvml)


def probe_nvml(nvml: Any) -> GpuProbe:
    """`probe_gpus` over an injected pynvml module (tests pass a fake that fails the way a host does)."""
    try:
        nvml.nvmlInit()
    except Exception as e:  # NVMLError subclasses, by name: the class hierarchy is generated at import
        if type(e).__name__ in CPU_HOST_NVML_ERRORS:
            logger.debug("no NVIDIA driver library, treating this host as CPU-only: %s", e)
            return NoGpus()
        logger.debug("NVML failed to initialise: %s", e)
        return NoGpus(nvml_error=f"{type(e).__name__}: {e}")
    probe = NvmlGpus(nvml)
    try:
        if probe.device_count() > 0:
            return probe
    except Exception as e:  # NVMLError
        logger.debug("NVML device count failed: %s", e)
    return NoGpus()
