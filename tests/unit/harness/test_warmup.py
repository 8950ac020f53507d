"""Warmup: fixed count, CV convergence, thermal floor as warm load (never a sleep)."""

from __future__ import annotations

from typing import Any

import pytest
from harness_fakes import FakeBackend, FakeClock

from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.warmup import coefficient_of_variation, run_warmup
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.sections import WarmupConfig

PROMPTS = [Prompt(f"prompt number {i}", max_new_tokens=8) for i in range(6)]


def backend(clock: FakeClock, **kwargs: Any) -> FakeBackend:
    return FakeBackend(ExperimentConfig(model="m"), None, [], clock=clock, **kwargs)


def test_fixed_count_of_full_length_iterations(clock: FakeClock) -> None:
    b = backend(clock, eos_after=2)
    out = run_warmup(b, PROMPTS, WarmupConfig(n_warmup=5, thermal_floor_seconds=0), 64, clock=clock)
    assert out is not None
    r = out.result
    assert (r.iterations_completed, r.converged, r.target_cv, r.max_prompts) == (5, True, None, 5)
    assert r.warmup_duration_s == pytest.approx(2.5)
    assert b.calls == [1, 1, 1, 1, 1]
    assert [w.code for w in out.warnings] == ["no_thermal_floor"]


def test_warmup_prompts_are_forced_to_full_length(clock: FakeClock) -> None:
    seen: list[tuple[int, int | None]] = []

    class Recording(FakeBackend):
        def generate(self, prompts, on_progress=None):  # type: ignore[no-untyped-def]
            seen.extend((p.max_new_tokens, p.min_new_tokens) for p in prompts)
            return super().generate(prompts, on_progress)

    b = Recording(ExperimentConfig(model="m"), None, [], clock=clock)
    run_warmup(b, PROMPTS, WarmupConfig(n_warmup=2, thermal_floor_seconds=0), 64, clock=clock)
    assert seen == [(64, 64), (64, 64)]


def test_thermal_floor_keeps_generating_until_the_floor(clock: FakeClock) -> None:
    b = backend(clock, seconds_per_batch=0.5)
    progress: list[tuple[int, int]] = []
    out = run_warmup(
        b,
        PROMPTS,
        WarmupConfig(n_warmup=2, thermal_floor_seconds=3.0),
        64,
        clock=clock,
        on_progress=lambda d, t, cv: progress.append((d, t)),
    )
    assert out is not None
    # 2 counted iterations, then load continues until 3.0 s of warm load: 6 × 0.5 s
    assert out.result.iterations_completed == 6
    assert out.thermal_floor_s == pytest.approx(3.0)
    assert out.warnings == ()
    assert progress[-1] == (6, 6)


def test_batches_shaped_like_the_window(clock: FakeClock) -> None:
    b = backend(clock, batch_size=4)
    run_warmup(b, PROMPTS, WarmupConfig(n_warmup=3, thermal_floor_seconds=0), 64, clock=clock)
    assert b.calls == [4, 2, 4]  # cycles over the window's batches


def test_convergence_stops_once_cv_is_below_threshold(clock: FakeClock) -> None:
    b = backend(clock, seconds_per_batch=lambda n: 1.0 + (0.3 if n % 2 else 0.0) if n < 4 else 0.5)
    cfg = WarmupConfig(
        convergence_detection=True,
        cv_threshold=0.05,
        window_size=5,
        min_prompts=5,
        max_prompts=50,
        thermal_floor_seconds=0,
    )
    out = run_warmup(b, PROMPTS, cfg, 64, clock=clock)
    assert out is not None
    r = out.result
    # latencies 1.0 1.3 1.0 1.3 then 0.5 ...: the last 5 are all 0.5 first at iteration 9
    assert (r.converged, r.iterations_completed, r.final_cv, r.target_cv, r.max_prompts) == (True, 9, 0.0, 0.05, 50)


def test_convergence_gives_up_at_max_prompts_with_a_warning(clock: FakeClock) -> None:
    b = backend(clock, seconds_per_batch=lambda n: 0.5 if n % 2 else 1.0)
    cfg = WarmupConfig(
        convergence_detection=True,
        cv_threshold=0.05,
        window_size=5,
        min_prompts=5,
        max_prompts=12,
        thermal_floor_seconds=0,
    )
    out = run_warmup(b, PROMPTS, cfg, 64, clock=clock)
    assert out is not None
    assert (out.result.converged, out.result.iterations_completed) == (False, 12)
    assert "warmup_not_converged" in [w.code for w in out.warnings]


def test_disabled_warmup_does_nothing(clock: FakeClock) -> None:
    b = backend(clock)
    assert run_warmup(b, PROMPTS, WarmupConfig(enabled=False), 64, clock=clock) is None
    assert b.calls == []


def test_coefficient_of_variation() -> None:
    assert coefficient_of_variation([1.0]) is None
    assert coefficient_of_variation([2.0, 2.0, 2.0]) == 0.0
    # stdev([1, 3]) = √2, mean 2
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(2**0.5 / 2)
