"""Warmup before the measured window: full-length prompts, optional CV convergence, thermal floor.

Decisions:

- One warmup **iteration** is one ``generate`` call on one batch shaped like the
  window's batches (``preferred_batch_size`` prompts), each forced to the full
  output length (min = max new tokens), so every kernel and cache size the
  window uses is exercised. With the default batch size 1, an iteration is one
  prompt. `WarmupResult.iterations_completed` counts iterations.
- Without convergence detection: exactly ``n_warmup`` iterations. With it: at
  least ``min_prompts``, stop once the coefficient of variation (stdev / mean)
  of the last ``window_size`` iteration latencies is below ``cv_threshold``,
  at most ``max_prompts``.
- **Thermal floor**: then keep generating until ``thermal_floor_seconds`` of
  warm load have passed since warmup began — never an idle sleep, which would
  cool the GPU. ``0`` is allowed and recorded as a warning.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from llenergymeasure.harness.backends.base import InferenceBackend, Prompt
from llenergymeasure.schemas.config.sections import WarmupConfig
from llenergymeasure.schemas.results import MeasurementWarning, WarmupResult

#: (iterations done, planned upper bound, current CV or None)
WarmupProgressCallback = Callable[[int, int, float | None], None]


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample stdev / mean of `values`; None with fewer than 2 values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return None if mean == 0 else statistics.stdev(values) / mean


@dataclass(frozen=True)
class WarmupOutcome:
    result: WarmupResult
    thermal_floor_s: float
    warnings: tuple[MeasurementWarning, ...] = ()


def full_length(prompts: Sequence[Prompt], max_new_tokens: int) -> list[Prompt]:
    """`prompts` forced to generate exactly `max_new_tokens` tokens (EOS cannot end them early)."""
    return [replace(p, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens) for p in prompts]


def run_warmup(
    backend: InferenceBackend[object],
    prompts: Sequence[Prompt],
    config: WarmupConfig,
    max_new_tokens: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_progress: WarmupProgressCallback | None = None,
) -> WarmupOutcome | None:
    """Warm `backend` up on `prompts` (already prepared); None when warmup is disabled."""
    if not config.enabled:
        return None
    if not prompts:
        raise ValueError("warmup needs at least one prompt")
    batch_size = max(1, backend.preferred_batch_size)
    batches = [full_length(prompts[i : i + batch_size], max_new_tokens) for i in range(0, len(prompts), batch_size)]
    converge = config.convergence_detection
    planned = config.max_prompts if converge else config.n_warmup
    latencies: list[float] = []
    start = clock()
    cv: float | None = None
    converged = not converge

    def step() -> None:
        nonlocal cv
        batch = batches[len(latencies) % len(batches)]
        t0 = clock()
        backend.generate(batch)
        backend.synchronize()
        latencies.append(clock() - t0)
        cv = coefficient_of_variation(latencies[-config.window_size :])
        if on_progress is not None:
            on_progress(len(latencies), max(planned, len(latencies)), cv)

    if converge:
        while len(latencies) < config.max_prompts:
            step()
            enough = len(latencies) >= max(config.min_prompts, config.window_size)
            if enough and cv is not None and cv < config.cv_threshold:
                converged = True
                break
    else:
        for _ in range(config.n_warmup):
            step()
    while clock() - start < config.thermal_floor_seconds:
        step()
    duration_s = clock() - start

    warnings: list[MeasurementWarning] = []
    if config.thermal_floor_seconds == 0:
        warnings.append(
            MeasurementWarning(
                code="no_thermal_floor",
                message="warmup.thermal_floor_seconds is 0: the window may open on a cold GPU "
                "(lower clocks-to-power ratio than in steady state)",
            )
        )
    if converge and not converged:
        warnings.append(
            MeasurementWarning(
                code="warmup_not_converged",
                message=f"warmup latency CV {cv if cv is not None else float('nan'):.3f} stayed above "
                f"{config.cv_threshold} after {config.max_prompts} iterations",
            )
        )
    result = WarmupResult(
        converged=converged,
        final_cv=coefficient_of_variation(latencies[-config.window_size :]),
        iterations_completed=len(latencies),
        target_cv=config.cv_threshold if converge else None,
        max_prompts=planned,
        warmup_duration_s=duration_s,
    )
    return WarmupOutcome(result=result, thermal_floor_s=duration_s, warnings=tuple(warnings))
