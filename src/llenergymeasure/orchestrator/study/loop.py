"""The study loop: for each run, pick where it goes → build the job → dispatch → record.

Three axes stay apart, as in optimum-benchmark: *how* a run is isolated (the
`Runner`: docker, local, ...), *where* it runs (the `Dispatcher`: this host one at a
time, or a Ray cluster), *what* runs (the backend, inside the job's config) and *what
is measured* (the harness). This module knows none of them beyond those interfaces;
it owns ordering, gaps, the baseline cache, the manifest and failure isolation, and
it is the only writer of the manifest, also on a cluster (it runs on the head).

Order: runs are dispatched in the study's order (``cycle_order``); on a cluster they
may then run side by side (``execution.concurrency``), so they can *finish* in another
order. A run that cannot start yet (every node that could run it is busy) holds the
ones behind it: the order is never overtaken.

Gaps are per device set: the gap before a run counts from the end of the last run on
the same node and GPUs (this host: from the end of the previous run).

Retries: a run whose `ExperimentError` the runner marked transient (the container
could not be created or started, the Docker daemon failed, its cluster node was lost)
is dispatched again, first in line, up to ``execution.max_attempts`` tries; each
earlier try's failure is kept in the manifest entry (``retried``) and the loop records
in ``result.json`` which try produced it (``attempt``) and on which machine
(``node``), stamped by the host: the job does not carry them.

Failure isolation: an `LLEMError` from one run marks that run failed and the study
goes on; after ``max_consecutive_failures`` failures in a row (in the order runs end)
the study stops with a `StudyError` (circuit breaker), cancelling what is in flight.
Ctrl-C cancels every run in flight (no container is left on any node), marks them
pending again (reason kept), the study ``interrupted``, and propagates
`KeyboardInterrupt`. Any other exception is a bug: the runs in flight and the study
are marked failed and the exception propagates.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llenergymeasure.errors import ExperimentError, LLEMError, StudyError
from llenergymeasure.orchestrator.cluster.dispatcher import Completion, Dispatch, Dispatcher, SyncDispatcher
from llenergymeasure.orchestrator.cluster.placement import NoEligibleNode, Placement
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
from llenergymeasure.schemas.results import RunNode
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.util.files import atomic_write_text

logger = logging.getLogger(__name__)

RunKey = tuple[int, int]


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
    dispatcher: Dispatcher | None = None  # None: this host, one run at a time (`SyncDispatcher`)
    clock: Callable[[], float] = time.monotonic  # when runs end, for the gaps of concurrent runs


class StudyLoop:
    """Runs every pending (experiment, cycle) of `study` in order; state lives in `store`."""

    def __init__(self, study: StudyConfig, study_dir: Path, store: ManifestStore, services: LoopServices) -> None:
        self.study = study
        self.study_dir = study_dir
        self.store = store
        self.services = services
        self.study_id = store.manifest.study_id
        self.consecutive_failures = 0
        self.dispatcher: Dispatcher = services.dispatcher or SyncDispatcher(
            services.runner_for, self._environment_key, services.device_ids_for
        )
        self._in_flight: dict[RunKey, Dispatch] = {}
        self._tries: dict[RunKey, int] = {}
        self._previous: RunKey | None = None  # the last run dispatched (this host's gaps)

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        queue: deque[RunKey] = deque(
            key for key in self.study.run_order() if self.store.entry(*key).status != "completed"
        )
        try:
            while queue or self._in_flight:
                dispatched, wait_s = self._dispatch_head(queue) if queue else (False, None)
                if dispatched:
                    continue
                completion = self.dispatcher.wait(wait_s)
                if completion is not None:
                    self._complete(completion, queue)
        except KeyboardInterrupt:
            self._stop_in_flight()
            for key in [k for k in self.study.run_order() if self.store.entry(*k).status == "running"]:
                self.store.mark_interrupted(*key)
            self.store.set_status("interrupted")
            raise
        except StudyError:
            raise
        except BaseException:
            self._stop_in_flight()
            for key in [k for k in self.study.run_order() if self.store.entry(*k).status == "running"]:
                self.store.mark_failed(*key, RunFailure(type="InternalError", message="llem failed; see the log"))
            self.store.set_status("failed")
            raise
        failed = self.store.count("failed")
        self.store.set_status("failed" if failed else "completed")

    def _dispatch_head(self, queue: deque[RunKey]) -> tuple[bool, float | None]:
        """Dispatch the first run in line if it may start now. (True, _) when the loop should look again at
        once; else (False, how long to wait for a run to end: until the head's gap is over, or None)."""
        index, cycle = queue[0]
        config = self.study.experiments[index]
        try:
            placement = self.dispatcher.place(config)
        except NoEligibleNode as e:
            queue.popleft()
            self._fail(
                (index, cycle),
                ExperimentError(f"{config.label()}: {e}; fix: add a node with those GPUs or change gpus"),
                None,
            )
            return True, None
        if placement is None:
            return False, None
        seconds, reason = self._gap((index, cycle), placement)
        if seconds > 0 and self.dispatcher.in_flight():
            return False, seconds  # let runs end meanwhile; the head is looked at again when the gap is over
        self.services.gaps.wait(seconds, reason)
        queue.popleft()
        self._dispatch((index, cycle), placement)
        return True, None

    def _gap(self, key: RunKey, placement: Placement) -> tuple[float, str]:
        """Seconds still to wait before `key` may start at `placement`, and why (no gap before a retry)."""
        if not self.dispatcher.concurrent:
            if self._previous == key:
                return 0.0, "retry"
            return gap_before(self._previous, key, self.study.execution)
        previous = self.dispatcher.book.previous_on(placement)
        if previous is None:
            return gap_before(None, key, self.study.execution)
        if previous[0] == key:
            return 0.0, "retry"
        seconds, reason = gap_before(previous[0], key, self.study.execution)
        return max(0.0, seconds - (self.services.clock() - previous[1])), reason

    def _dispatch(self, key: RunKey, placement: Placement) -> None:
        request = self.build_request(*key, placement=placement)
        request.run_dir.mkdir(parents=True, exist_ok=True)
        moved = set_aside_previous_attempt(self.study_dir, request.run_dir)
        if moved is not None:
            logger.info("kept the files of the previous attempt in %s", moved)
        self.store.mark_running(*key, request.run_dir.name)
        self._tries[key] = self._tries.get(key, 0) + 1
        where = self.dispatcher.describe(placement)
        label = request.job.config.label() + (f" on {where}" if where else "")
        self.services.display.run_started(label, key[1])
        dispatch = Dispatch(key, request, placement)
        self._in_flight[key] = dispatch
        self._previous = key
        self.dispatcher.book.start(placement, key, request.run_dir.name)
        self.dispatcher.submit(dispatch)

    def _complete(self, completion: Completion, queue: deque[RunKey]) -> None:
        dispatch = completion.dispatch
        key = dispatch.key
        self._in_flight.pop(key, None)
        neighbours = self.dispatcher.book.finish(dispatch.placement, key, self.services.clock())
        if completion.result is not None:
            self._record_success(dispatch, completion, neighbours)
            self.consecutive_failures = 0
            return
        error = completion.error or ExperimentError("the run ended without a result or an error")
        failure = run_failure(error)
        node = completion.host_name or dispatch.placement.node.host_name
        failure = failure.model_copy(
            update={"node": self._node_text(dispatch, node), "reason": "node_lost" if completion.node_lost else None}
        )
        max_attempts = self.study.execution.max_attempts
        tries = self._tries.get(key, 1)
        if failure.transient and tries < max_attempts:
            self.store.mark_retrying(*key, failure)
            self.services.display.run_finished(
                False, self._which(dispatch) + f"transient: {error.message.splitlines()[0]}; trying again"
            )
            logger.warning(
                "%s cycle %d failed for a transient reason (try %d of %d, execution.max_attempts); running it "
                "again: %s",
                dispatch.request.job.config.label(),
                key[1],
                tries,
                max_attempts,
                error.message.splitlines()[0],
            )
            queue.appendleft(key)
            return
        self._fail(key, error, failure, self._which(dispatch))

    def _which(self, dispatch: Dispatch) -> str:
        """Which run a message is about, when runs overlap (the display's current run may be another)."""
        if not self.dispatcher.concurrent:
            return ""
        where = self.dispatcher.describe(dispatch.placement)
        return f"{dispatch.request.job.config.label()} cycle {dispatch.key[1]} on {where}: "

    def _fail(self, key: RunKey, error: LLEMError, failure: RunFailure | None, which: str = "") -> None:
        entry = self.store.entry(*key)
        if entry.status != "running":
            self.store.mark_running(*key, entry.run_dir or run_dir_name(key[0], key[1], self.study.experiments[key[0]]))
        self.store.mark_failed(*key, failure or run_failure(error))
        self.services.display.run_finished(False, which + error.message.splitlines()[0])
        logger.error("%s", error.render())
        self.consecutive_failures += 1
        execution = self.study.execution
        if self.consecutive_failures >= execution.max_consecutive_failures:
            self._stop_in_flight()
            for k in [k for k in self.study.run_order() if self.store.entry(*k).status == "running"]:
                self.store.mark_interrupted(*k)
            self.store.set_status("failed")
            raise StudyError(
                f"stopped after {self.consecutive_failures} consecutive failed runs "
                f"(execution.max_consecutive_failures = {execution.max_consecutive_failures}); "
                "see error.json and harness.log in the failed run directories, fix the cause, then --resume",
                study_dir=self.study_dir,
            )

    def _record_success(self, dispatch: Dispatch, completion: Completion, neighbours: list[str]) -> None:
        assert completion.result is not None
        key, request = dispatch.key, dispatch.request
        entry = self.store.entry(*key)
        result = completion.result
        uuids = dispatch.placement.device_uuids or [g.uuid for g in result.environment_snapshot.gpus]
        node = RunNode(
            host_name=completion.host_name or dispatch.placement.node.host_name,
            ray_node_id=self.dispatcher.ray_node_id(dispatch.placement),
            gpu_uuids=uuids,
            concurrent_runs=neighbours,
        )
        # the try count and the machine are the host's bookkeeping (the job does not carry them: no protocol
        # change), so the host records them in the result it has just validated, atomically
        result = result.model_copy(update={"attempt": entry.attempts, "node": node})
        atomic_write_text(request.run_dir / RESULT_FILE, result.model_dump_json(indent=2))
        self.store.mark_completed(*key)
        env = self.dispatcher.env_key(dispatch.placement, request.job.config.backend)
        self.services.baselines.offer(env, request.host_device_ids, result)
        self.services.display.run_finished(True)

    def _stop_in_flight(self) -> None:
        if self._in_flight:
            self.dispatcher.cancel_all()
            self._in_flight.clear()

    def _node_text(self, dispatch: Dispatch, host_name: str) -> str:
        ray_id = self.dispatcher.ray_node_id(dispatch.placement)
        return f"{host_name} (ray node {ray_id})" if ray_id else host_name

    # -- requests -------------------------------------------------------------------------------

    def build_request(self, index: int, cycle: int, *, placement: Placement | None = None) -> RunRequest:
        """The job and run directory for one (experiment, cycle) (on this host unless `placement` says where)."""
        config = self.study.experiments[index]
        if placement is None:
            placement = Placement(self.dispatcher.book.nodes[0], tuple(self.services.device_ids_for(config)))
        host_ids = list(placement.device_ids)
        cached = None
        if config.baseline.enabled:
            environment = self.dispatcher.env_key(placement, config.backend)
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

    def _environment_key(self, backend: str) -> str:
        return self.services.runner_for(backend).environment_key(backend)

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
