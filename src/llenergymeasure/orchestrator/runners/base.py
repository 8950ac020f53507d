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
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from llenergymeasure.schemas.events import ProgressEvent
from llenergymeasure.schemas.job import ExperimentJob
from llenergymeasure.schemas.results import ExperimentResult

EventCallback = Callable[[ProgressEvent], None]
LogCallback = Callable[[str], None]

HARNESS_LOG_FILE = "harness.log"


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


class Runner(abc.ABC):
    """Launches the harness for one run and collects its result."""

    name: ClassVar[str]

    @abc.abstractmethod
    def run(self, request: RunRequest) -> ExperimentResult:
        """Run the job to completion; raise `ExperimentError` on any failure. Leaves nothing running."""

    def close(self) -> None:  # noqa: B027 - an optional hook: runners without clients keep the no-op
        """Release clients; idempotent."""
