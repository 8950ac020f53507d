"""Pre-flight inside the container: every check runs, and all failures are reported at once.

Failures (raise `PreFlightError`, nothing is loaded): the device set
(`llenergymeasure.harness.devices`, resolved by the pipeline and passed in as
``prior_failures``); backend checks (framework importable, CUDA
devices visible, optional packages for the options used); the energy meter named
in the config can run; the dataset is readable; the model is loadable (a local
directory with ``config.json``, or a hub id in the cache — or downloadable when
not offline); the weights' estimated memory fits the set's free memory.

Warnings (kept in the result): persistence mode off; compute processes already
on the measured GPUs (checked before this process creates a CUDA context, so any
process seen is foreign); a model that will be downloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.errors import LLEMError, PreFlightError, PreFlightFailure
from llenergymeasure.harness.backends.base import InferenceBackend
from llenergymeasure.harness.datasets import Fetcher, PromptSource, load_source
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.harness.energy.factory import meter_problem
from llenergymeasure.harness.weights import estimate_memory_mb, locate_model, safetensors_param_count
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import MeasurementWarning

logger = logging.getLogger(__name__)


@dataclass
class PreflightOutcome:
    """What pre-flight found out that later phases reuse."""

    source: PromptSource
    warnings: list[MeasurementWarning] = field(default_factory=list)
    model_dir: Path | None = None


def device_warnings(devices: Sequence[MeasuredDevice]) -> list[MeasurementWarning]:
    """Persistence mode off and foreign compute processes, per device."""
    out = []
    off = [d.host_index for d in devices if d.device.persistence_mode() is False]
    if off:
        out.append(
            MeasurementWarning(
                code="persistence_mode_off",
                message=f"persistence mode is off on GPUs {off}: the driver may re-initialise between runs "
                "(first-run latency and idle power differ); enable it with nvidia-smi -pm 1",
            )
        )
    busy = {d.host_index: pids for d in devices if (pids := d.device.compute_pids())}
    if busy:
        out.append(
            MeasurementWarning(
                code="foreign_processes",
                message=f"other compute processes run on the measured GPUs {busy}: their energy is counted too",
            )
        )
    return out


def compute_pids(devices: Sequence[MeasuredDevice]) -> dict[int, set[int]]:
    """Compute processes on each measured GPU now (host index → pids; devices that cannot tell are left out)."""
    return {d.host_index: set(pids) for d in devices if (pids := d.device.compute_pids()) is not None}


def new_process_warnings(before: dict[int, set[int]], after: dict[int, set[int]]) -> list[MeasurementWarning]:
    """`foreign_processes` for compute processes that appeared on a measured GPU during the window.

    Both snapshots are taken outside the window (after warmup, and after the window closed), when every
    process of this run already holds its context, so a new pid is another job's.
    """
    new = {i: sorted(pids - before.get(i, set())) for i, pids in after.items() if pids - before.get(i, set())}
    if not new:
        return []
    return [
        MeasurementWarning(
            code="foreign_processes",
            message=f"compute processes started on the measured GPUs during the window {new}: their energy is "
            "counted too",
        )
    ]


def check_memory(
    config: ExperimentConfig, model_dir: Path | None, devices: Sequence[MeasuredDevice], precision: str
) -> list[PreFlightFailure]:
    """Estimated weights + overhead vs the set's free memory (skipped when either is unknown)."""
    if model_dir is None or not devices:
        return []
    params = safetensors_param_count(model_dir)
    free: list[float] = []
    for d in devices:
        total, used = d.device.memory_total_mb(), d.device.memory_used_mb()
        if total is None or used is None:
            return []
        free.append(total - used)
    if params is None:
        return []
    need_mb = estimate_memory_mb(params, precision)
    if need_mb > sum(free):
        return [
            PreFlightFailure(
                "vram",
                f"the model needs about {need_mb:,.0f} MiB ({params / 1e9:.2f} B params at {precision}, +20 %) "
                f"but the GPUs have {sum(free):,.0f} MiB free",
                "use more GPUs, a lower precision or quantisation, or free the GPUs",
            )
        ]
    return []


def _memory_precision(config: ExperimentConfig) -> str:
    section = config.pytorch
    if section is not None and section.load_in_4bit:
        return "int4"
    if section is not None and section.load_in_8bit:
        return "int8"
    return config.precision


def run_preflight(
    config: ExperimentConfig,
    backend: InferenceBackend[Any] | None,
    devices: Sequence[MeasuredDevice],
    *,
    dataset_cache_dir: Path | None,
    fetch: Fetcher | None = None,
    prior_failures: Sequence[PreFlightFailure] = (),
) -> PreflightOutcome:
    """Run every check; raise `PreFlightError` listing all failures (`prior_failures` too), else return what later
    phases need. `devices` are the set's opened devices (empty when `check_devices` failed)."""
    failures = list(prior_failures)
    if backend is not None:
        failures += backend.preflight()
    if config.energy.backend not in ("auto", "null"):
        problem = meter_problem(config.energy.backend, devices)
        if problem:
            failures.append(PreFlightFailure("energy", problem, "set energy.backend: auto"))
    source: PromptSource | None = None
    try:
        source = load_source(config, dataset_cache_dir, fetch)
    except LLEMError as e:
        failures.append(PreFlightFailure("dataset", e.message, None))
    model_dir, problem = locate_model(config.model, config.model_revision)
    warnings: list[MeasurementWarning] = []
    if problem:
        failures.append(
            PreFlightFailure("model", problem, "download it on the host first (the host pre-flight does this)")
        )
    elif model_dir is None:
        warnings.append(
            MeasurementWarning(
                code="model_download",
                message=f"{config.model} is not cached: it is downloaded before the window",
                severity="info",
            )
        )
    failures += check_memory(config, model_dir, devices, _memory_precision(config))
    if failures or source is None or backend is None:
        raise PreFlightError(failures, where="container")
    warnings += device_warnings(devices)
    return PreflightOutcome(source=source, warnings=warnings, model_dir=model_dir)
