"""`LocalRunner`: the harness as a subprocess of this host (same contract as the container).

For debugging and for hosts without Docker: ``<python> -m llenergymeasure.harness``
with the job in ``LLEM_EXPERIMENT`` and the run directory as ``LLEM_RESULTS_DIR``.
The backend must be installed in that Python (default: this interpreter).

- The child runs in its own process group (``start_new_session``), so a
  timeout or Ctrl-C stops it *and* anything it started: SIGTERM to the group
  (the harness writes ``error.json`` and exits), then SIGKILL after a grace
  period — in a ``finally``, so no process outlives the run.
- Timeouts: wall clock (`RunRequest.wall_timeout_s`) and stdout silence
  (`RunRequest.silence_timeout_s`; the harness's heartbeats keep a healthy run
  talking).
- GPUs: the harness sees the host's GPUs directly (not pinned), so the job's
  worker ``device_ids`` are the host indices (`schemas.devices`;
  ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes torch's order NVML's).
- The child inherits this process's environment (it is the same user on the
  same host), plus the job variables; ``LLEM_SIMULATE_GPUS`` is passed on as an
  absolute path (simulated GPUs: the harness reads the same spec).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from llenergymeasure.errors import ExperimentError, ExperimentFailure
from llenergymeasure.orchestrator.runners.base import RunDeadlines, Runner, RunRequest
from llenergymeasure.orchestrator.runners.collect import StreamHandler, collect_result
from llenergymeasure.schemas.devices import worker_device_ids
from llenergymeasure.schemas.job import RESULTS_DIR_ENV_VAR, to_env
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR

logger = logging.getLogger(__name__)

HARNESS_MODULE = "llenergymeasure.harness"


def _pump(stream: IO[str], feed: Callable[[str], object]) -> None:
    for line in iter(stream.readline, ""):
        feed(line)


def stop_process_group(proc: subprocess.Popen[str], grace_s: float) -> None:
    """SIGTERM the child's process group, wait `grace_s`, then SIGKILL it. Idempotent."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
    if proc.poll() is None:
        logger.error("harness process %d did not exit after SIGKILL", proc.pid)


class LocalRunner(Runner):
    """Runs the harness in a local subprocess."""

    name = "local"

    def __init__(
        self,
        *,
        python: str = sys.executable,
        extra_env: Mapping[str, str] | None = None,
        kill_grace_s: float = 10.0,
        poll_interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.python = python
        self.extra_env = dict(extra_env or {})
        self.kill_grace_s = kill_grace_s
        self.poll_interval_s = poll_interval_s
        self._clock = clock

    def environment_key(self, backend: str) -> str:
        """The interpreter the harness runs in: runs of one Python share an environment."""
        return f"local:{self.python}"

    def label(self, backend: str) -> str:
        return f"local ({self.python})"

    def environment(self, request: RunRequest) -> dict[str, str]:
        """The child's environment: ours + extra_env + the job + the results dir."""
        job = request.job
        if request.host_device_ids and not job.context.device_ids:
            hosts = list(request.host_device_ids)
            workers = worker_device_ids(hosts, pinned=False)  # the child sees every GPU of the host
            job = job.model_copy(
                update={"context": job.context.model_copy(update={"device_ids": workers, "host_device_ids": hosts})}
            )
        env = dict(os.environ)
        env.update(self.extra_env)
        env.update(to_env(job))
        spec = env.get(SIMULATE_GPUS_ENV_VAR, "").strip()
        if spec:  # simulated GPUs: the child reads the same spec, wherever it starts
            env[SIMULATE_GPUS_ENV_VAR] = str(Path(spec).expanduser().resolve())
        env[RESULTS_DIR_ENV_VAR] = str(request.run_dir)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        return env

    def run(self, request: RunRequest) -> ExperimentResult:
        request.run_dir.mkdir(parents=True, exist_ok=True)
        failure = ExperimentFailure(measurement_config_hash=request.job.config.measurement_config_hash())
        handler = StreamHandler(request.run_dir, request.on_event, request.on_log, clock=self._clock)
        proc: subprocess.Popen[str] | None = None
        readers: list[threading.Thread] = []
        try:
            try:
                proc = subprocess.Popen(
                    [self.python, "-m", HARNESS_MODULE],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self.environment(request),
                    start_new_session=True,
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                    bufsize=1,
                )
            except OSError as e:
                raise ExperimentError(f"cannot start the harness with {self.python}: {e}", failure) from e
            assert proc.stdout is not None
            assert proc.stderr is not None
            readers = [
                threading.Thread(target=_pump, args=(proc.stdout, handler.feed_stdout), daemon=True),
                threading.Thread(target=_pump, args=(proc.stderr, handler.feed_stderr), daemon=True),
            ]
            for t in readers:
                t.start()
            logger.info("harness started (pid %d) for %s", proc.pid, request.name)
            failure.timed_out = self._wait(proc, request, handler)
        finally:
            if proc is not None:
                stop_process_group(proc, self.kill_grace_s)
            for t in readers:
                t.join(timeout=5.0)
            handler.close()
        failure.exit_code = proc.returncode
        failure.phase = handler.last_phase
        failure.log_tail = handler.log_tail()
        return collect_result(request.run_dir, failure)

    def _wait(self, proc: subprocess.Popen[str], request: RunRequest, handler: StreamHandler) -> str | None:
        """Wait for the child; the timeout kind (``wall_clock`` / ``silence``) if one fired, else None."""
        deadlines = RunDeadlines.of(request, self._clock())
        while True:
            try:
                proc.wait(timeout=self.poll_interval_s)
                return None
            except subprocess.TimeoutExpired:
                pass
            now = self._clock()
            expired = deadlines.expired(now, handler.last_activity_at)
            if expired == "wall_clock":
                logger.error("%s: wall-clock timeout after %.0f s", request.name, now - deadlines.started_at)
            elif expired == "silence":
                logger.error("%s: no output for %.0f s", request.name, now - handler.last_activity_at)
            if expired is not None:
                return expired
