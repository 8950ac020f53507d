"""Fakes of our own interfaces for the harness tests: a clock, NVML devices with known power traces, a backend.

`PowerTrace` is piecewise linear; its integral is computed analytically (exact
trapezoids of the segments), independently of the code under test.
`FakeNvmlDevice` exposes that trace the way a GPU does: instant power now, and
a total-energy counter in millijoules that only updates every `tick_s`
(100 ms by default), holding the energy accumulated up to the last tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from llenergymeasure.harness.backends.base import (
    GenerationBatch,
    InferenceBackend,
    ProgressCallback,
    Prompt,
    RequestOutput,
)
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.harness.params import ParameterCounts


class FakeClock:
    """Monotonic seconds that only move when told to; `sleep` advances them."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt

    def sleep(self, dt: float) -> None:
        self.t += dt


@dataclass(frozen=True)
class PowerTrace:
    """Piecewise-linear power: (t, watts) knots; constant before the first and after the last knot."""

    knots: tuple[tuple[float, float], ...]

    @staticmethod
    def steps(*levels: tuple[float, float]) -> PowerTrace:
        """Piecewise constant: (start_s, watts) pairs; each level holds until the next starts (edges 1 µs wide)."""
        knots: list[tuple[float, float]] = []
        for i, (t, p) in enumerate(levels):
            if i > 0:
                knots.append((t - 1e-6, levels[i - 1][1]))
            knots.append((t, p))
        return PowerTrace(tuple(knots))

    def power(self, t: float) -> float:
        ks = self.knots
        if t <= ks[0][0]:
            return ks[0][1]
        for (ta, pa), (tb, pb) in pairwise(ks):
            if ta <= t <= tb:
                return pa + (pb - pa) * (t - ta) / (tb - ta)
        return ks[-1][1]

    def energy(self, a: float, b: float) -> float:
        """∫ power dt over [a, b], joules (exact for a piecewise-linear trace)."""
        if b <= a:
            return 0.0
        points = sorted({a, b, *(t for t, _ in self.knots if a < t < b)})
        return sum((t1 - t0) * (self.power(t0) + self.power(t1)) / 2 for t0, t1 in pairwise(points))


@dataclass
class FakeNvmlDevice:
    """An `NvmlDevice` fed by a power trace; its energy counter ticks every `tick_s`."""

    trace: PowerTrace
    clock: Callable[[], float]
    uuid: str = "GPU-fake-0"
    name: str = "Fake GPU"
    tick_s: float = 0.1
    counter_offset_mj: int = 123_456_789  # "energy since driver load" does not start at 0
    has_counter: bool = True
    has_instant_power: bool = True
    temperature: Callable[[float], float] = lambda t: 40.0 + t / 100.0
    throttle: int = 0
    persistence: bool | None = True
    pids: list[int] = field(default_factory=list)
    memory_total: float = 81_920.0
    memory_used: float = 512.0

    def energy_mj(self) -> int | None:
        if not self.has_counter:
            return None
        last_tick = math.floor(self.clock() / self.tick_s + 1e-9) * self.tick_s
        return self.counter_offset_mj + round(self.trace.energy(0.0, last_tick) * 1000)

    def power_instant_mw(self) -> int | None:
        return round(self.trace.power(self.clock()) * 1000) if self.has_instant_power else None

    def temperature_c(self) -> float | None:
        return self.temperature(self.clock())

    def sm_clock_mhz(self) -> int | None:
        return 1980

    def memory_used_mb(self) -> float | None:
        return self.memory_used

    def memory_total_mb(self) -> float | None:
        return self.memory_total

    def utilization_pct(self) -> int | None:
        return 97

    def throttle_reasons(self) -> int | None:
        return self.throttle

    def power_limit_w(self) -> float | None:
        return 700.0

    def persistence_mode(self) -> bool | None:
        return self.persistence

    def mig_mode(self) -> bool | None:
        return False

    def compute_pids(self) -> list[int] | None:
        return list(self.pids)

    def power_and_energy(self) -> tuple[int | None, int | None]:
        return self.power_instant_mw(), self.energy_mj()

    def read_failures(self) -> dict[str, int]:
        return {}


