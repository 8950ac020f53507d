"""What every runner does with the harness's output: the event/log stream and the result files.

`StreamHandler` consumes the harness's output line by line (``feed_stdout``
for stdout lines, ``feed_stderr`` for stderr lines):
events go to the caller's callback, every other line to ``<run_dir>/harness.log``
(and the caller's log callback); it tracks the last activity (for the silence
timeout), the current phase and a tail of log lines (for error reports).

`collect_result` turns the run directory plus the facts the runner observed
(exit code, timeout, OOM) into the validated `ExperimentResult`, or raises
`ExperimentError` carrying the harness's ``error.json`` message and phase.

Typical use in a runner::

    handler = StreamHandler(run_dir, request.on_event, request.on_log)
    try:
        ... handler.feed_stdout(line) / handler.feed_stderr(line) while the run lasts,
        ... watching handler.last_activity_at for the silence timeout ...
    finally:
        handler.close()
    failure = ExperimentFailure(exit_code=..., timed_out=..., oom_killed=..., log_tail=handler.log_tail(),
                                phase=handler.last_phase, measurement_config_hash=...)
    return collect_result(run_dir, failure)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from llenergymeasure.errors import ExperimentError, ExperimentFailure
from llenergymeasure.orchestrator.runners.base import HARNESS_LOG_FILE, EventCallback, LogCallback
from llenergymeasure.schemas.events import (
    ErrorDocument,
    Failed,
    Heartbeat,
    PhaseStarted,
    ProgressEvent,
    parse_event_line,
)
from llenergymeasure.schemas.job import ERROR_FILE, RESULT_FILE
from llenergymeasure.schemas.reading import SchemaVersionError, validate_tolerant
from llenergymeasure.schemas.results import ExperimentResult

logger = logging.getLogger(__name__)


class StreamHandler:
    """Routes harness output lines: events to `on_event`, everything else to harness.log and `on_log`. Thread-safe."""

    def __init__(
        self,
        run_dir: Path,
        on_event: EventCallback | None = None,
        on_log: LogCallback | None = None,
        *,
        tail_lines: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log_path = Path(run_dir) / HARNESS_LOG_FILE
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8")
        self._on_event = on_event
        self._on_log = on_log
        self._clock = clock
        self._lock = threading.Lock()
        self._tail: deque[str] = deque(maxlen=tail_lines)
        #: monotonic time of the last stdout line of any kind (the silence timeout watches this)
        self.last_activity_at: float = clock()
        #: monotonic time of the last event (None before the first)
        self.last_event_at: float | None = None
        #: the phase the harness last reported (phase_started, heartbeat or failed)
        self.last_phase: str | None = None
        #: the harness's own `failed` event, if it sent one
        self.failed_event: Failed | None = None
        self.events_seen = 0

    def feed_stdout(self, line: str) -> ProgressEvent | None:
        """One stdout line. Returns the event it carried, or None for a log line."""
        now = self._clock()
        event = parse_event_line(line)
        with self._lock:
            self.last_activity_at = now
            if event is not None:
                self.last_event_at = now
                self.events_seen += 1
                if isinstance(event, (PhaseStarted, Heartbeat)) and event.phase is not None:
                    self.last_phase = event.phase
                elif isinstance(event, Failed):
                    self.failed_event = event
                    self.last_phase = event.phase or self.last_phase
        if event is None:
            self.feed_stderr(line)
            return None
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a display callback must never take a measurement down
                logger.exception("on_event callback failed")
        return event

    def feed_stderr(self, line: str) -> None:
        """One log line (stderr, or a non-event stdout line): appended to harness.log."""
        text = line.rstrip("\r\n")
        with self._lock:
            if not self._log.closed:
                self._log.write(text + "\n")
                self._log.flush()
            self._tail.append(text)
        if self._on_log is not None:
            try:
                self._on_log(text)
            except Exception:
                logger.exception("on_log callback failed")

    def log_tail(self, n: int = 20) -> list[str]:
        """The last `n` log lines."""
        with self._lock:
            return list(self._tail)[-n:]

    def close(self) -> None:
        """Close harness.log; idempotent."""
        with self._lock:
            if not self._log.closed:
                self._log.close()


def read_error_document(run_dir: Path) -> ErrorDocument | None:
    """``error.json`` of the run, or None when absent or unreadable."""
    path = Path(run_dir) / ERROR_FILE
    if not path.is_file():
        return None
    try:
        return ErrorDocument.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as e:
        logger.warning("unreadable %s: %s", path, e)
        return None


def read_result(path: Path) -> ExperimentResult:
    """Parse and validate ``result.json`` (tolerant: any 2.x, unknown fields ignored); a wrong schema
    major version or invalid content is an `ExperimentError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExperimentError(f"cannot read {path}: {e}") from e
    try:
        return validate_tolerant(ExperimentResult, data, str(path))
    except SchemaVersionError as e:
        raise ExperimentError(
            f"{e.message}; the host and the image must share a result schema major version "
            "(fix: use the image built from the same llenergymeasure version as the host)"
        ) from e
    except ValidationError as e:
        raise ExperimentError(f"{path} does not validate as an ExperimentResult: {e}") from e


def collect_result(run_dir: Path, failure: ExperimentFailure) -> ExperimentResult:
    """The run's validated result, or `ExperimentError` with every fact known about why there is none.

    `failure` is what the runner observed — exit code, timeout, OOM kill, log
    tail, config hash — as an `ExperimentFailure` (its name notwithstanding: it is
    read on success too, where only ``exit_code=0`` matters). The harness's
    ``error.json`` adds its type, message and phase.
    """
    run_dir = Path(run_dir)
    doc = read_error_document(run_dir)
    if doc is not None:
        failure = dataclasses.replace(failure, phase=doc.phase or failure.phase, error_type=doc.type)
    if failure.timed_out:
        kind = "no output for too long" if failure.timed_out == "silence" else "wall-clock limit reached"
        raise ExperimentError(f"the harness timed out ({kind}) and was stopped", failure)
    if failure.oom_killed:
        raise ExperimentError("the harness was killed: out of memory", failure)
    result_path = run_dir / RESULT_FILE
    if failure.exit_code == 0:
        if result_path.is_file():
            try:
                return read_result(result_path)
            except ExperimentError as e:
                raise ExperimentError(e.message, failure) from e
        raise ExperimentError("the harness exited 0 but wrote no result.json", failure)
    if doc is not None:
        raise ExperimentError(f"{doc.type}: {doc.message}", failure)
    raise ExperimentError(f"the harness exited with code {failure.exit_code} without writing error.json", failure)
