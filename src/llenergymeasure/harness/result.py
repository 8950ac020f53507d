"""Assemble `ExperimentResult` from the phases' outcomes (no measurement happens here).

The headline figures cover the whole window: the whole prompt set, from the
first prompt's submission to the last one's completion. ``measurement_methodology``
is ``steady_state`` when a steady-state sub-window could also be derived
(`harness.steady_state`: continuous-batching backends with per-request timing),
else ``total``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from llenergymeasure.harness.baseline import (
    BaselineOutcome,
    adjusted_energy_j,
    colder_baseline_warning,
    staleness_warning,
)
from llenergymeasure.harness.metrics import (
    adjusted_negative_warning,
    disagreement_warning,
    flops_estimate,
    latency_stats,
    per_second,
    per_token,
    short_window_warnings,
    timeline_disagreement_pct,
)
from llenergymeasure.harness.params import ParameterCounts
from llenergymeasure.harness.warmup import WarmupOutcome
from llenergymeasure.harness.window import WindowOutcome
from llenergymeasure.schemas.job import ExperimentJob
from llenergymeasure.schemas.results import (
    CacheReuse,
    CO2Estimate,
    DeviceEnergy,
    EnergyBreakdown,
    EnvironmentSnapshot,
    ExperimentResult,
    MeasurementWarning,
    MemoryStats,
    SteadyStateWindow,
    ThermalInfo,
)


@dataclass
class RunFacts:
    """Everything measured or decided during one run, before it becomes a result."""

    job: ExperimentJob
    started_at: datetime
    finished_at: datetime
    window: WindowOutcome
    baseline: BaselineOutcome
    warmup: WarmupOutcome | None
    environment: EnvironmentSnapshot
    effective_precision: str
    device: str
    device_ids: list[int]
    memory: MemoryStats | None = None
    parameter_counts: ParameterCounts | None = None
    temperature_start_c: float | None = None
    temperature_end_c: float | None = None
    throttled: bool | None = None
    timeline_energy_j: float | None = None
    timeseries_file: str | None = None
    warnings: list[MeasurementWarning] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cache_reuse: CacheReuse | None = None
    steady_state: SteadyStateWindow | None = None
    model_commit: str | None = None


def collect_warnings(facts: RunFacts) -> list[MeasurementWarning]:
    """Every warning of the run, de-duplicated, in the order they arose."""
    window, energy = facts.window, facts.window.energy
    cfg = facts.job.config
    found: list[MeasurementWarning | None] = [*facts.warnings, *facts.baseline.warnings]
    if facts.warmup is not None:
        found += facts.warmup.warnings
    found += energy.warnings
    if energy.energy_j is not None:
        found += short_window_warnings(window.duration_s, energy.counter_updates)
        adjusted = adjusted_energy_j(energy.energy_j, facts.baseline.power_w, window.duration_s)
        found.append(adjusted_negative_warning(adjusted))
    if energy.method == "counter":
        pct = timeline_disagreement_pct(facts.timeline_energy_j, energy.energy_j)
        found.append(disagreement_warning(pct, cfg.energy.cross_check_tolerance_pct))
    found.append(staleness_warning(facts.baseline.provenance, window.ended_at))
    found.append(colder_baseline_warning(facts.baseline.provenance, facts.temperature_start_c))
    if facts.baseline.provenance.power_w is not None and facts.baseline.provenance.device_state == "no_cuda_context":
        found.append(
            MeasurementWarning(
                code="baseline_without_cuda_context",
                message="the idle baseline was measured without a CUDA context on the GPUs while the window ran "
                "with one (a context alone raises idle power by several watts per GPU): the adjusted energy "
                "is over-stated",
            )
        )
    if facts.throttled:
        found.append(
            MeasurementWarning(
                code="throttling",
                message="the GPUs were power- or thermally-throttled during the window (see throttle_reasons "
                "in timeseries.parquet): throughput and energy reflect throttled clocks",
            )
        )
    out: list[MeasurementWarning] = []
    seen: set[tuple[str, str]] = set()
    for w in found:
        if w is not None and (w.code, w.message) not in seen:
            seen.add((w.code, w.message))
            out.append(w)
    return out


def build_result(facts: RunFacts) -> ExperimentResult:
    """The validated `ExperimentResult` for `facts`."""
    job, window, energy = facts.job, facts.window, facts.window.energy
    ctx = job.context
    # the config as the user wrote it (host paths) when the runner rewrote paths for the container: the result
    # records that one, so its measurement_config_hash matches the host's manifest
    cfg = ctx.submitted_config or job.config
    duration_s = window.duration_s
    in_tok, out_tok = window.input_tokens, window.output_tokens
    baseline_w = facts.baseline.power_w
    total_j = energy.energy_j
    adjusted_j = adjusted_energy_j(total_j, baseline_w, duration_s)
    timeline_pct = timeline_disagreement_pct(facts.timeline_energy_j, total_j) if energy.method == "counter" else None
    breakdown = EnergyBreakdown(
        method=energy.method,
        source=energy.source,
        scope=energy.scope,
        per_device=[
            DeviceEnergy(
                device_index=d.host_index,
                device_uuid=d.uuid,
                energy_j=d.energy_j,
                method=d.method,
                counter_updates=d.counter_updates,
            )
            for d in energy.per_device
        ],
        baseline=facts.baseline.provenance,
        baseline_energy_j=baseline_w * duration_s if baseline_w is not None else None,
        timeline_energy_j=facts.timeline_energy_j,
        timeline_vs_counter_pct=timeline_pct,
        cpu_energy_j=energy.cpu_energy_j,
        ram_energy_j=energy.ram_energy_j,
    )
    outputs = window.batch.outputs
    ttfts = [o.ttft_s for o in outputs if o.ttft_s is not None]
    itls = [o.itl_s for o in outputs if o.itl_s is not None]
    return ExperimentResult(
        study_id=ctx.study_id,
        experiment_id=ctx.experiment_id,
        cycle=ctx.cycle,
        # the config as run (container paths): local inputs hash by content, so this equals the host's hash
        measurement_config_hash=job.config.measurement_config_hash(),
        config=cfg,
        effective_precision=facts.effective_precision,
        device="cuda" if facts.device == "cuda" else "cpu",
        device_ids=facts.device_ids,
        measurement_methodology="steady_state" if facts.steady_state is not None else "total",
        steady_state_window=facts.steady_state,
        started_at=facts.started_at,
        window_started_at=window.started_at,
        window_ended_at=window.ended_at,
        finished_at=facts.finished_at,
        window_duration_s=duration_s,
        n_prompts=len(outputs),
        input_tokens=in_tok,
        output_tokens=out_tok,
        output_tokens_per_s=per_second(out_tok, duration_s),
        total_tokens_per_s=per_second(in_tok + out_tok, duration_s),
        energy_total_j=total_j,
        energy_adjusted_j=adjusted_j,
        baseline_power_w=baseline_w,
        energy_per_output_token_j=per_token(total_j, out_tok),
        energy_per_output_token_adjusted_j=per_token(adjusted_j, out_tok),
        energy_per_total_token_j=per_token(total_j, in_tok + out_tok),
        energy=breakdown,
        energy_per_device_j=[d.energy_j for d in energy.per_device],
        warmup_excluded_samples=facts.warmup.result.iterations_completed if facts.warmup is not None else 0,
        co2=CO2Estimate.from_energy(total_j, ctx.carbon_intensity_gco2_per_kwh, ctx.datacenter_pue),
        cache_reuse=facts.cache_reuse,
        latency=latency_stats([o.latency_s for o in outputs], window.batch.granularity, ttfts, itls),
        flops=flops_estimate(facts.parameter_counts, in_tok, out_tok),
        memory=facts.memory,
        warmup=facts.warmup.result if facts.warmup is not None else None,
        thermal=ThermalInfo(
            temperature_start_c=facts.temperature_start_c,
            temperature_end_c=facts.temperature_end_c,
            thermal_floor_s=facts.warmup.thermal_floor_s if facts.warmup is not None else 0.0,
            throttled=facts.throttled,
        ),
        environment_snapshot=facts.environment,
        model_commit=facts.model_commit,
        measurement_warnings=collect_warnings(facts),
        reproducibility_notes=list(facts.notes),
        timeseries_file=facts.timeseries_file,
    )
