"""Builders of valid schema objects for the orchestrator's unit tests (plain data, no fakes of our code)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from llenergymeasure.orchestrator.runners.base import Runner, RunRequest
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import RESULT_FILE, ExperimentJob
from llenergymeasure.schemas.results import BaselineProvenance, EnergyBreakdown, EnvironmentSnapshot, ExperimentResult
from llenergymeasure.schemas.study import ExecutionConfig, StudyConfig

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def tiny_config(**overrides: Any) -> ExperimentConfig:
    data: dict[str, Any] = {
        "model": "org/tiny",
        "precision": "fp32",
        "dataset": {"synthetic": True, "input_tokens": 8, "output_tokens": 4},
        "n": 4,
    }
    data.update(overrides)
    return ExperimentConfig.model_validate(data)


def study_of(n_experiments: int = 3, n_cycles: int = 2, **execution: Any) -> StudyConfig:
    exps = [tiny_config(n=4 + i) for i in range(n_experiments)]
    ex = {"n_cycles": n_cycles, "config_gap_seconds": 0, "cycle_gap_seconds": 0, **execution}
    return StudyConfig(name="unit study", experiments=exps, execution=ExecutionConfig.model_validate(ex))


def make_result(
    job: ExperimentJob,
    *,
    output_tokens: int = 100,
    window_s: float = 2.0,
    energy_j: float | None = None,
    baseline_power_w: float | None = None,
    baseline_method: str = "unavailable",
    measured_at: datetime | None = None,
) -> ExperimentResult:
    """A valid result for `job`; energy figures derived from the arguments the way the harness derives them."""
    ctx = job.context
    adjusted = None
    if energy_j is not None and baseline_power_w is not None:
        adjusted = energy_j - baseline_power_w * window_s
    return ExperimentResult(
        study_id=ctx.study_id,
        experiment_id=ctx.experiment_id,
        cycle=ctx.cycle,
        measurement_config_hash=job.config.measurement_config_hash(),
        config=job.config,
        effective_precision="fp32",
        device="cpu",
        measurement_methodology="total",
        started_at=T0,
        window_started_at=T0,
        window_ended_at=T0 + timedelta(seconds=window_s),
        finished_at=T0 + timedelta(seconds=window_s + 1),
        window_duration_s=window_s,
        n_prompts=job.config.n,
        input_tokens=8 * job.config.n,
        output_tokens=output_tokens,
        output_tokens_per_s=output_tokens / window_s,
        total_tokens_per_s=(output_tokens + 8 * job.config.n) / window_s,
        energy_total_j=energy_j,
        energy_adjusted_j=adjusted,
        baseline_power_w=baseline_power_w,
        energy_per_output_token_j=None if energy_j is None else energy_j / output_tokens,
        energy_per_output_token_adjusted_j=None if adjusted is None else adjusted / output_tokens,
        energy_per_total_token_j=None if energy_j is None else energy_j / (output_tokens + 8 * job.config.n),
        energy=EnergyBreakdown(
            method="counter" if energy_j is not None else "unavailable",
            source="nvml" if energy_j is not None else "none",
            baseline=BaselineProvenance(
                method=baseline_method,  # type: ignore[arg-type]
                power_w=baseline_power_w,
                duration_s=30.0 if baseline_method == "measured" else None,
                measured_at=measured_at,
                energy_method="counter" if baseline_method == "measured" else None,
            ),
        ),
        environment_snapshot=EnvironmentSnapshot(
            llenergymeasure_version="2.0.0", python_version="3.11", platform="linux"
        ),
    )


class ScriptedRunner(Runner):
    """Writes result.json like a harness would; `fail` decides which (index, cycle) raise instead."""

    name = "local"

    def __init__(
        self, fail: Callable[[RunRequest], Exception | None] = lambda r: None, environment: str = "img"
    ) -> None:
        self.requests: list[RunRequest] = []
        self.fail = fail
        self.environment = environment

    def environment_key(self, backend: str) -> str:
        return self.environment

    def label(self, backend: str) -> str:
        return f"scripted ({self.environment})"

    def run(self, request: RunRequest) -> ExperimentResult:
        self.requests.append(request)
        error = self.fail(request)
        if error is not None:
            raise error
        result = make_result(
            request.job, energy_j=50.0, baseline_power_w=40.0, baseline_method="measured", measured_at=T0
        )
        if request.job.context.cached_baseline is not None:
            result = make_result(
                request.job, energy_j=50.0, baseline_power_w=40.0, baseline_method="cached", measured_at=T0
            )
        (request.run_dir / RESULT_FILE).write_text(result.model_dump_json())
        return result
