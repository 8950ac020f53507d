"""The seam between the study loop and *how* a run is isolated.

A `Runner` takes one `RunRequest` (the job + the host directory that becomes
``/results``) and returns the validated `ExperimentResult`, or raises
`ExperimentError` with structured facts. The study loop never knows whether the
harness ran in a container, a local subprocess or on another node.

Every runner honours the same contract (ARCHITECTURE.md §4): the job goes in
through ``LLEM_EXPERIMENT``; stdout JSON lines with an ``"event"`` key are
progress events, any other line is a log line kept in ``harness.log``;
``result.json`` (+ ``timeseries.parquet``) or ``error.json`` come back in the run
directory.

What the host and the study loop may ask of a runner, and nothing else:

- `Runner.run`: one run, to completion.
- `Runner.environment_key`: an opaque string naming the software environment a
  backend runs in; the loop's baseline cache keys idle baselines by it (with the
  device set and the meter), so a baseline is reused only by runs of the same
  environment. Docker: the image reference; local: the interpreter path.
- `Runner.label`: a short human-readable name of where a backend runs (logs).
- `Runner.reap`: remove what a dead llem process left behind before a study
  starts (docker: orphan containers); returns what was removed.
- `Runner.preflight_needs`: what the host pre-flight must check for a backend,
  as plain data (`PreflightNeeds`); the loop never sees it.
- `Runner.close`: release clients.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from llenergymeasure.schemas.events import ProgressEvent
from llenergymeasure.schemas.job import ExperimentJob
from llenergymeasure.schemas.results import ExperimentResult

EventCallback = Callable[[ProgressEvent], None]
LogCallback = Callable[[str], None]

HARNESS_LOG_FILE = "harness.log"

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_.-]+")


def run_name(*parts: str | int) -> str:
    """A deterministic run name, ``llem-<parts...>``, sanitised so any runner may use it as is
    (a valid container name: ``[a-zA-Z0-9_.-]``, at most 128 characters)."""
    raw = "-".join(["llem", *(str(p) for p in parts)])
    name = re.sub(r"-{2,}", "-", _NAME_BAD.sub("-", raw)).strip("-.")
    return name[:128]


@dataclass
class RunRequest:
    """One (experiment, cycle) to run."""

    job: ExperimentJob
    run_dir: Path
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    wall_timeout_s: float = 7200.0
    silence_timeout_s: float = 600.0
    on_event: EventCallback | None = None
    on_log: LogCallback | None = None
    host_device_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PreflightNeeds:
    """What the host pre-flight checks before a runner runs one backend (nothing, by default).

    - ``image``: a container image that must be present, carry this host's protocol
      label and the capabilities the configs need;
    - ``engine``: the container-engine client the pre-flight probes go through (opaque
      here: only the pre-flight's container checks use it).
    """

    image: str | None = None
    engine: object | None = None


TimeoutKind = Literal["wall_clock", "silence"]


@dataclass(frozen=True)
class RunDeadlines:
    """The wall-clock and stdout-silence deadlines of one run, on a monotonic clock (seconds).

    Every runner watches its harness with these: `expired` says which deadline has
    passed (a deadline is reached when the time elapsed equals its limit), `wait_s`
    how long one may sleep before checking again.
    """

    started_at: float
    wall_timeout_s: float
    silence_timeout_s: float

    @classmethod
    def of(cls, request: RunRequest, now: float) -> RunDeadlines:
        return cls(now, request.wall_timeout_s, request.silence_timeout_s)

    def expired(self, now: float, last_activity_at: float) -> TimeoutKind | None:
        if now - self.started_at >= self.wall_timeout_s:
            return "wall_clock"
        if now - last_activity_at >= self.silence_timeout_s:
            return "silence"
        return None

    def wait_s(self, now: float, last_activity_at: float) -> float:
        """Seconds until the nearer deadline (never negative)."""
        nearer = min(self.started_at + self.wall_timeout_s, last_activity_at + self.silence_timeout_s)
        return max(0.0, nearer - now)


class Runner(abc.ABC):
    """Launches the harness for one run and collects its result (module docstring)."""

    #: the runner kind, as configured (``runners.<backend>``) and recorded in the study result
    name: ClassVar[str]

    @abc.abstractmethod
    def run(self, request: RunRequest) -> ExperimentResult:
        """Run the job to completion; raise `ExperimentError` on any failure. Leaves nothing running."""

    @abc.abstractmethod
    def environment_key(self, backend: str) -> str:
        """Opaque key of the environment `backend` runs in (the baseline cache's key; module docstring)."""

    @abc.abstractmethod
    def label(self, backend: str) -> str:
        """Where `backend` runs, for people (logs, messages)."""

    def reap(self) -> list[str]:
        """Remove what dead llem processes left behind; the names removed. Nothing by default."""
        return []

    def preflight_needs(self, backend: str) -> PreflightNeeds:
        """What the host pre-flight must check before running `backend` (`PreflightNeeds`)."""
        return PreflightNeeds()

    def close(self) -> None:  # noqa: B027 - an optional hook: runners without clients keep the no-op
        """Release clients; idempotent."""
