"""`StudyManifest`: the per-(config hash, cycle) state of a study, rewritten after every transition."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from llenergymeasure.schemas._base import StrictModel
from llenergymeasure.schemas.study import ExecutionConfig

MANIFEST_SCHEMA_VERSION = "2.0"
RunStatus = Literal["pending", "running", "completed", "failed"]
StudyStatus = Literal["running", "completed", "interrupted", "failed"]


class RunFailure(StrictModel):
    """Why a run failed (mirrors the error document, plus host-side facts)."""

    type: str = Field(description="Error class.")
    message: str = Field(description="What went wrong.")
    phase: str | None = Field(None, description="Harness phase, if known.")
    exit_code: int | None = Field(None, description="Container / process exit code.")
    oom_killed: bool = Field(False, description="Killed for memory.")
    timed_out: Literal["wall_clock", "silence"] | None = Field(None, description="Which timeout fired.")
    transient: bool = Field(
        False, description="The host or Docker daemon failed, not the experiment (retried up to max_attempts)."
    )
    reason: Literal["node_lost"] | None = Field(
        None,
        description="A cluster-level cause: node_lost = the Ray node running it left the cluster (transient: "
        "execution.max_attempts runs it again on another node).",
    )
    node: str | None = Field(None, description="The node the try ran on (host name, and Ray node id on a cluster).")


class ManifestEntry(StrictModel):
    """One (experiment, cycle) run of the study."""

    index: int = Field(ge=0, description="Experiment index in the resolved study.")
    experiment_id: str = Field(description="Experiment identifier.")
    measurement_config_hash: str = Field(description="Measurement hash of the experiment.")
    cycle: int = Field(ge=1, description="Cycle, from 1.")
    status: RunStatus = Field("pending", description="pending, running, completed or failed.")
    run_dir: str | None = Field(None, description="Run directory, relative to the study directory.")
    started_at: datetime | None = Field(None, description="When the run started (UTC).")
    finished_at: datetime | None = Field(None, description="When the run ended (UTC).")
    attempts: int = Field(0, ge=0, description="How many times it was started, across resumes (count).")
    failure: RunFailure | None = Field(None, description="Why the last attempt failed.")
    retried: list[RunFailure] = Field(
        default_factory=list,
        description="Transient failures of earlier tries that execution.max_attempts ran again, oldest first.",
    )


class StudyManifest(StrictModel):
    """The study's checkpoint: what ran, what is left."""

    schema_version: Literal["2.0"] = Field("2.0", description="Manifest schema version.")
    study_id: str = Field(description="Study identifier (the study directory's name).")
    name: str = Field(description="Study name.")
    study_design_hash: str = Field(description="Design hash of the study.")
    status: StudyStatus = Field("running", description="running, completed, interrupted or failed.")
    created_at: datetime = Field(description="When the study started (UTC).")
    updated_at: datetime = Field(description="Last transition (UTC).")
    execution: ExecutionConfig = Field(description="Execution settings in force.")
    llenergymeasure_version: str = Field(description="Host package version.")
    entries: list[ManifestEntry] = Field(default_factory=list, description="Every run, in execution order.")
