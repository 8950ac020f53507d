"""One job, phase by phase: pre-flight → environment → dataset → baseline → load → warmup → measure → metrics → write.

`run_job` joins the pieces and nothing else; each phase lives in its own module.
Everything with a side effect on the outside world (NVML, the backend, clocks,
sleeping, the dataset download) comes in through `HarnessDeps`, so tests run the
whole pipeline with fakes of our own interfaces.

Order matters for the measurement:
- the idle baseline is measured after the device context is up and *before* the
  model loads (nothing running, nothing allocated);
- prompts are read, selected, truncated and tokenised before the window; warmup
  runs on prompts disjoint from the window's (`datasets.build_warmup_prompts`);
- the timeline sampler runs from the baseline to the end of the window;
- ``result.json`` is written last (after ``timeseries.parquet``), atomically, so
  its presence means the run is complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llenergymeasure.errors import BackendError, PreFlightError, PreFlightFailure
from llenergymeasure.harness.backends import create_backend
from llenergymeasure.harness.backends.base import InferenceBackend
from llenergymeasure.harness.baseline import resolve_baseline
from llenergymeasure.harness.datasets import Fetcher, build_prompts, build_warmup_prompts
from llenergymeasure.harness.devices import cuda_environment, device_set_warnings, resolve_device_set
from llenergymeasure.harness.energy.base import EnergyMeter
from llenergymeasure.harness.energy.device import (
    THROTTLE_POWER_THERMAL_MASK,
    MeasuredDevice,
    NvmlProvider,
    measured_devices,
)
from llenergymeasure.harness.energy.factory import create_meter
from llenergymeasure.harness.energy.sampler import PowerSampler, throttled_between, timeline_energy_j
from llenergymeasure.harness.energy.sampler_process import ChildDevices
from llenergymeasure.harness.environment import snapshot
from llenergymeasure.harness.events import EventEmitter, ThrottledProgress
from llenergymeasure.harness.preflight import compute_pids, new_process_warnings, run_preflight
from llenergymeasure.harness.result import RunFacts, build_result
from llenergymeasure.harness.simulated import SIMULATED_GPU_WARNING, simulated_gpu_failures
from llenergymeasure.harness.steady_state import steady_state_of
from llenergymeasure.harness.warmup import run_warmup
from llenergymeasure.harness.weights import locate_model, snapshot_commit
from llenergymeasure.harness.window import run_window
from llenergymeasure.schemas.devices import worker_device_ids
from llenergymeasure.schemas.events import ResultWritten, WarmupProgress, WindowFinished, WindowStarted
from llenergymeasure.schemas.job import RESULT_FILE, TIMESERIES_FILE, ExperimentJob
from llenergymeasure.schemas.results import ExperimentResult, MeasurementWarning
from llenergymeasure.util.clock import utc_now
from llenergymeasure.util.files import atomic_write_text

logger = logging.getLogger(__name__)

BackendFactory = Callable[[Any, Sequence[int]], InferenceBackend[Any]]
MeterFactory = Callable[..., EnergyMeter]

#: Python distribution of each backend's framework (for the environment snapshot)
BACKEND_PACKAGES = {"pytorch": "torch", "vllm": "vllm", "tensorrt": "tensorrt_llm"}


@dataclass
class HarnessDeps:
    """The outside world, injectable."""

    nvml: NvmlProvider | None = None
    backend_factory: BackendFactory = create_backend
    meter_factory: MeterFactory = create_meter
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = utc_now
    dataset_fetch: Fetcher | None = None
    extra_warnings: list[MeasurementWarning] = field(default_factory=list)
    #: sets CUDA_VISIBLE_DEVICES / CUDA_DEVICE_ORDER for the set before any CUDA initialisation; the process
    #: entrypoint passes ``os.environ.update``; None (tests, embedding) leaves the environment alone
    apply_cuda_env: Callable[[Mapping[str, str]], None] | None = None
    #: `nvml` is the simulated driver (LLEM_SIMULATE_GPUS): the devices are measured from it while the
    #: backend computes on CPU; results are labelled simulated
    simulated_gpus: bool = False
    #: how the timeline sampler's own process opens `nvml` (`PynvmlProvider.sampler_driver`); None samples in a
    #: thread of this process (fakes, injected clocks)
    sampler_driver: dict[str, Any] | None = None


def _cuda_indices(device_ids: list[int], deps: HarnessDeps) -> list[int]:
    """The CUDA ordinals of the set: 0..n-1 once CUDA_VISIBLE_DEVICES lists exactly the set, else NVML's own
    indices (equal to CUDA's under CUDA_DEVICE_ORDER=PCI_BUS_ID, which the entrypoint sets)."""
    return worker_device_ids(device_ids, pinned=deps.apply_cuda_env is not None)


def _hottest(devices: Sequence[MeasuredDevice]) -> float | None:
    temps = [t for d in devices if (t := d.device.temperature_c()) is not None]
    return max(temps) if temps else None


def run_job(job: ExperimentJob, results_dir: Path, events: EventEmitter, deps: HarnessDeps) -> ExperimentResult:
    """Measure `job`, write ``result.json`` (+ ``timeseries.parquet``) into `results_dir`, return the result."""
    config, ctx = job.config, job.context
    started_at = deps.now()
    with events.phase("preflight"):
        failures: list[PreFlightFailure] = []
        device_ids: list[int] = []
        host_ids: list[int] = []
        devices: list[MeasuredDevice] = []
        device_warnings: list[MeasurementWarning] = []
        backend: InferenceBackend[Any] | None = None
        try:
            device_set = resolve_device_set(
                config, ctx.device_ids, deps.nvml, host_device_ids=ctx.host_device_ids or None
            )
            device_ids, host_ids = list(device_set.device_ids), list(device_set.host_device_ids)
            device_warnings = device_set_warnings(device_set)
            if deps.nvml is not None and device_ids:
                devices = measured_devices(deps.nvml, device_ids, host_ids)
            if deps.simulated_gpus:  # simulated devices are not CUDA devices: the model computes on CPU
                failures += simulated_gpu_failures(config)
                backend = deps.backend_factory(config, [])
            else:
                if deps.apply_cuda_env is not None and device_ids:
                    deps.apply_cuda_env(cuda_environment(device_set))
                backend = deps.backend_factory(config, _cuda_indices(device_ids, deps))
        except PreFlightError as e:  # a device set that cannot hold the experiment: reported with the rest
            failures += e.failures
        except BackendError as e:  # the backend's module is missing from this image: reported with the rest
            failures.append(PreFlightFailure("backend", e.message, e.fix))
        cache_dir = Path(ctx.dataset_cache_dir) if ctx.dataset_cache_dir else None
        pre = run_preflight(
            config, backend, devices, dataset_cache_dir=cache_dir, fetch=deps.dataset_fetch, prior_failures=failures
        )
        assert backend is not None  # run_preflight raised otherwise
    warnings = [*deps.extra_warnings, *device_warnings, *pre.warnings]
    if deps.simulated_gpus:
        warnings.append(SIMULATED_GPU_WARNING)

    with events.phase("environment"):
        driver = deps.nvml.driver_version() if deps.nvml is not None else None
        environment = snapshot(
            backend_package=BACKEND_PACKAGES.get(config.backend),
            devices=devices,
            driver_version=driver,
            image=ctx.image,
        )

    with events.phase("dataset"):
        prompts, notes = build_prompts(config, pre.source)
        notes += pre.source.notes
        warmup_set = build_warmup_prompts(config, pre.source)
        if config.warmup.enabled and warmup_set.overlaps_window:
            warnings.append(
                MeasurementWarning(
                    code="warmup_overlaps_window",
                    message=f"the window uses every prompt of the dataset (n={config.n}), so warmup ran on the "
                    "window's own prompts: a prefix/KV cache may serve part of the window's prefill — lower n",
                )
            )

    child = None  # where the sampler's own process opens the same devices
    if deps.sampler_driver is not None:
        child = ChildDevices(driver=deps.sampler_driver, device_ids=device_ids, host_ids=host_ids)
    interval_s = config.energy.sample_interval_ms / 1000.0
    sampler = PowerSampler(devices, interval_s, clock=deps.clock, child=child) if devices else None
    simulated = {"simulated": True} if deps.simulated_gpus else {}
    meter = deps.meter_factory(
        config.energy.backend, device_ids=device_ids, devices=devices, sampler=sampler, clock=deps.clock, **simulated
    )
    logger.info("energy meter: %s", meter.describe())
    try:
        if sampler is not None:
            sampler.start()
        with events.phase("baseline"):
            backend.prepare_device()
            baseline = resolve_baseline(
                config.baseline,
                ctx.cached_baseline,
                host_ids,
                meter,
                sleep=deps.sleep,
                now=deps.now,
                device_state=backend.device_state,
                temperature=lambda: _hottest(devices),
            )
            backend.release_device()

        with events.phase("load"):
            backend.load()
            model_commit = snapshot_commit(locate_model(config.model, config.model_revision)[0])
            prompts = backend.prepare(prompts)
            warmup_prompts = backend.prepare(warmup_set.prompts) if config.warmup.enabled else []
            notes += backend.reproducibility_notes()

        with events.phase("warmup"):

            def warmup_progress(done: int, total: int, cv: float | None) -> None:
                events.emit(WarmupProgress(done=done, total=total, cv=cv))

            warmup = run_warmup(
                backend,
                warmup_prompts,
                config.warmup,
                config.max_output_tokens,
                clock=deps.clock,
                on_progress=warmup_progress,
            )
            if warmup is None:
                warnings.append(MeasurementWarning(code="warmup_disabled", message="warmup is disabled: cold start"))

        with events.phase("measure"):
            temperature_start = _hottest(devices)
            pids_before = compute_pids(devices)
            backend.reseed(config.random_seed)
            events.emit(WindowStarted(n_prompts=len(prompts)))
            window = run_window(
                backend, prompts, meter, clock=deps.clock, now=deps.now, on_progress=ThrottledProgress(events)
            )
            events.emit(WindowFinished(duration_s=window.duration_s, output_tokens=window.output_tokens))
            temperature_end = _hottest(devices)
            warnings += new_process_warnings(pids_before, compute_pids(devices))
            memory, params = backend.memory_stats(), backend.parameter_counts()
            cache_reuse = backend.cache_reuse()
    finally:
        if sampler is not None:
            sampler.stop()
        meter.close()
        backend.close()

    with events.phase("metrics"):
        facts = RunFacts(
            job=job,
            started_at=started_at,
            finished_at=deps.now(),
            window=window,
            baseline=baseline,
            warmup=warmup,
            environment=environment,
            effective_precision=backend.effective_precision,
            device=backend.device,
            device_ids=host_ids,
            memory=memory,
            parameter_counts=params,
            temperature_start_c=temperature_start,
            temperature_end_c=temperature_end,
            warnings=warnings,
            notes=notes,
            cache_reuse=cache_reuse,
            model_commit=model_commit,
        )
        facts.steady_state = steady_state_of(window, sampler, interval_s)
        if sampler is not None:
            facts.timeline_energy_j = timeline_energy_j(sampler, window.t0_s, window.t1_s)
            facts.throttled = throttled_between(sampler, window.t0_s, window.t1_s, THROTTLE_POWER_THERMAL_MASK)
        write_timeseries = sampler is not None and ctx.timeseries and config.energy.timeseries
        facts.timeseries_file = TIMESERIES_FILE if write_timeseries else None
        result = build_result(facts)
        for w in result.measurement_warnings:
            events.warning(w.code, w.message)

    with events.phase("write"):
        if write_timeseries and sampler is not None:
            rows = sampler.write_parquet(
                results_dir / TIMESERIES_FILE,
                window=(window.t0_s, window.t1_s),
                run_ids=(ctx.study_id, ctx.experiment_id, ctx.cycle),
            )
            logger.info("power timeline: %d samples → %s", rows, TIMESERIES_FILE)
        atomic_write_text(results_dir / RESULT_FILE, result.model_dump_json(indent=2))
    events.emit(ResultWritten(path=RESULT_FILE))
    return result
