"""The study loop: for each run, build the job → ``runner.run`` → record.

Three axes stay apart, as in optimum-benchmark: *how* a run is isolated (the
`Runner`: docker, local, ...), *what* runs (the backend, inside the job's
config) and *what is measured* (the harness). This module knows none of them
beyond the `Runner` interface; it owns ordering, gaps, the baseline cache (keyed
by `Runner.environment_key`, the device set and the meter), the manifest and
failure isolation.

Retries: a run whose `ExperimentError` the runner marked transient (the container
could not be created or started, the Docker daemon failed) is run again, up to
``execution.max_attempts`` tries; each earlier try's failure is kept in the
manifest entry (``retried``) and the loop records in ``result.json`` which try
produced it (``attempt``, stamped by the host: the job does not carry it).

Failure isolation: an `LLEMError` from one run (an `ExperimentError`, an image
that vanished...) marks that run failed and the study goes on; after
``max_consecutive_failures`` failures in a row the study stops with a
`StudyError` (circuit breaker). Ctrl-C marks the current run pending again
(reason kept), the study ``interrupted``, and propagates `KeyboardInterrupt`.
Any other exception is a bug: the run and the study are marked failed and the
exception propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llenergymeasure.errors import ExperimentError, LLEMError, StudyError
from llenergymeasure.orchestrator.display import NullDisplay, StudyDisplay
from llenergymeasure.orchestrator.runners.base import EventCallback, Runner, RunRequest, run_name
from llenergymeasure.orchestrator.study.baseline_cache import BaselineCache
from llenergymeasure.orchestrator.study.gaps import GapWaiter, gap_before
from llenergymeasure.orchestrator.study.layout import (
    experiment_id,
    run_dir_name,
    set_aside_previous_attempt,
)
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.events import ProgressEvent
from llenergymeasure.schemas.job import (
    LABEL_CYCLE,
    LABEL_EXPERIMENT_ID,
    LABEL_STUDY_ID,
    RESULT_FILE,
    ExperimentJob,
    RunContext,
)
from llenergymeasure.schemas.manifest import RunFailure
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.util.files import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass
class LoopServices:
    """What the loop needs from the outside, injected."""

    runner_for: Callable[[str], Runner]  # backend → runner
    device_ids_for: Callable[[ExperimentConfig], list[int]]  # host GPU ids of a run ([] on a CPU host)
    display: StudyDisplay = field(default_factory=NullDisplay)
    gaps: GapWaiter = field(default_factory=lambda: GapWaiter(enabled=False))
    baselines: BaselineCache = field(default_factory=BaselineCache)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    on_event: EventCallback | None = None
    carbon_intensity_gco2_per_kwh: float | None = None  # user config: CO2 estimate in each result
    datacenter_pue: float = 1.0


class StudyLoop:
    """Runs every pending (experiment, cycle) of `study` in order; state lives in `store`."""

    def __init__(self, study: StudyConfig, study_dir: Path, store: ManifestStore, services: LoopServices) -> None:
        self.study = study
        self.study_dir = study_dir
        self.store = store
        self.services = services
        self.study_id = store.manifest.study_id
        self.consecutive_failures = 0

    def run(self) -> None:
        execution = self.study.execution
        previous: tuple[int, int] | None = None
        for index, cycle in self.study.run_order():
            if self.store.entry(index, cycle).status == "completed":
                continue
            try:
                seconds, reason = gap_before(previous, (index, cycle), execution)
                self.services.gaps.wait(seconds, reason)
                ok = self._run_one(index, cycle)
            except KeyboardInterrupt:
                if self.store.entry(index, cycle).status == "running":
                    self.store.mark_interrupted(index, cycle)
                self.store.set_status("interrupted")
                raise
            except BaseException:
                if self.store.entry(index, cycle).status == "running":
                    self.store.mark_failed(
                        index, cycle, RunFailure(type="InternalError", message="llem failed; see the log")
                    )
                self.store.set_status("failed")
                raise
            previous = (index, cycle)
            self.consecutive_failures = 0 if ok else self.consecutive_failures + 1
            if self.consecutive_failures >= execution.max_consecutive_failures:
                self.store.set_status("failed")
                raise StudyError(
                    f"stopped after {self.consecutive_failures} consecutive failed runs "
                    f"(execution.max_consecutive_failures = {execution.max_consecutive_failures}); "
                    "see error.json and harness.log in the failed run directories, fix the cause, then --resume",
                    study_dir=self.study_dir,
                )
        failed = self.store.count("failed")
        self.store.set_status("failed" if failed else "completed")

    def build_request(self, index: int, cycle: int) -> RunRequest:
        """The job and run directory for one (experiment, cycle)."""
        config = self.study.experiments[index]
        host_ids = self.services.device_ids_for(config)
        cached = None
        if config.baseline.enabled:
            environment = self.services.runner_for(config.backend).environment_key(config.backend)
            cached = self.services.baselines.get(
                environment, host_ids, config.baseline.ttl_seconds, config.energy.backend
            )
        exp_id = experiment_id(index, config)
        context = RunContext(
            study_id=self.study_id,
            experiment_id=exp_id,
            cycle=cycle,
            # worker indices: the runner translates the host set (schemas.devices.worker_device_ids)
            device_ids=list(host_ids),
            host_device_ids=list(host_ids),
            cached_baseline=cached,
            timeseries=config.energy.timeseries,
            log_level=self.services.log_level,
            carbon_intensity_gco2_per_kwh=self.services.carbon_intensity_gco2_per_kwh,
            datacenter_pue=self.services.datacenter_pue,
        )
        execution = self.study.execution
        return RunRequest(
            job=ExperimentJob(config=config, context=context),
            run_dir=self.study_dir / run_dir_name(index, cycle, config),
            name=run_name(self.study_id, f"{index:03d}", f"c{cycle}"),
            labels={LABEL_STUDY_ID: self.study_id, LABEL_EXPERIMENT_ID: exp_id, LABEL_CYCLE: str(cycle)},
            wall_timeout_s=float(execution.experiment_timeout_seconds),
            silence_timeout_s=float(execution.silence_timeout_seconds),
            on_event=self._on_event,
            on_log=self.services.display.log_line,
            host_device_ids=list(host_ids),
        )

    def _run_one(self, index: int, cycle: int) -> bool:
        """Run one (experiment, cycle), trying again after a transient failure while tries are left."""
        max_attempts = self.study.execution.max_attempts
        for try_number in range(1, max_attempts + 1):
            error = self._try_once(index, cycle)
            if error is None:
                return True
            failure = run_failure(error)
            if failure.transient and try_number < max_attempts:
                self.store.mark_retrying(index, cycle, failure)
                self.services.display.run_finished(False, f"transient: {error.message.splitlines()[0]}; trying again")
                logger.warning(
                    "%s cycle %d failed for a transient reason (try %d of %d, execution.max_attempts); running it "
                    "again: %s",
                    self.study.experiments[index].label(),
                    cycle,
                    try_number,
                    max_attempts,
                    error.message.splitlines()[0],
                )
                continue
            self.store.mark_failed(index, cycle, failure)
            self.services.display.run_finished(False, error.message.splitlines()[0])
            logger.error("%s", error.render())
            return False
        raise AssertionError("unreachable: the last try returns")

    def _try_once(self, index: int, cycle: int) -> LLEMError | None:
        """One try: a fresh run directory, the manifest marked running, the runner called. The error, if any."""
        request = self.build_request(index, cycle)
        config = request.job.config
        request.run_dir.mkdir(parents=True, exist_ok=True)
        moved = set_aside_previous_attempt(self.study_dir, request.run_dir)
        if moved is not None:
            logger.info("kept the files of the previous attempt in %s", moved)
        entry = self.store.mark_running(index, cycle, request.run_dir.name)
        self.services.display.run_started(config.label(), cycle)
        runner = self.services.runner_for(config.backend)
        try:
            result = runner.run(request)
        except LLEMError as e:
            return e
        if result.attempt != entry.attempts:
            # the try count is the host's bookkeeping (the job does not carry it: no protocol change), so
            # the host records it in the result it has just validated, atomically
            result = result.model_copy(update={"attempt": entry.attempts})
            atomic_write_text(request.run_dir / RESULT_FILE, result.model_dump_json(indent=2))
        self.store.mark_completed(index, cycle)
        self._remember_baseline(config, request, result)
        self.services.display.run_finished(True)
        return None

    def _remember_baseline(self, config: ExperimentConfig, request: RunRequest, result: ExperimentResult) -> None:
        environment = self.services.runner_for(config.backend).environment_key(config.backend)
        self.services.baselines.offer(environment, request.host_device_ids, result)

    def _on_event(self, event: ProgressEvent) -> None:
        self.services.display.event(event)
        if self.services.on_event is not None:
            self.services.on_event(event)


def run_failure(error: LLEMError) -> RunFailure:
    """The manifest's record of a failed run, from a structured error."""
    if isinstance(error, ExperimentError):
        f = error.failure
        timed_out = f.timed_out if f.timed_out in ("wall_clock", "silence") else None
        return RunFailure(
            type=f.error_type or type(error).__name__,
            message=error.message,
            phase=f.phase,
            exit_code=f.exit_code,
            oom_killed=f.oom_killed,
            timed_out=timed_out,
            # a run that got an OOM kill or a timeout measured something real: never retried as transient
            transient=f.transient and not f.oom_killed and timed_out is None,
        )
    return RunFailure(type=type(error).__name__, message=error.message)