class FakeProvider:
    """An `NvmlProvider` over fake devices."""

    def __init__(self, devices: Sequence[FakeNvmlDevice]) -> None:
        self.devices = list(devices)
        self.closed = False

    def device_count(self) -> int:
        return len(self.devices)

    def device(self, index: int) -> FakeNvmlDevice:
        return self.devices[index]

    def driver_version(self) -> str | None:
        return "550.54.15"

    def close(self) -> None:
        self.closed = True


def measured(devices: Sequence[FakeNvmlDevice], first_host_index: int = 0) -> list[MeasuredDevice]:
    return [MeasuredDevice(first_host_index + i, d.uuid, d) for i, d in enumerate(devices)]


class FakeBackend(InferenceBackend[Any]):
    """Generates exactly `max_new_tokens` per prompt (or `eos_after` when set, if smaller) and advances the
    fake clock by `seconds_per_batch` per generate call. Input tokens = words of the prompt text."""

    name = "pytorch"

    def __init__(
        self,
        config: Any,
        section: Any,
        device_ids: Sequence[int],
        *,
        clock: FakeClock,
        seconds_per_batch: float | Callable[[int], float] = 0.5,
        batch_size: int = 1,
        eos_after: int | None = None,
    ) -> None:
        super().__init__(config, section, device_ids)
        self.clock = clock
        self.seconds_per_batch = seconds_per_batch
        self.batch_size = batch_size
        self.eos_after = eos_after
        self.calls: list[int] = []  # prompts per generate call
        self.seen: list[list[str]] = []  # prompt texts per generate call
        self.events: list[str] = []

    def load(self) -> None:
        self.events.append("load")

    def prepare_device(self) -> None:
        self.events.append("prepare_device")
        self.context_up = bool(self.device_ids)

    def release_device(self) -> None:
        self.events.append("release_device")

    @property
    def device_state(self) -> Any:
        return "cuda_context" if getattr(self, "context_up", False) else super().device_state

    def generate(self, prompts: Sequence[Prompt], on_progress: ProgressCallback | None = None) -> GenerationBatch:
        outputs: list[RequestOutput] = []
        self.seen.append([p.text for p in prompts])
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            n = len(self.calls)
            dt = self.seconds_per_batch(n) if callable(self.seconds_per_batch) else self.seconds_per_batch
            self.calls.append(len(batch))
            self.clock.advance(dt)
            for p in batch:
                out = p.max_new_tokens
                if self.eos_after is not None and (p.min_new_tokens or 0) < self.eos_after:
                    out = min(out, max(self.eos_after, p.min_new_tokens or 0))
                outputs.append(RequestOutput(self.count_tokens(p.text), out, dt))
            if on_progress is not None:
                on_progress(len(outputs), len(prompts))
        return GenerationBatch(outputs, "request" if self.batch_size == 1 else "batch")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    @property
    def preferred_batch_size(self) -> int:
        return self.batch_size

    def parameter_counts(self) -> ParameterCounts | None:
        return ParameterCounts(body=1_000_000, output_projection=100_000, source="model")


def minimal_result(config: Any, **overrides: Any) -> Any:
    """A valid `ExperimentResult` with round numbers (for runner/collection tests that need one on disk)."""
    from datetime import datetime, timezone

    from llenergymeasure.schemas.results import (
        BaselineProvenance,
        EnergyBreakdown,
        EnvironmentSnapshot,
        ExperimentResult,
    )

    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    data: dict[str, Any] = {
        "experiment_id": "e1",
        "measurement_config_hash": config.measurement_config_hash(),
        "config": config,
        "effective_precision": "fp32",
        "device": "cpu",
        "measurement_methodology": "total",
        "started_at": t,
        "window_started_at": t,
        "window_ended_at": t,
        "finished_at": t,
        "window_duration_s": 10.0,
        "n_prompts": 4,
        "input_tokens": 40,
        "output_tokens": 80,
        "output_tokens_per_s": 8.0,
        "total_tokens_per_s": 12.0,
        "energy_total_j": None,
        "energy_adjusted_j": None,
        "baseline_power_w": None,
        "energy_per_output_token_j": None,
        "energy_per_output_token_adjusted_j": None,
        "energy_per_total_token_j": None,
        "energy": EnergyBreakdown(
            method="unavailable", source="none", baseline=BaselineProvenance(method="unavailable", power_w=None)
        ),
        "environment_snapshot": EnvironmentSnapshot(
            llenergymeasure_version="2.0.0", python_version="3.11", platform="linux"
        ),
    }
    data.update(overrides)
    return ExperimentResult(**data)
