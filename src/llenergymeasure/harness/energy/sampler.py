"""The power timeline: a background sampler off the hot path, written to ``timeseries.parquet``.

The background ticks run on a fixed grid (``EnergyConfig.sample_interval_ms``,
default 100 ms; no drift: deadlines are ``start + k × interval``). Each tick reads
every device of the set with ONE driver call (``nvmlDeviceGetFieldValues``:
instant power and the energy counter). The slow-moving readings — temperature, SM
clock, memory used, utilisation, throttle reasons — have no NVML field, so they
are read once per `aux_interval_s` (default 1 s) and are null in the rows in
between: per tick and device the sampler costs about 1.5 driver calls instead
of 7. The meters also call `sample_now` at the window edges (a full read, in this
process), so the timeline brackets the window exactly.

Where the ticks run: given `child` (how another process opens the same devices),
in a process of their own (`sampler_process`): each driver call releases and
retakes the GIL, and in this process every such hand-off would land on the thread
running ``generate``. Without `child` (devices only this process can open, a
test's fake clock), or when that process cannot start, in a daemon thread. Both
stamp samples with the system-wide monotonic clock, so the two sources merge
into one time-ordered timeline.

Samples are kept at full resolution in memory (one small record per device per
tick: about 36,000 per device-hour) and written once, after the window, with
pyarrow (imported only then). The parquet has one row per (tick, device) and an
``in_window`` column marking the measured window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from llenergymeasure.harness.energy.device import MeasuredDevice

if TYPE_CHECKING:
    from llenergymeasure.harness.energy.sampler_process import Batch, ChildDevices, SamplerProcess

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
#: (study_id, experiment_id, cycle) of the run a timeline belongs to
RunIds = tuple[str | None, str, int]


@dataclass(frozen=True, slots=True)
class PowerSample:
    """One device's readings at one instant. None = not supported by the device."""

    t_s: float  # monotonic clock, seconds
    unix_s: float  # wall clock, seconds since the epoch
    device_index: int  # host index
    device_uuid: str
    power_w: float | None
    energy_mj: int | None
    temperature_c: float | None
    sm_clock_mhz: int | None
    memory_used_mb: float | None
    utilization_pct: int | None
    throttle_reasons: int | None
    #: monotonic time the device's reads finished (t_s is taken before them): a sample whose reads may
    #: have crossed a window edge is told apart by it
    read_done_s: float | None = None


def read_sample(
    dev: MeasuredDevice, t_s: float, unix_s: float, *, full: bool = True, clock: Clock | None = None
) -> PowerSample:
    """`dev`'s power and energy now (one driver call); with `full`, its slow readings too (timestamps: the caller's;
    `clock` stamps when the reads finished).

    Built in one constructor call: this runs for every device at every tick, with the GIL held."""
    d = dev.device
    power_mw, energy_mj = d.power_and_energy()
    if full:
        temperature_c = d.temperature_c()
        sm_clock_mhz = d.sm_clock_mhz()
        memory_used_mb = d.memory_used_mb()
        utilization_pct = d.utilization_pct()
        throttle_reasons = d.throttle_reasons()
    else:
        temperature_c = memory_used_mb = None
        sm_clock_mhz = utilization_pct = throttle_reasons = None
    return PowerSample(
        t_s,
        unix_s,
        dev.host_index,
        dev.uuid,
        None if power_mw is None else power_mw / 1000.0,
        energy_mj,
        temperature_c,
        sm_clock_mhz,
        memory_used_mb,
        utilization_pct,
        throttle_reasons,
        None if clock is None else clock(),  # after every read of the device
    )


