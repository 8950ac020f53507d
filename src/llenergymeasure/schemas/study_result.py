"""`StudyResult`: the outcome of a whole study (``study_result.json``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from llenergymeasure.schemas._base import StrictModel
from llenergymeasure.schemas.manifest import StudyStatus
from llenergymeasure.schemas.study import SkippedPoint


class ConfigSummary(StrictModel):
    """One configuration across its completed cycles: mean and spread."""

    measurement_config_hash: str = Field(description="Measurement hash.")
    label: str = Field(description="Short label (model · backend · precision ...).")
    cycles_completed: int = Field(description="Completed cycles (count).")
    energy_per_output_token_j_mean: float | None = Field(None, description="Mean J per output token across cycles.")
    energy_per_output_token_j_std: float | None = Field(None, description="Sample std of J per output token.")
    energy_per_output_token_adjusted_j_mean: float | None = Field(
        None, description="Mean baseline-adjusted J per output token across cycles."
    )
    output_tokens_per_s_mean: float | None = Field(None, description="Mean output tokens/s across cycles.")
    output_tokens_per_s_std: float | None = Field(None, description="Sample std of output tokens/s.")
    energy_method: str | None = Field(None, description="How energy was obtained (counter, integrated_power, ...).")
    energy_source: str | None = Field(
        None,
        description="Which meter produced the energy (nvml, zeus, codecarbon, simulated, none; 'mixed' or 'mixed, "
        "incl. simulated' when cycles differ); simulated = simulated GPUs, not a measurement.",
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
    summary: list[ConfigSummary] = Field(default_factory=list, description="Per-configuration summary.")
    runner: Literal["docker", "local", "mixed"] | None = Field(None, description="How runs were launched.")
