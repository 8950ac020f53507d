"""The job document carried by ``LLEM_EXPERIMENT``: protocol version + config + run context.

`to_env` / `from_env` are the only translation between the document and the
environment. Besides the job, the harness reads from the host only what the
contract names: the results directory (`RESULTS_DIR_ENV_VAR`, here), the mount
points and variables of `schemas.mounts` (HF cache, dataset cache, TensorRT-LLM
engine cache) and the simulated-GPU spec (`schemas.simulated_gpus`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import Field, NonNegativeFloat

from llenergymeasure.schemas._base import StrictModel
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import DeviceState, EnergySource

PROTOCOL_VERSION = 1
JOB_ENV_VAR = "LLEM_EXPERIMENT"
RESULTS_DIR_ENV_VAR = "LLEM_RESULTS_DIR"
DEFAULT_RESULTS_DIR = "/results"
#: image label carrying the protocol version the harness inside speaks
PROTOCOL_LABEL = "io.llenergymeasure.protocol"
#: image label carrying the package version
VERSION_LABEL = "org.opencontainers.image.version"
#: labels of a run (container labels with the docker runner): which study, experiment and cycle it is
LABEL_STUDY_ID = "llem.study_id"
LABEL_EXPERIMENT_ID = "llem.experiment_id"
LABEL_CYCLE = "llem.cycle"
RESULT_FILE = "result.json"
ERROR_FILE = "error.json"
TIMESERIES_FILE = "timeseries.parquet"


class CachedBaseline(StrictModel):
    """An idle baseline measured by an earlier run on the same (image, device set)."""

    power_w: float = Field(description="Idle power of the device set, watts.")
    measured_at: datetime = Field(description="When it was measured (UTC).")
    duration_s: NonNegativeFloat = Field(description="Length of that idle measurement, seconds.")
    device_ids: list[int] = Field(description="Device set it was measured on.")
    energy_method: Literal["counter", "integrated_power"] = Field(description="How its idle energy was read.")
    meter: EnergySource | None = Field(None, description="Which meter took it (reused only by the same meter).")
    device_state: DeviceState | None = Field(None, description="CUDA state of the devices while it was measured.")
    temperature_c: float | None = Field(None, description="Hottest GPU of the set when it was measured, °C.")


class RunContext(StrictModel):
    """Everything about *this* run that is not the experiment config."""

    study_id: str | None = Field(None, description="Study identifier.")
    experiment_id: str = Field("experiment", description="Experiment identifier within the study.")
    cycle: int = Field(1, ge=1, description="Cycle number, from 1.")
    device_ids: list[int] = Field(
        default_factory=list, description="GPU indices as seen inside the container (after pinning)."
    )
    host_device_ids: list[int] = Field(default_factory=list, description="The same GPUs' indices on the host.")
    cached_baseline: CachedBaseline | None = Field(None, description="Baseline to reuse, if any.")
    timeseries: bool = Field(True, description="Write timeseries.parquet.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Harness log level.")
    image: str | None = Field(None, description="Image the harness runs in (recorded in the environment snapshot).")
    dataset_cache_dir: str | None = Field(None, description="Directory holding cached datasets (read-only is fine).")
    heartbeat_seconds: float = Field(10.0, gt=0, description="Interval of heartbeat events, seconds.")
    carbon_intensity_gco2_per_kwh: float | None = Field(
        None, ge=0, description="Grid carbon intensity for the CO2 estimate, gCO2e/kWh (host user config)."
    )
    datacenter_pue: float = Field(1.0, ge=1.0, description="Power usage effectiveness for the CO2 estimate.")
    submitted_config: ExperimentConfig | None = Field(
        None,
        description="The config as the user wrote it (host paths), when the runner rewrote local paths for the "
        "container. The result records this one, so its measurement_config_hash matches the manifest's.",
    )


class ExperimentJob(StrictModel):
    """The whole job handed to the harness."""

    protocol_version: Literal[1] = Field(1, description="Host ↔ container protocol version.")
    config: ExperimentConfig = Field(description="The experiment to run.")
    context: RunContext = Field(default_factory=RunContext, description="Run context.")


def to_env(job: ExperimentJob) -> dict[str, str]:
    """The environment variables that carry `job`."""
    return {JOB_ENV_VAR: job.model_dump_json()}


def from_env(environ: Mapping[str, str]) -> ExperimentJob:
    """Parse the job from an environment mapping (raises KeyError / ValidationError)."""
    return ExperimentJob.model_validate_json(environ[JOB_ENV_VAR])
