"""The NVML seam: a small device interface, its pynvml implementation, and a provider.

Everything the harness reads from a GPU goes through `NvmlDevice`, so tests hand
the meters and the sampler a fake device (a known power trace, a counter that
ticks every 100 ms) instead of patching pynvml. Each method returns ``None`` when
the device does not support the reading; a driver error on an expected call is
logged once and reported as ``None`` — the caller decides what a missing value
means (the energy meter falls back or marks the figure unavailable).

`nvmlDeviceGetPowerUsage` is deliberately absent: it is a one-second average on
Hopper and most Ampere parts and must never be integrated as if instantaneous.
Instant power comes from the field ``NVML_FI_DEV_POWER_INSTANT``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

logger = logging.getLogger(__name__)

#: throttle-reason bits that mean the GPU was slowed by power or heat (not idle / app clocks / sync boost)
THROTTLE_POWER_THERMAL_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


class NvmlDevice(Protocol):
    """One GPU as the harness reads it. Units are in the method names."""

    @property
    def uuid(self) -> str: ...

    @property
    def name(self) -> str: ...

    def energy_mj(self) -> int | None:
        """Total energy counter since driver load, millijoules (Volta+); None if unsupported."""
        ...

    def power_instant_mw(self) -> int | None:
        """Instantaneous power draw, milliwatts (field NVML_FI_DEV_POWER_INSTANT); None if unsupported."""
        ...

    def temperature_c(self) -> float | None: ...

    def sm_clock_mhz(self) -> int | None: ...

    def memory_used_mb(self) -> float | None: ...

    def memory_total_mb(self) -> float | None: ...

    def utilization_pct(self) -> int | None: ...

    def throttle_reasons(self) -> int | None:
        """Bitmask of current clock-event (throttle) reasons."""
        ...

    def power_limit_w(self) -> float | None: ...

    def persistence_mode(self) -> bool | None: ...

    def mig_mode(self) -> bool | None: ...

    def compute_pids(self) -> list[int] | None:
        """PIDs of compute processes on the device (host PID namespace)."""
        ...


class NvmlProvider(Protocol):
    """Opens devices by the index this process sees (inside a container: after pinning)."""

    def device_count(self) -> int: ...

    def device(self, index: int) -> NvmlDevice: ...

    def driver_version(self) -> str | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class MeasuredDevice:
    """A device of the experiment's set: the handle, and the host index results report."""

    host_index: int
    uuid: str
    device: NvmlDevice


def measured_devices(
    provider: NvmlProvider, device_ids: Sequence[int], host_device_ids: Sequence[int] = ()
) -> list[MeasuredDevice]:
    """Open `device_ids`; report each under its host index when the host told us the mapping."""
    hosts = list(host_device_ids) if len(host_device_ids) == len(device_ids) else list(device_ids)
    out = []
    for local, host in zip(device_ids, hosts, strict=True):
        dev = provider.device(local)
        out.append(MeasuredDevice(host_index=host, uuid=dev.uuid, device=dev))
    return out


T = TypeVar("T")


class PynvmlDevice:
    """`NvmlDevice` over pynvml (nvidia-ml-py). Vendor errors become ``None`` (logged once per reading)."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle
        self._failed: set[str] = set()
        self._uuid = self._read("uuid", lambda: _text(nvml.nvmlDeviceGetUUID(handle))) or "unknown"
        self._name = self._read("name", lambda: _text(nvml.nvmlDeviceGetName(handle))) or "unknown"

    def _read(self, what: str, fn: Callable[[], T]) -> T | None:
        if what in self._failed:
            return None
        try:
            return fn()
        except self._nvml.NVMLError as e:
            self._failed.add(what)
            logger.debug("NVML %s unavailable: %s", what, e)
            return None

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self._name

    def energy_mj(self) -> int | None:
        return self._read("energy", lambda: int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)))

    def power_instant_mw(self) -> int | None:
        def read() -> int | None:
            (value,) = self._nvml.nvmlDeviceGetFieldValues(self._handle, [self._nvml.NVML_FI_DEV_POWER_INSTANT])
            if value.nvmlReturn != self._nvml.NVML_SUCCESS:
                raise self._nvml.NVMLError(value.nvmlReturn)
            return int(value.value.uiVal)

        return self._read("power_instant", read)

    def temperature_c(self) -> float | None:
        nvml = self._nvml
        return self._read(
            "temperature", lambda: float(nvml.nvmlDeviceGetTemperature(self._handle, nvml.NVML_TEMPERATURE_GPU))
        )

    def sm_clock_mhz(self) -> int | None:
        nvml = self._nvml
        return self._read("sm_clock", lambda: int(nvml.nvmlDeviceGetClockInfo(self._handle, nvml.NVML_CLOCK_SM)))

    def memory_used_mb(self) -> float | None:
        return self._read("memory", lambda: self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20)

    def memory_total_mb(self) -> float | None:
        return self._read("memory_total", lambda: self._nvml.nvmlDeviceGetMemoryInfo(self._handle).total / 2**20)

    def utilization_pct(self) -> int | None:
        return self._read("utilization", lambda: int(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))

    def throttle_reasons(self) -> int | None:
        nvml = self._nvml
        fn = (
            getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        return self._read("throttle", lambda: int(fn(self._handle)))

    def power_limit_w(self) -> float | None:
        return self._read("power_limit", lambda: self._nvml.nvmlDeviceGetEnforcedPowerLimit(self._handle) / 1000.0)

    def persistence_mode(self) -> bool | None:
        nvml = self._nvml
        return self._read(
            "persistence", lambda: nvml.nvmlDeviceGetPersistenceMode(self._handle) == nvml.NVML_FEATURE_ENABLED
        )

    def mig_mode(self) -> bool | None:
        nvml = self._nvml
        return self._read("mig", lambda: nvml.nvmlDeviceGetMigMode(self._handle)[0] == nvml.NVML_DEVICE_MIG_ENABLE)

    def compute_pids(self) -> list[int] | None:
        return self._read(
            "processes", lambda: [int(p.pid) for p in self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)]
        )


class PynvmlProvider:
    """`NvmlProvider` over pynvml; `open_nvml` constructs it."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._closed = False

    def device_count(self) -> int:
        return int(self._nvml.nvmlDeviceGetCount())

    def device(self, index: int) -> NvmlDevice:
        return PynvmlDevice(self._nvml, self._nvml.nvmlDeviceGetHandleByIndex(index))

    def driver_version(self) -> str | None:
        try:
            return _text(self._nvml.nvmlSystemGetDriverVersion())
        except self._nvml.NVMLError:
            return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as e:
                logger.debug("nvmlShutdown failed: %s", e)


def open_nvml() -> PynvmlProvider | None:
    """NVML if the library and a driver are present, else None (a host without NVIDIA GPUs)."""
    try:
        import pynvml
    except ImportError:
        logger.info("pynvml (nvidia-ml-py) is not installed: no GPU telemetry")
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        logger.info("NVML unavailable (%s): no GPU telemetry", e)
        return None
    return PynvmlProvider(pynvml)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
