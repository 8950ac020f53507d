"""`ExperimentResult`: what one measured run produced (``result.json``).

Every energy number says how it was obtained — ``counter`` (NVML total-energy
counter delta: measured), ``integrated_power`` (instantaneous power samples
integrated over time), ``estimated`` (CodeCarbon/TDP model) — and ``null`` means
unavailable, never zero. Denominators are in the field names.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, model_validator

from llenergymeasure.schemas._base import StrictModel
from llenergymeasure.schemas.config.experiment import ExperimentConfig

RESULT_SCHEMA_VERSION = "2.0"

EnergyMethod = Literal["counter", "integrated_power", "estimated", "unavailable"]
EnergySource = Literal["nvml", "zeus", "codecarbon", "simulated", "none"]
BaselineMethod = Literal["measured", "cached", "disabled", "unavailable"]
Methodology = Literal["total", "steady_state", "windowed"]
Severity = Literal["info", "warning", "error"]
EnergyScope = Literal["gpus", "host_cpu_ram"]
DeviceState = Literal["cuda_context", "no_cuda_context", "no_gpu"]


class DeviceEnergy(StrictModel):
    """Energy of one GPU of the experiment's device set over the measured window."""

    device_index: NonNegativeInt = Field(description="Host GPU index (NVML index).")
    device_uuid: str | None = Field(None, description="GPU UUID as reported by NVML.")
    energy_j: float | None = Field(description="Energy over the window, in joules; null if unavailable.")
    method: EnergyMethod = Field(description="How energy_j was obtained.")
    counter_updates: NonNegativeInt | None = Field(
        None,
        description="Energy-counter updates seen during the window: changes of the counter's value between "
        "consecutive reads (window edges and timeline samples), i.e. distinct values read minus one (count). A lower "
        "bound when the counter updates faster than it is read; low with repeated values = coarse measurement.",
    )


class BaselineProvenance(StrictModel):
    """Where the idle baseline came from."""

    method: BaselineMethod = Field(description="measured (this run), cached (reused), disabled or unavailable.")
    power_w: float | None = Field(description="Idle power of the whole device set, in watts.")
    duration_s: float | None = Field(None, description="Length of the idle measurement, in seconds.")
    measured_at: datetime | None = Field(None, description="When the idle measurement was taken (UTC).")
    age_s: float | None = Field(None, description="Age of a cached baseline when used, in seconds.")
    ttl_s: float | None = Field(None, description="Time-to-live the baseline was checked against, in seconds.")
    energy_method: EnergyMethod | None = Field(None, description="How the idle energy was read.")
    meter: EnergySource | None = Field(None, description="Which meter took the idle measurement.")
    device_state: DeviceState | None = Field(
        None,
        description="CUDA state of the device set during the idle measurement: cuda_context (a context on every "
        "device, nothing loaded: the window's state), no_cuda_context, or no_gpu.",
    )
    temperature_c: float | None = Field(
        None, description="Hottest GPU of the set at the end of the idle measurement, °C."
    )


class EnergyBreakdown(StrictModel):
    """Provenance and detail behind the headline energy figures."""

    method: EnergyMethod = Field(description="How energy_total_j was obtained.")
    source: EnergySource = Field(
        description="Which meter produced it; simulated = simulated GPUs (LLEM_SIMULATE_GPUS): not a measurement."
    )
    scope: EnergyScope = Field(
        "gpus",
        description="What energy_total_j covers: gpus (the GPUs of the device set) or host_cpu_ram (CodeCarbon's "
        "estimate for the whole machine's CPU and RAM on a host without GPUs: every process and idle draw included).",
    )
    per_device: list[DeviceEnergy] = Field(default_factory=list, description="Per-GPU energy over the window.")
    baseline: BaselineProvenance = Field(description="How baseline_power_w was obtained.")
    baseline_energy_j: float | None = Field(
        None, description="baseline_power_w × window duration, in joules (what is subtracted for adjusted energy)."
    )
    timeline_energy_j: float | None = Field(
        None, description="Integral of the power timeline over the window, in joules (integrated; cross-check)."
    )
    timeline_vs_counter_pct: float | None = Field(None, description="(timeline − counter) / counter × 100, in percent.")
    cpu_energy_j: float | None = Field(None, description="CPU energy over the window, in joules (estimated).")
    ram_energy_j: float | None = Field(None, description="RAM energy over the window, in joules (estimated).")


