"""`SimulatedNvml`: the pynvml functions our device adapter calls, answered from analytic power traces.

It stands *below* the adapter: ``PynvmlProvider(SimulatedNvml(spec))`` runs the
same adapter code (counters, field values, temperature, clocks, memory,
processes, error mapping) as ``PynvmlProvider(pynvml)``. Errors are pynvml's own
`NVMLError` subclasses, field values are pynvml's ``c_nvmlFieldValue_t`` with a
return code per field, and constants come from pynvml, so nothing in the adapter
can tell the difference except the numbers.

- Time ``t`` is seconds since this driver object was created (the driver "started"
  in this process; or `origin_s`, given by the process that did), on the injected monotonic clock.
- The energy counter (mJ) is the exact integral of the trace at the last update
  instant ``floor(t / update_period_s) × update_period_s``, rounded down to a whole
  millijoule; a device with ``energy_counter: false`` answers NOT_SUPPORTED.
- Faults: calls are counted per device and kind — ``energy`` (total-energy reads,
  by function or by field), ``power`` (instant-power field reads), ``any`` (every
  call on the device's handle, a field-values call counting once). The `nth` call
  of a kind raises the named error (in a field-values call, an energy or power
  fault is that field's return code, as real NVML reports it).
- Everything else is fixed: temperature 30 °C + 0.1 °C per watt drawn, SM clock
  1980 MHz, no memory used, 0 % utilisation, no throttle reasons, power limit
  700 W, persistence on, MIG off, no compute processes, driver "simulated".
- `call_latency_s` makes every call wait that long (sleeping, which releases the
  GIL as a real ctypes call does): the cost model of the sampler benchmark.
- The harness's timeline sampler runs in a process of its own, which opens the
  same devices (`child_config` → `from_child_config`): it keeps the driver's time
  origin, so both processes see one power trace, and the call counts move to a
  small file both processes update under a lock (`share_counts`; devices with
  faults only), so "the nth call" still counts every call the harness makes,
  whichever process makes it.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvml

from llenergymeasure.schemas.simulated_gpus import SimulatedDevice, SimulatedGpuSpec
from llenergymeasure.simgpu.traces import energy_j, power_w

ERROR_CODES = {
    "unknown": pynvml.NVML_ERROR_UNKNOWN,
    "not_supported": pynvml.NVML_ERROR_NOT_SUPPORTED,
    "gpu_is_lost": pynvml.NVML_ERROR_GPU_IS_LOST,
}
SM_CLOCK_MHZ = 1980
POWER_LIMIT_MW = 700_000
DRIVER_VERSION = "simulated"
_UUID_NAMESPACE = uuid.UUID("6c6c656d-0000-4000-8000-73696d677075")
CALL_KINDS = ("energy", "power", "any")

_COUNT = struct.Struct("<q")


class SharedCallCounts:
    """Call counts per (device, kind) in a file that several processes map and update under an exclusive lock."""

    def __init__(self, path: Path, devices: int) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, devices * len(CALL_KINDS) * _COUNT.size)

    @classmethod
    def create(cls, counts: Sequence[dict[str, int]]) -> SharedCallCounts:
        """A new counts file (in the temp directory) holding `counts` (one dict per device)."""
        fd, name = tempfile.mkstemp(prefix="llem-simgpu-calls-")
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(_COUNT.pack(c[kind]) for c in counts for kind in CALL_KINDS))
        return cls(Path(name), len(counts))

    def bump(self, index: int, kind: str) -> int:
        """Add one call of `kind` on device `index`; returns the new count."""
        offset = (index * len(CALL_KINDS) + CALL_KINDS.index(kind)) * _COUNT.size
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            (value,) = _COUNT.unpack_from(self._map, offset)
            _COUNT.pack_into(self._map, offset, value + 1)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return int(value + 1)

    def read(self, index: int) -> dict[str, int]:
        base = index * len(CALL_KINDS)
        return {
            kind: int(_COUNT.unpack_from(self._map, (base + i) * _COUNT.size)[0]) for i, kind in enumerate(CALL_KINDS)
        }

    def close(self, *, remove: bool = False) -> None:
        self._map.close()
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


@dataclass
class SimulatedHandle:
    """What ``nvmlDeviceGetHandleByIndex`` returns: the device and its call counters."""

    index: int
    device: SimulatedDevice
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CALL_KINDS, 0))
    #: set while another process shares the counts (the sampler's) of a device with faults; `calls` is then
    #: stale. A fault-free device keeps counting in each process: nothing fires on its counts, and it takes no lock
    shared: SharedCallCounts | None = None

    def count(self, kind: str) -> int | None:
        """Count one call of `kind`; the NVML error code of a fault that fires on it, else None."""
        if self.shared is not None:
            n = self.shared.bump(self.index, kind)
        else:
            n = self.calls[kind] = self.calls[kind] + 1
        for fault in self.device.faults:
            if fault.call == kind and fault.nth == n:
                return int(ERROR_CODES[fault.error])
        return None


class SimulatedNvml:
    """A stand-in for the pynvml module (only the functions listed here; constants are pynvml's)."""

    simulated = True

    def __init__(
        self,
        spec: SimulatedGpuSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        call_latency_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        origin_s: float | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._origin = clock() if origin_s is None else origin_s
        self._latency = call_latency_s
        self._sleep = sleep
        self._handles = [SimulatedHandle(i, d) for i, d in enumerate(spec.devices)]
        self._shared: SharedCallCounts | None = None
        self._owns_shared = False

    # --- a second process on the same devices (the timeline sampler's) --------------------------------
    def share_counts(self) -> Path:
        """Move the call counts into a file another process can update too; returns its path (idempotent)."""
        if self._shared is None:
            self._shared = SharedCallCounts.create([h.calls for h in self._handles])
            self._owns_shared = True
            for h in self._handles:
                h.shared = self._shared if h.device.faults else None
        return self._shared.path

    def unshare_counts(self) -> None:
        """Take the counts back into this process (the other process has stopped) and remove the file."""
        shared, self._shared = self._shared, None
        self._owns_shared = False
        if shared is None:
            return
        for h in self._handles:
            if h.shared is not None:
                h.calls = shared.read(h.index)
                h.shared = None
        shared.close(remove=True)

    def child_config(self) -> dict[str, Any]:
        """What `from_child_config` needs to open these devices in another process: the spec, the time
        origin (on the system-wide monotonic clock), the call latency and the shared counts file."""
        if self._clock is not time.monotonic:
            raise ValueError("another process cannot follow an injected clock: share a driver on time.monotonic")
        return {
            "spec": self.spec.model_dump(mode="json"),
            "origin_s": self._origin,
            "call_latency_s": self._latency,
            "counts_path": str(self.share_counts()),
        }

    @classmethod
    def from_child_config(cls, config: dict[str, Any]) -> SimulatedNvml:
        """The driver `child_config` describes, in this process (time and call counts shared with its parent)."""
        driver = cls(
            SimulatedGpuSpec.model_validate(config["spec"]),
            call_latency_s=float(config["call_latency_s"]),
            origin_s=float(config["origin_s"]),
        )
        driver._shared = SharedCallCounts(Path(config["counts_path"]), len(driver._handles))
        for h in driver._handles:
            h.shared = driver._shared if h.device.faults else None
        return driver

    def __getattr__(self, name: str) -> Any:
        # NVML_* constants and NVMLError classes are pynvml's own; its functions are never reached
        if name.startswith(("NVML", "c_nvml")):
            value = getattr(pynvml, name)
            setattr(self, name, value)  # found directly from now on
            return value
        raise AttributeError(f"the simulated NVML driver does not implement {name}")

    # --- time and calls -------------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """Seconds since the driver started."""
        return self._clock() - self._origin

    def _enter(self, handle: SimulatedHandle, kind: str | None = None) -> None:
        if self._latency > 0:
            self._sleep(self._latency)
        code = handle.count("any")
        if kind is not None:
            code = handle.count(kind) or code
        if code is not None:
            raise pynvml.NVMLError(code)

    def energy_counter_mj(self, device: SimulatedDevice, t_s: float) -> int | None:
        """The counter at `t_s`; None for a device without one."""
        if device.energy_counter is False:
            return None
        period = device.energy_counter.update_period_s
        return math.floor(1000.0 * energy_j(device.power, math.floor(t_s / period) * period))

    # --- system ---------------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        if self._shared is not None and self._owns_shared:
            self.unshare_counts()
        elif self._shared is not None:
            self._shared.close()
            self._shared = None

    def nvmlSystemGetDriverVersion(self) -> str:
        return DRIVER_VERSION

    def nvmlDeviceGetCount(self) -> int:
        return len(self._handles)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimulatedHandle:
        if not 0 <= index < len(self._handles):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._handles[index]

    # --- identity -------------------------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, handle: SimulatedHandle) -> str:
        self._enter(handle)
        return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{handle.index}:{handle.device.name}')}"

    def nvmlDeviceGetName(self, handle: SimulatedHandle) -> str:
        self._enter(handle)
        return handle.device.name

    # --- energy and power -----------------------------------------------------------------------------
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: SimulatedHandle) -> int:
        self._enter(handle, "energy")
        value = self.energy_counter_mj(handle.device, self.elapsed_s())
        if value is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    def nvmlDeviceGetFieldValues(self, handle: SimulatedHandle, field_ids: Sequence[int]) -> Any:
        self._enter(handle)
        t = self.elapsed_s()
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for slot, field_id in zip(values, field_ids, strict=True):
            slot.fieldId = field_id
            slot.timestamp = int(t * 1e6)
            slot.nvmlReturn = self._field(handle, field_id, t, slot)
        return values

    def _field(self, handle: SimulatedHandle, field_id: int, t: float, slot: Any) -> int:
        device = handle.device
        if field_id == pynvml.NVML_FI_DEV_POWER_INSTANT:
            fault = handle.count("power")
            if fault is not None:
                return fault
            slot.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            slot.value.uiVal = round(1000.0 * power_w(device.power, t))
            return int(pynvml.NVML_SUCCESS)
        if field_id == pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
            fault = handle.count("energy")
            if fault is not None:
                return fault
            counter = self.energy_counter_mj(device, t)
            if counter is None:
                return int(pynvml.NVML_ERROR_NOT_SUPPORTED)
            slot.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
            slot.value.ullVal = counter
            return int(pynvml.NVML_SUCCESS)
        return int(pynvml.NVML_ERROR_NOT_SUPPORTED)

    # --- the rest of a device's state ------------------------------------------------------------------
    def nvmlDeviceGetTemperature(self, handle: SimulatedHandle, sensor: int) -> int:
        self._enter(handle)
        return round(30.0 + 0.1 * power_w(handle.device.power, self.elapsed_s()))

    def nvmlDeviceGetClockInfo(self, handle: SimulatedHandle, clock_type: int) -> int:
        self._enter(handle)
        return SM_CLOCK_MHZ

    def nvmlDeviceGetMemoryInfo(self, handle: SimulatedHandle) -> Any:
        self._enter(handle)
        total = handle.device.memory_mib * 2**20
        return pynvml.c_nvmlMemory_t(total=total, free=total, used=0)

    def nvmlDeviceGetUtilizationRates(self, handle: SimulatedHandle) -> Any:
        self._enter(handle)
        return pynvml.c_nvmlUtilization_t(gpu=0, memory=0)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: SimulatedHandle) -> int:
        self._enter(handle)
        return 0

    nvmlDeviceGetCurrentClocksThrottleReasons = nvmlDeviceGetCurrentClocksEventReasons

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: SimulatedHandle) -> int:
        self._enter(handle)
        return POWER_LIMIT_MW

    def nvmlDeviceGetPersistenceMode(self, handle: SimulatedHandle) -> int:
        self._enter(handle)
        return int(pynvml.NVML_FEATURE_ENABLED)

    def nvmlDeviceGetMigMode(self, handle: SimulatedHandle) -> list[int]:
        self._enter(handle)
        return [int(pynvml.NVML_DEVICE_MIG_DISABLE), int(pynvml.NVML_DEVICE_MIG_DISABLE)]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimulatedHandle) -> list[Any]:
        self._enter(handle)
        return []
