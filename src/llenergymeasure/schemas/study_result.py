"""`StudyResult`: the outcome of a whole study (``study_result.json``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from llenergymeasure.schemas._base import StrictModel
from llenergymeasure.schemas.config.sections import BaselineConfig, WarmupConfig
from llenergymeasure.schemas.manifest import StudyStatus
from llenergymeasure.schemas.study import CycleOrder, SkippedPoint


class MetricStats(StrictModel):
    """One metric of one configuration across its completed cycles (Student t, see docs/methodology.md)."""

    mean: float | None = Field(None, description="Mean across cycles, in the metric's unit; null = unavailable.")
    std: float | None = Field(None, description="Sample standard deviation (n − 1), metric's unit; null when n < 2.")
    n: int = Field(0, ge=0, description="Cycles with a value (count).")
    ci95_low: float | None = Field(
        None, description="Lower end of the 95 % confidence interval of the mean (Student t), metric's unit."
    )
    ci95_high: float | None = Field(
        None, description="Upper end of the 95 % confidence interval of the mean (Student t), metric's unit."
    )
    cv: float | None = Field(None, description="Coefficient of variation std / |mean|, a fraction (0.05 = 5 %).")


class ConfigSummary(StrictModel):
    """One configuration across its completed cycles: mean, spread and 95 % CI of each headline metric."""

    measurement_config_hash: str = Field(description="Measurement hash.")
    label: str = Field(description="Short label (model · backend · precision ...).")
    cycles_completed: int = Field(description="Completed cycles (count).")
    energy_per_output_token_j: MetricStats = Field(
        default_factory=MetricStats, description="J per output token (raw), across cycles."
    )
    energy_per_output_token_adjusted_j: MetricStats = Field(
        default_factory=MetricStats, description="J per output token, baseline-adjusted, across cycles."
    )
    energy_per_total_token_j: MetricStats = Field(
        default_factory=MetricStats, description="J per total (input + output) token, across cycles."
    )
    output_tokens_per_s: MetricStats = Field(
        default_factory=MetricStats, description="Output tokens per second, across cycles."
    )
    ttft_p50_ms: MetricStats = Field(
        default_factory=MetricStats, description="Median time to first token, ms, across cycles (where reported)."
    )
    itl_p50_ms: MetricStats = Field(
        default_factory=MetricStats, description="Median inter-token latency, ms, across cycles (where reported)."
    )
    co2_g: MetricStats = Field(
        default_factory=MetricStats,
        description="Estimated CO2 per run, grams CO2e, across cycles (estimated: GPU energy × grid intensity × "
        "PUE; null without a carbon intensity).",
    )
    energy_method: str | None = Field(None, description="How energy was obtained (counter, integrated_power, ...).")
    energy_source: str | None = Field(
        None,
        description="Which meter produced the energy (nvml, zeus, codecarbon, simulated, none; 'mixed' or 'mixed, "
        "incl. simulated' when cycles differ); simulated = simulated GPUs, not a measurement.",
    )
    warnings: list[str] = Field(
        default_factory=list, description="Why this configuration's figures need care (e.g. CV above threshold)."
    )


class StudySummary(StrictModel):
    """Every configuration across its cycles, and what to be careful about."""

    configurations: list[ConfigSummary] = Field(
        default_factory=list, description="One entry per configuration, in study order."
    )
    cv_warning_threshold: float = Field(
        0.05, description="CV of J/output token across cycles above which a configuration is flagged (fraction)."
    )
    warnings: list[str] = Field(default_factory=list, description="Every configuration's warnings, in order.")


class MeasurementProtocol(StrictModel):
    """The settings that make two studies' numbers comparable: cycles, order, gaps, warmup, baseline."""

    n_cycles: int = Field(description="Repetitions of every experiment (count).")
    cycle_order: CycleOrder = Field(description="sequential, interleaved or shuffled.")
    config_gap_seconds: float = Field(description="Pause between two experiments, seconds.")
    cycle_gap_seconds: float = Field(description="Pause between two cycles, seconds.")
    warmup: list[WarmupConfig] = Field(
        default_factory=list, description="The distinct warmup settings of the experiments (one when all share it)."
    )
    baseline: list[BaselineConfig] = Field(
        default_factory=list, description="The distinct idle-baseline settings of the experiments."
    )


class StudyResult(StrictModel):
    """What a study produced: paths to every result, and a summary per configuration."""

    schema_version: Literal["2.0"] = Field("2.0", description="Schema version.")
    study_id: str = Field(description="Study identifier.")
    name: str = Field(description="Study name.")
    study_design_hash: str = Field(description="Design hash.")
    protocol_version: int = Field(description="Host ↔ container protocol version.")
    status: StudyStatus = Field(description="completed, interrupted or failed.")
    study_dir: str = Field(description="Study directory (absolute path).")
    started_at: datetime = Field(description="Study start (UTC).")
    finished_at: datetime | None = Field(None, description="Study end (UTC).")
    runs_total: int = Field(description="(experiment, cycle) pairs planned (count).")
    runs_completed: int = Field(description="Completed runs (count).")
    runs_failed: int = Field(description="Failed runs (count).")
    result_files: list[str] = Field(default_factory=list, description="result.json paths, relative to study_dir.")
    skipped: list[SkippedPoint] = Field(default_factory=list, description="Sweep points skipped at resolution.")
    measurement_protocol: MeasurementProtocol | None = Field(
        None, description="Warmup, baseline, gap and cycle settings that define comparability."
    )
    summary: StudySummary = Field(default_factory=StudySummary, description="Per-configuration summary.")
    runner: Literal["docker", "local", "mixed"] | None = Field(None, description="How runs were launched.")
