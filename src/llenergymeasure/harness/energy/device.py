"""The NVML seam: a small device interface, its pynvml implementation, and a provider.

Everything the harness reads from a GPU goes through `NvmlDevice`, so tests hand
the meters and the sampler a fake device (a known power trace, a counter that
ticks every 100 ms) instead of patching pynvml. Each method returns ``None`` when
the device does not support the reading or the read failed (see `PynvmlDevice`
for transient errors) — the caller decides what a missing value means (the
energy meter retries, falls back or marks the figure unavailable).

`PynvmlProvider` takes the pynvml module — or the simulated driver
(``llenergymeasure.simgpu``, chosen by ``LLEM_SIMULATE_GPUS``), which answers the
same functions from analytic power traces, so this adapter runs unchanged on it.

`nvmlDeviceGetPowerUsage` is deliberately absent: it is a one-second average on
Hopper and most Ampere parts and must never be integrated as if instantaneous.
Instant power comes from the field ``NVML_FI_DEV_POWER_INSTANT``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from llenergymeasure.schemas.devices import host_index_pairs

logger = logging.getLogger(__name__)

#: throttle-reason bits that mean the GPU was slowed by power or heat (not idle / app clocks / sync boost)
THROTTLE_POWER_THERMAL_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
#: failed reads in a row after which a reading is given up for the rest of the run
MAX_CONSECUTIVE_FAILURES = 5
#: immediate attempts at the energy counter (a window edge cannot be re-read later)
ENERGY_READ_ATTEMPTS = 3


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

    def power_and_energy(self) -> tuple[int | None, int | None]:
        """(instant power mW, energy counter mJ) in one driver call (the sampler's per-tick read)."""
        ...

    def read_failures(self) -> dict[str, int]:
        """Reads that failed with a driver error so far, per reading (count); unsupported readings excluded."""
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
    out = []
    for local, host in host_index_pairs(device_ids, host_device_ids):
        dev = provider.device(local)
        out.append(MeasuredDevice(host_index=host, uuid=dev.uuid, device=dev))
    return out


T = TypeVar("T")


class PynvmlDevice:
    """`NvmlDevice` over pynvml (nvidia-ml-py), or anything with its functions (the simulated driver).

    Vendor errors become ``None``. A reading the device does not support (NOT_SUPPORTED,
    no permission, function missing — before it ever succeeded) is not asked again.
    Any other error is transient: that read is ``None``, counted in `read_failures`, and
    the next read tries again; only `MAX_CONSECUTIVE_FAILURES` failures in a row switch
    the reading off for the rest of the run (logged as a warning). The energy counter
    is retried at once (`ENERGY_READ_ATTEMPTS`), since a window edge cannot be re-read later.
    """

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle
        self._off: set[str] = set()
        self._ok: set[str] = set()
        self._failures: dict[str, int] = {}
        self._in_a_row: dict[str, int] = {}
        self._success = nvml.NVML_SUCCESS
        self._members = _value_members(nvml)
        self._tick_readings: tuple[tuple[str, int], ...] | None = None
        self._uuid = self._read("uuid", lambda: _text(nvml.nvmlDeviceGetUUID(handle))) or "unknown"
        self._name = self._read("name", lambda: _text(nvml.nvmlDeviceGetName(handle))) or "unknown"

    def _permanent(self, what: str, code: int) -> bool:
        nvml = self._nvml
        absent = {nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_NO_PERMISSION, nvml.NVML_ERROR_FUNCTION_NOT_FOUND}
        return code in absent and what not in self._ok

    def _failed(self, what: str, code: int, error: object) -> None:
        if self._permanent(what, code):
            self._off.add(what)
            logger.debug("NVML %s unavailable: %s", what, error)
            return
        self._failures[what] = self._failures.get(what, 0) + 1
        self._in_a_row[what] = self._in_a_row.get(what, 0) + 1
        if self._in_a_row[what] >= MAX_CONSECUTIVE_FAILURES:
            self._off.add(what)
            logger.warning("NVML %s failed %d times in a row (%s): not read again", what, self._in_a_row[what], error)
        else:
            logger.debug("NVML %s read failed (%s): retried on the next read", what, error)

    def _succeeded(self, what: str) -> None:
        self._ok.add(what)
        self._in_a_row[what] = 0

    def _read(self, what: str, fn: Callable[[], T], attempts: int = 1) -> T | None:
        for _ in range(attempts):
            if what in self._off:
                return None
            try:
                value = fn()
            except self._nvml.NVMLError as e:
                self._failed(what, int(getattr(e, "value", -1)), e)
                continue
            self._succeeded(what)
            return value
        return None

    def read_failures(self) -> dict[str, int]:
        return dict(self._failures)

    def _fields(self, readings: Sequence[tuple[str, int]]) -> list[int | None]:
        """Field values by (reading name, field id) in ONE call; each field's own return code is honoured.

        The sampler calls this for every device at every tick with the GIL held: the answer is a list
        filled by position (no dict per call), and the slots asked for are all of them unless a reading
        was switched off."""
        off = self._off
        slots = range(len(readings)) if not off else [i for i, (what, _) in enumerate(readings) if what not in off]
        out: list[int | None] = [None] * len(readings)
        if not slots:
            return out
        nvml = self._nvml
        try:
            values = nvml.nvmlDeviceGetFieldValues(self._handle, [readings[i][1] for i in slots])
        except nvml.NVMLError as e:
            for i in slots:
                self._failed(readings[i][0], int(getattr(e, "value", -1)), e)
            return out
        success, members = self._success, self._members
        for i, value in zip(slots, values, strict=False):
            what, code = readings[i][0], value.nvmlReturn
            if code == success:
                self._succeeded(what)
                out[i] = int(getattr(value.value, members.get(value.valueType, "dVal")))
            else:
                self._failed(what, int(code), f"field return code {code}")
        return out

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self._name

    def energy_mj(self) -> int | None:
        return self._read(
            "energy",
            lambda: int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)),
            attempts=ENERGY_READ_ATTEMPTS,
        )

    def power_instant_mw(self) -> int | None:
        (power,) = self._fields([("power_instant", self._nvml.NVML_FI_DEV_POWER_INSTANT)])
        return power

    def power_and_energy(self) -> tuple[int | None, int | None]:
        # the counter's field is tracked apart from nvmlDeviceGetTotalEnergyConsumption: a driver lacking the
        # field must not switch off the function the window edges read
        readings = self._tick_readings
        if readings is None:  # built once: the sampler reads it every tick
            nvml = self._nvml
            readings = self._tick_readings = (
                ("power_instant", nvml.NVML_FI_DEV_POWER_INSTANT),
                ("energy_field", nvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION),
            )
        power, energy = self._fields(readings)
        return power, energy

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
    """`NvmlProvider` over pynvml (or the simulated driver); `open_nvml` constructs it."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._closed = False

    @property
    def simulated(self) -> bool:
        """True when the devices are simulated (``LLEM_SIMULATE_GPUS``), not read from a real driver."""
        return bool(getattr(self._nvml, "simulated", False))

    def device_count(self) -> int:
        return int(self._nvml.nvmlDeviceGetCount())

    def sampler_driver(self) -> dict[str, Any] | None:
        """How another process (the timeline sampler's) opens this driver; None when it cannot (a test double)."""
        if getattr(self._nvml, "__name__", None) == "pynvml":
            return {"kind": "nvml"}
        child_config = getattr(self._nvml, "child_config", None)
        if child_config is None:
            return None
        try:
            return {"kind": "simulated", **child_config()}
        except OSError as e:  # no writable temp directory for the shared call counts
            logger.warning("the simulated driver cannot be shared with a sampler process (%s): sampling in a thread", e)
            return None

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


def open_nvml(environ: Mapping[str, str] | None = None) -> PynvmlProvider | None:
    """NVML if the library and a driver are present, else None (a host without NVIDIA GPUs).

    With ``LLEM_SIMULATE_GPUS`` set in `environ` (default: this process's environment), the
    simulated driver instead; a bad spec raises `ConfigError`.
    """
    from llenergymeasure.simgpu import simulated_nvml

    simulated = simulated_nvml(os.environ if environ is None else environ)
    if simulated is not None:
        logger.info("simulated GPUs (%d device(s)): energy figures are simulated", len(simulated.spec.devices))
        return PynvmlProvider(simulated)
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


def _value_members(nvml: Any) -> dict[int, str]:
    """``c_nvmlFieldValue_t.valueType`` → the member of its value union holding the number."""
    return {
        nvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
        nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
        nvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
    }


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