class LatencyStats(StrictModel):
    """Request latency over the window, in milliseconds."""

    granularity: Literal["request", "batch"] = Field(
        description="request: one latency per prompt; batch: each prompt of a batch gets the batch's latency."
    )
    count: NonNegativeInt = Field(description="Number of latency samples.")
    mean_ms: float = Field(description="Mean latency, ms.")
    p50_ms: float = Field(description="Median latency, ms.")
    p90_ms: float = Field(description="90th percentile latency, ms.")
    p99_ms: float = Field(description="99th percentile latency, ms.")
    min_ms: float = Field(description="Minimum latency, ms.")
    max_ms: float = Field(description="Maximum latency, ms.")
    percentile_method: Literal["linear"] = Field(
        "linear",
        description="How percentiles are computed: linear interpolation between the closest ranks "
        "(numpy's default), rank = (count − 1) × q / 100.",
    )
    ttft_mean_ms: float | None = Field(
        None,
        description="Mean time to first token, ms (where the backend reports it; from the request's arrival, so "
        "under offline batch submission it includes queueing).",
    )
    ttft_p50_ms: float | None = Field(None, description="50th percentile time to first token, ms.")
    ttft_p90_ms: float | None = Field(None, description="90th percentile time to first token, ms.")
    ttft_p99_ms: float | None = Field(None, description="99th percentile time to first token, ms.")
    itl_mean_ms: float | None = Field(
        None, description="Mean inter-token latency, ms: the mean over requests of each request's mean ITL."
    )
    itl_p50_ms: float | None = Field(None, description="50th percentile of the requests' mean inter-token latency, ms.")
    itl_p90_ms: float | None = Field(None, description="90th percentile of the requests' mean inter-token latency, ms.")
    itl_p99_ms: float | None = Field(None, description="99th percentile of the requests' mean inter-token latency, ms.")


class FlopsResult(StrictModel):
    """Estimated floating-point operations of the measured window."""

    total_flops: float | None = Field(description="FLOPs over the window (estimated), count.")
    flops_per_output_token: float | None = Field(None, description="total_flops / output tokens.")
    non_embedding_params: NonNegativeInt | None = Field(
        None,
        description="Parameters every token passes through: all but the input embedding and the output projection "
        "(logical count: packed 4-bit weights counted unpacked).",
    )
    output_projection_params: NonNegativeInt | None = Field(
        None, description="Output projection (lm_head, vocab × hidden) parameters, run once per output token (count)."
    )
    params_source: Literal["model", "config.json"] | None = Field(
        None, description="Where the parameter counts came from: the loaded model, or the model's config.json."
    )
    method: str = Field(
        description="How it was computed: '2 × non-embedding params × (input + output tokens) + "
        "2 × output-projection params × output tokens'."
    )
    confidence: Literal["high", "medium", "low"] = Field(description="How much to trust the estimate.")


class MemoryStats(StrictModel):
    """Memory used by the inference, in megabytes (MiB)."""

    peak_allocated_mb: float | None = Field(None, description="Peak memory allocated by the framework, MiB.")
    peak_reserved_mb: float | None = Field(None, description="Peak memory reserved by the framework's allocator, MiB.")
    device_total_mb: float | None = Field(None, description="Total memory of the device set, MiB.")
    device: Literal["cuda", "cpu"] = Field(description="Where the model ran.")


class WarmupResult(StrictModel):
    """What the warmup did before the window opened."""

    converged: bool = Field(description="CV dropped below target_cv (always true when convergence detection is off).")
    final_cv: float | None = Field(description="Coefficient of variation of the last window of warmup latencies.")
    iterations_completed: NonNegativeInt = Field(description="Warmup prompts run (count), thermal floor included.")
    target_cv: float | None = Field(description="CV threshold in force; null when convergence detection is off.")
    max_prompts: NonNegativeInt = Field(description="Upper bound on warmup prompts (count).")
    warmup_duration_s: NonNegativeFloat = Field(description="Wall time spent warming up, in seconds.")


class ThermalInfo(StrictModel):
    """Temperatures around the measured window, in °C."""

    temperature_start_c: float | None = Field(None, description="Hottest GPU of the set at window start, °C.")
    temperature_end_c: float | None = Field(None, description="Hottest GPU of the set at window end, °C.")
    thermal_floor_s: float = Field(0.0, description="Seconds of warm load before the window (thermal floor).")
    throttled: bool | None = Field(None, description="Any thermal/power throttle reason seen during the window.")


class GPUInfo(StrictModel):
    """One GPU as NVML describes it."""

    index: NonNegativeInt = Field(description="NVML index on the host.")
    name: str = Field(description="Product name.")
    uuid: str = Field(description="GPU UUID.")
    total_memory_mb: float | None = Field(None, description="Total memory, MiB.")
    power_limit_w: float | None = Field(None, description="Enforced power limit, watts.")
    persistence_mode: bool | None = Field(None, description="Persistence mode on.")
    mig_mode: bool | None = Field(None, description="MIG enabled (NVML then reports the whole physical GPU).")


