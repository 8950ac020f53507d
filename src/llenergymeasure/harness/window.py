"""The measured window: synchronise, open the meter, generate every prompt, synchronise, close the meter.

This is the hot path, kept to the minimum: the prompts are already tokenised,
progress events are throttled, and the meter reads its counters only at the two
edges (the timeline sampler runs in its own process).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llenergymeasure.harness.backends.base import GenerationBatch, InferenceBackend, ProgressCallback, Prompt
from llenergymeasure.harness.energy.base import EnergyMeter, WindowEnergy
from llenergymeasure.util.clock import utc_now


@dataclass(frozen=True)
class WindowOutcome:
    """What happened in the window: the outputs, the energy, and its edges on both clocks."""

    batch: GenerationBatch
    energy: WindowEnergy
    t0_s: float  # monotonic, right after the meter opened
    t1_s: float  # monotonic, right before the meter closed
    started_at: datetime
    ended_at: datetime

    @property
    def duration_s(self) -> float:
        return self.t1_s - self.t0_s

    @property
    def input_tokens(self) -> int:
        return sum(o.input_tokens for o in self.batch.outputs)

    @property
    def output_tokens(self) -> int:
        return sum(o.output_tokens for o in self.batch.outputs)


def run_window(
    backend: InferenceBackend[Any],
    prompts: list[Prompt],
    meter: EnergyMeter,
    *,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = utc_now,
    on_progress: ProgressCallback | None = None,
) -> WindowOutcome:
    """Generate `prompts` inside one energy window."""
    backend.synchronize()
    meter.start_window()
    t0 = clock()
    started_at = now()
    batch = backend.generate(prompts, on_progress)
    backend.synchronize()
    t1 = clock()
    ended_at = now()
    energy = meter.stop_window()
    return WindowOutcome(batch, energy, t0, t1, started_at, ended_at)