def next_tick(k: int, start_s: float, now_s: float, interval_s: float) -> int:
    """The grid index of the tick after tick `k` (ticks at ``start_s + k × interval_s``): k + 1, or — when the
    reads fell behind (a slow driver) — the first grid point after `now_s`: missed ticks are skipped, never burst."""
    k += 1
    late_s = now_s - (start_s + k * interval_s)
    if late_s > 0:
        k += int(late_s // interval_s) + 1
    return k


class PowerSampler:
    """Samples every device of the set on a fixed grid, in a process of its own (`child`) or a daemon thread."""

    def __init__(
        self,
        devices: Sequence[MeasuredDevice],
        interval_s: float = 0.1,
        *,
        aux_interval_s: float = 1.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        child: ChildDevices | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if child is not None and (clock is not time.monotonic or wall_clock is not time.time):
            raise ValueError("a sampler process stamps samples with the system clocks: do not inject clocks")
        self.devices = list(devices)
        self.interval_s = interval_s
        #: ticks between two full reads (at least every tick)
        self.aux_every = max(1, round(aux_interval_s / interval_s))
        self._clock = clock
        self._wall_clock = wall_clock
        self._samples: list[PowerSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child_devices = child
        self._child: SamplerProcess | None = None
        self._child_failures: dict[int, dict[str, int]] = {}
        #: where the background ticks run once started
        self.background: Literal["process", "thread"] | None = None

    def sample_now(self, full: bool = True) -> float:
        """Read every device once (`full`: the slow readings too); returns the timestamp used (monotonic seconds)."""
        clock = self._clock
        t = clock()
        unix = self._wall_clock()
        batch = [read_sample(dev, t, unix, full=full, clock=clock) for dev in self.devices]
        with self._lock:
            self._samples.extend(batch)
        return t

    def start(self) -> None:
        """Start the background ticks (idempotent): in the sampler process when there is a `child`, else (or when
        that process cannot start) in a thread."""
        if self._thread is not None or self._child is not None or not self.devices:
            return
        if self._child_devices is not None:
            from llenergymeasure.harness.energy.sampler_process import (
                ChildConfig,
                SamplerProcess,
                SamplerProcessError,
            )

            config = ChildConfig(**self._child_devices, interval_s=self.interval_s, aux_every=self.aux_every)
            try:
                self._child = SamplerProcess.start(config)
            except SamplerProcessError as e:
                logger.warning("%s; the power sampler runs in a thread instead", e)
            else:
                self.background = "process"
                return
        self.background = "thread"
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="llem-power-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        k = 0
        while True:
            try:
                self.sample_now(full=k % self.aux_every == 0)
            except Exception:  # a telemetry failure must never take the measurement down
                logger.exception("power sample failed; the sampler stops")
                return
            k = next_tick(k, start, time.monotonic(), self.interval_s)
            if self._stop.wait(max(start + k * self.interval_s - time.monotonic(), 0.0)):
                return

    def stop(self) -> None:
        """Stop the background ticks (idempotent); a sampler process hands over its last samples and exits."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        child, self._child = self._child, None
        if child is not None:
            self._merge(child.stop())

    def _merge(self, batch: Batch) -> None:
        """Add a sampler process's samples, keeping the timeline in time order."""
        self._child_failures.update(batch.failures)
        if batch.samples:
            with self._lock:
                self._samples.extend(batch.samples)
                self._samples.sort(key=_time_of)

    @property
    def process_id(self) -> int | None:
        """The sampler process's id while it runs (None: no process)."""
        return self._child.pid if self._child is not None else None

    def read_failures(self, host_index: int) -> dict[str, int]:
        """Failed driver reads of the sampler process on that device, as of its last hand-over (`samples`, `stop`);
        a thread's failures are the device's own."""
        return dict(self._child_failures.get(host_index, {}))

    def samples(self, t0: float | None = None, t1: float | None = None) -> list[PowerSample]:
        """Samples with t0 ≤ t ≤ t1 (either bound optional), in time order (a sampler process's so far included)."""
        if self._child is not None:
            self._merge(self._child.flush())
        with self._lock:
            snapshot = list(self._samples)
        return [s for s in snapshot if (t0 is None or s.t_s >= t0) and (t1 is None or s.t_s <= t1)]

    def device_samples(self, host_index: int, t0: float | None = None, t1: float | None = None) -> list[PowerSample]:
        return [s for s in self.samples(t0, t1) if s.device_index == host_index]

    def write_parquet(
        self, path: Path, window: tuple[float, float] | None = None, run_ids: RunIds | None = None
    ) -> int:
        """Write every sample to `path` atomically (temp file + rename); returns the row count.

        `run_ids` (study_id, experiment_id, cycle) become constant columns, so the timelines of a
        whole study concatenate into one table that still says which run each sample belongs to."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self.samples()
        t0, t1 = window if window is not None else (float("inf"), float("-inf"))
        origin = rows[0].t_s if rows else 0.0
        table = pa.table(
            {
                "timestamp": pa.array([s.unix_s for s in rows], pa.float64()),
                "elapsed_s": pa.array([s.t_s - origin for s in rows], pa.float64()),
                "device_index": pa.array([s.device_index for s in rows], pa.int32()),
                "device_uuid": pa.array([s.device_uuid for s in rows], pa.string()),
                "power_w": pa.array([s.power_w for s in rows], pa.float64()),
                "energy_counter_mj": pa.array([s.energy_mj for s in rows], pa.int64()),
                "temperature_c": pa.array([s.temperature_c for s in rows], pa.float32()),
                "sm_clock_mhz": pa.array([s.sm_clock_mhz for s in rows], pa.int32()),
                "memory_used_mb": pa.array([s.memory_used_mb for s in rows], pa.float64()),
                "utilization_pct": pa.array([s.utilization_pct for s in rows], pa.int16()),
                "throttle_reasons": pa.array([s.throttle_reasons for s in rows], pa.int64()),
                "in_window": pa.array([t0 <= s.t_s <= t1 for s in rows], pa.bool_()),
            }
        )
        if run_ids is not None:
            study_id, experiment_id, cycle = run_ids
            table = table.append_column("study_id", pa.array([study_id] * len(rows), pa.string()))
            table = table.append_column("experiment_id", pa.array([experiment_id] * len(rows), pa.string()))
            table = table.append_column("cycle", pa.array([cycle] * len(rows), pa.int32()))
        metadata = {b"llem.units": b"timestamp=unix s; power=W (instant); energy counter=mJ; memory=MiB"}
        if self.background is not None:  # where the background ticks ran: "process" or "thread"
            metadata[b"llem.sampler"] = self.background.encode()
        table = table.replace_schema_metadata(metadata)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        return len(rows)


def _time_of(sample: PowerSample) -> float:
    return sample.t_s


def timeline_energy_j(sampler: PowerSampler, t0: float, t1: float) -> float | None:
    """The timeline's integral of instant power over [t0, t1], summed over devices; None if a device lacks samples."""
    from llenergymeasure.harness.energy.integrate import integrate_power_j

    margin = 2 * sampler.interval_s
    total = 0.0
    for dev in sampler.devices:
        points = [(s.t_s, s.power_w) for s in sampler.device_samples(dev.host_index, t0 - margin, t1 + margin)]
        powered = [(t, p) for t, p in points if p is not None]
        energy = integrate_power_j([t for t, _ in powered], [p for _, p in powered], t0, t1)
        if energy is None:
            return None
        total += energy
    return total


def throttled_between(sampler: PowerSampler, t0: float, t1: float, mask: int) -> bool | None:
    """Whether any sample in [t0, t1] carries a throttle reason in `mask`; None when no sample reports reasons."""
    reasons = [s.throttle_reasons for s in sampler.samples(t0, t1) if s.throttle_reasons is not None]
    if not reasons:
        return None
    return any(r & mask for r in reasons)