class EnvironmentSnapshot(StrictModel):
    """The software and hardware the run happened on, taken inside the harness."""

    llenergymeasure_version: str = Field(description="Version of the harness.")
    python_version: str = Field(description="Python version.")
    platform: str = Field(description="OS/kernel string.")
    cpu_model: str | None = Field(None, description="CPU model name.")
    torch_version: str | None = Field(None, description="PyTorch version, if installed.")
    transformers_version: str | None = Field(None, description="transformers version, if installed.")
    backend_version: str | None = Field(None, description="Version of the inference backend's package.")
    cuda_version: str | None = Field(None, description="CUDA runtime version.")
    cuda_version_source: Literal["torch", "version.txt", "nvcc", "none"] = Field(
        "none", description="Where cuda_version was read."
    )
    driver_version: str | None = Field(None, description="NVIDIA driver version.")
    gpus: list[GPUInfo] = Field(default_factory=list, description="GPUs of the experiment's device set.")
    image: str | None = Field(None, description="Container image the harness ran in (from the job).")
    pip_freeze: list[str] = Field(default_factory=list, description="Installed Python packages (name==version).")


class RunNode(StrictModel):
    """The machine a run executed on, stamped by the host (the harness in its container cannot know it),
    so the rows of a multi-machine campaign can be grouped by machine."""

    host_name: str = Field(description="Host name of the machine that ran the container.")
    ray_node_id: str | None = Field(None, description="Ray node id, on a Ray cluster (llem run --ray); else null.")
    gpu_uuids: list[str] = Field(
        default_factory=list, description="UUIDs of the GPUs of the measured device set, in device-set order."
    )
    concurrent_runs: list[str] = Field(
        default_factory=list,
        description="Run directories of other runs that ran on the same node during this run (execution."
        "concurrency: device_set on a Ray cluster); empty = the node ran nothing else.",
    )


class MeasurementWarning(StrictModel):
    """Something that weakens the measurement; kept with the result."""

    code: str = Field(description="Stable machine-readable code, e.g. short_window, stale_baseline.")
    message: str = Field(description="What happened and what to do about it.")
    severity: Severity = Field("warning", description="info, warning or error.")


#: joules in one kilowatt-hour
J_PER_KWH = 3.6e6
#: a grid intensity below this many gCO2e/kWh is almost certainly a value in kg/kWh
KG_MISTAKE_BELOW_G = 2.0


class CO2Estimate(StrictModel):
    """Operational CO2 of the measured window: an estimate from energy_total_j, a grid carbon intensity
    and the data-centre PUE (``co2_g = energy_kwh × carbon_intensity_gco2_per_kwh × datacenter_pue``)."""

    co2_g: float = Field(description="Estimated CO2-equivalent of the window, grams (estimated).")
    method: Literal["estimated"] = Field("estimated", description="Always an estimate, never a measurement.")
    energy_kwh: float = Field(
        description="energy_total_j / 3.6e6: the energy it is based on (what it covers: energy.scope), kWh."
    )
    carbon_intensity_gco2_per_kwh: float = Field(description="Grid carbon intensity used, gCO2e/kWh.")
    datacenter_pue: float = Field(description="Power usage effectiveness used (unitless, ≥ 1).")

    @classmethod
    def from_energy(
        cls, energy_j: float | None, carbon_intensity_gco2_per_kwh: float | None, datacenter_pue: float = 1.0
    ) -> CO2Estimate | None:
        """The estimate, or None when the energy or the intensity is unknown (never a silent zero)."""
        if energy_j is None or carbon_intensity_gco2_per_kwh is None:
            return None
        kwh = energy_j / J_PER_KWH
        return cls(
            co2_g=kwh * carbon_intensity_gco2_per_kwh * datacenter_pue,
            energy_kwh=kwh,
            carbon_intensity_gco2_per_kwh=carbon_intensity_gco2_per_kwh,
            datacenter_pue=datacenter_pue,
        )


def carbon_intensity_warning(value: float | None) -> str | None:
    """A warning when a carbon intensity looks like kg/kWh rather than g/kWh, else None."""
    if value is None or value >= KG_MISTAKE_BELOW_G:
        return None
    return (
        f"carbon intensity {value} gCO2e/kWh looks like a value in kg/kWh (grids are ~20-1000 g/kWh); "
        f"CO2 estimates will be 1000× too small (fix: give grams, e.g. {value * 1000:g})"
    )


