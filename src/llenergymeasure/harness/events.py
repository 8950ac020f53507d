"""Progress events out: one JSON line per event on the event stream, thread-safe, never blocking the loop.

`EventEmitter.phase` wraps a harness phase (``phase_started`` / ``phase_finished``
and the current phase for heartbeats and error documents). `Heartbeat` is a
daemon thread emitting ``heartbeat`` every ``RunContext.heartbeat_seconds`` so the
host can tell a long phase from a hang. `ThrottledProgress` turns per-batch
callbacks into at most one ``prompts_progress`` event per interval (plus the last).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from llenergymeasure.schemas.events import Heartbeat as HeartbeatEvent
from llenergymeasure.schemas.events import (
    Phase,
    PhaseFinished,
    PhaseStarted,
    ProgressEvent,
    PromptsProgress,
    WarningEvent,
    event_line,
)

logger = logging.getLogger(__name__)


class EventEmitter:
    """Writes events as JSON lines to `stream` (the harness's real stdout)."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.current_phase: Phase | None = None

    def emit(self, event: ProgressEvent) -> None:
        if self._stream is None:
            return
        line = event_line(event) + "\n"
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError) as e:  # the reader went away: keep measuring, results are files
                logger.warning("event stream closed (%s); events are no longer emitted", e)
                self._stream = None

    def warning(self, code: str, message: str) -> None:
        self.emit(WarningEvent(code=code, message=message))

    @contextlib.contextmanager
    def phase(self, name: Phase) -> Iterator[None]:
        """Emit ``phase_started``; on normal exit ``phase_finished``. The phase stays current on an exception."""
        previous = self.current_phase
        self.current_phase = name
        self.emit(PhaseStarted(phase=name))
        t0 = time.monotonic()
        yield
        self.emit(PhaseFinished(phase=name, duration_s=time.monotonic() - t0))
        self.current_phase = previous


class Heartbeat:
    """A daemon thread emitting a heartbeat event every `interval_s` until stopped."""

    def __init__(self, emitter: EventEmitter, interval_s: float) -> None:
        self._emitter = emitter
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llem-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._emitter.emit(HeartbeatEvent(phase=self._emitter.current_phase))

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class ThrottledProgress:
    """A `ProgressCallback` that emits ``prompts_progress`` at most once per `min_interval_s` (and at the end)."""

    def __init__(
        self, emitter: EventEmitter, min_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._emitter = emitter
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._last = float("-inf")

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if done >= total or now - self._last >= self._min_interval_s:
            self._last = now
            self._emitter.emit(PromptsProgress(done=done, total=total))