class CacheReuse(StrictModel):
    """An engine's reuse of cached prompt prefixes / KV blocks across requests, as it ran."""

    mechanism: str = Field(
        description="What is reused, e.g. 'vLLM prefix caching', 'TensorRT-LLM KV-cache block reuse'."
    )
    enabled: bool = Field(description="Reuse on during the window (among the window's own prompts).")
    configured: bool = Field(description="true: set by the config; false: the engine's default.")
    emptied_before_window: bool = Field(
        description="The cache was emptied between warmup and the window (where the engine offers it)."
    )


class SteadyStateWindow(StrictModel):
    """The steady-state part of a continuous-batching window and its own figures (derived, see methodology)."""

    start_s: NonNegativeFloat = Field(description="Start of the steady-state sub-window, seconds after window start.")
    end_s: NonNegativeFloat = Field(description="End of the steady-state sub-window, seconds after window start.")
    duration_s: NonNegativeFloat = Field(description="end_s − start_s, seconds.")
    method: str = Field(description="How the sub-window, its energy and its tokens were derived.")
    peak_in_flight: NonNegativeInt = Field(description="Most requests between first and last token at once (count).")
    plateau_in_flight: NonNegativeInt = Field(
        description="In-flight requests (count) at or above which the run is in steady state (90 % of the peak)."
    )
    output_tokens: NonNegativeInt = Field(
        description="Output tokens generated inside the sub-window (count; tokens evenly spaced per request)."
    )
    output_tokens_per_s: float = Field(description="output_tokens / duration_s, tokens/s.")
    energy_j: float | None = Field(
        None,
        description="GPU energy over the sub-window, joules: the power timeline over it scaled so the timeline over "
        "the whole window equals energy_total_j (counter-calibrated timeline); null without a timeline.",
    )
    energy_per_output_token_j: float | None = Field(
        None, description="energy_j / output_tokens, J per output token (steady state)."
    )


#: the first reproducibility note of every result
NVML_ACCURACY_NOTE = (
    "Energy comes from NVIDIA's board-level counters and power sensors, which NVIDIA documents as accurate to "
    "about ±5 % of the reading (the counter) and which cover the GPU board only; compare figures measured on "
    "the same GPU model, driver and power settings, and read small differences with that uncertainty in mind."
)


class ExperimentResult(StrictModel):
    """One (experiment, cycle) run: energy, throughput, latency and the context to trust them."""

    schema_version: Literal["2.0"] = Field("2.0", description="Result schema version.")
    study_id: str | None = Field(None, description="Study this run belongs to.")
    experiment_id: str = Field(description="Identifier of the experiment within its study.")
    cycle: int = Field(1, ge=1, description="Cycle number, from 1.")
    attempt: int = Field(
        1,
        ge=1,
        description="Which try of this (experiment, cycle) produced the result (count, from 1); the host's study "
        "loop counts the tries (execution.max_attempts, resumes) and records the count here.",
    )
    measurement_config_hash: str = Field(description="SHA-256[:16] of the measurement-defining config.")
    config: ExperimentConfig = Field(description="The resolved experiment config that was run.")
    model_commit: str | None = Field(
        None,
        description="Commit hash of the hub snapshot the harness loaded the model from (config.model_revision "
        "resolved, or main's commit); null for a model loaded from a local directory.",
    )
    effective_precision: str = Field(description="Precision actually used (fp32 on a host without a GPU).")
    device: Literal["cuda", "cpu"] = Field(description="Where the model ran.")
    device_ids: list[int] = Field(default_factory=list, description="Host GPU indices of the measured device set.")
    measurement_methodology: Methodology = Field(
        description="The headline figures always cover the whole window (the whole prompt set). total: that is all; "
        "steady_state: a steady-state sub-window was also derived from per-request timing (steady_state_window). "
        "windowed is reserved for fixed time windows."
    )
    steady_state_window: SteadyStateWindow | None = Field(
        None,
        description="Steady-state sub-window of a continuous-batching run and its J/output-token; null for static "
        "batches (PyTorch) and runs without per-request timing.",
    )

    started_at: datetime = Field(description="Harness start (UTC).")
    window_started_at: datetime = Field(description="Measured window start (UTC).")
    window_ended_at: datetime = Field(description="Measured window end (UTC).")
    finished_at: datetime = Field(description="Harness end (UTC).")
    window_duration_s: NonNegativeFloat = Field(description="Measured window length, seconds.")

    n_prompts: NonNegativeInt = Field(description="Prompts processed in the window (count).")
    input_tokens: NonNegativeInt = Field(description="Prompt tokens processed in the window (count, after truncation).")
    output_tokens: NonNegativeInt = Field(
        description="Generated tokens in the window (count; no padding, nothing after EOS)."
    )
    output_tokens_per_s: float = Field(description="output_tokens / window_duration_s, tokens/s.")
    total_tokens_per_s: float = Field(description="(input + output tokens) / window_duration_s, tokens/s.")

    energy_total_j: float | None = Field(
        description="GPU energy over the window, all devices of the set, joules (method in energy.method); "
        "null = unavailable."
    )
    energy_adjusted_j: float | None = Field(
        description="energy_total_j − baseline_power_w × window_duration_s, joules; null without a baseline."
    )
    baseline_power_w: float | None = Field(description="Idle power of the device set, watts (energy.baseline).")
    energy_per_output_token_j: float | None = Field(description="energy_total_j / output_tokens, J per output token.")
    energy_per_output_token_adjusted_j: float | None = Field(
        description="energy_adjusted_j / output_tokens, J per output token (baseline-adjusted)."
    )
    energy_per_total_token_j: float | None = Field(
        description="energy_total_j / (input + output tokens), J per total token."
    )
    energy: EnergyBreakdown = Field(description="How the energy figures were obtained.")
    energy_per_device_j: list[float | None] = Field(
        default_factory=list,
        description="Energy of each GPU of the device set over the window, joules, in device-set order "
        "(energy.per_device has the detail); null = unavailable for that GPU.",
    )
    warmup_excluded_samples: NonNegativeInt = Field(
        0, description="Prompts run in warmup before the window and excluded from every figure (count)."
    )
    co2: CO2Estimate | None = Field(
        None, description="Estimated CO2 of the window with its inputs; null without a carbon intensity or energy."
    )

    cache_reuse: CacheReuse | None = Field(
        None,
        description="Cross-request prefix/KV-cache reuse in the engine; null for engines without one "
        "(transformers generate). Warmup prompts are always disjoint from the window's.",
    )
    latency: LatencyStats | None = Field(None, description="Latency over the window.")
    flops: FlopsResult | None = Field(None, description="Estimated FLOPs.")
    memory: MemoryStats | None = Field(None, description="Memory use.")
    warmup: WarmupResult | None = Field(None, description="Warmup outcome; null if warmup was disabled.")
    thermal: ThermalInfo = Field(default_factory=ThermalInfo, description="Temperatures around the window.")
    environment_snapshot: EnvironmentSnapshot = Field(description="Software and hardware snapshot.")
    node: RunNode | None = Field(
        None, description="The machine the run executed on (host-stamped); null in results written before it existed."
    )
    measurement_warnings: list[MeasurementWarning] = Field(
        default_factory=list, description="What weakens this measurement: {code, message, severity} items."
    )
    reproducibility_notes: list[str] = Field(
        default_factory=lambda: [NVML_ACCURACY_NOTE],
        description="What could make a rerun differ; always starts with the NVML accuracy disclaimer.",
    )
    timeseries_file: str | None = Field(None, description="Power timeline file name, relative to result.json.")

    @model_validator(mode="after")
    def _disclaimer_first(self) -> ExperimentResult:
        notes = self.reproducibility_notes
        if not notes or notes[0] != NVML_ACCURACY_NOTE:
            self.reproducibility_notes = [NVML_ACCURACY_NOTE, *(n for n in notes if n != NVML_ACCURACY_NOTE)]
        return self

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """This result as JSON (the ``result.json`` format); also written to `path` when given."""
        text = self.model_dump_json(indent=indent) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> ExperimentResult:
        """A result from a JSON string or a ``result.json`` path; tolerant like every reader (any 2.x,
        unknown fields ignored with a warning, 3.x refused: `llenergymeasure.schemas.reading`)."""
        import json

        from llenergymeasure.schemas.reading import read_json_tolerant, validate_tolerant

        if isinstance(source, Path) or not str(source).lstrip().startswith("{"):
            return read_json_tolerant(cls, Path(source))
        return validate_tolerant(cls, json.loads(str(source)), "<json>")

    def to_parquet(self, path: str | Path) -> Path:
        """Write this result as a one-row Parquet table with the columns of ``results.csv``
        (flattened, dotted names: `llenergymeasure.schemas.flatten`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from llenergymeasure.schemas.flatten import result_row

        row = result_row(self.model_dump(mode="json"))
        target = Path(path)
        pq.write_table(pa.Table.from_pylist([row]), target)
        return target
