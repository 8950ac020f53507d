"""Progress events: the JSON lines the harness prints on stdout.

Each stdout line that is a JSON object with an ``"event"`` key is one of these;
any other line is a log line. `parse_event_line` is what the host uses.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError

from llenergymeasure.schemas._base import StrictModel

Phase = Literal["preflight", "environment", "dataset", "baseline", "load", "warmup", "measure", "metrics", "write"]


class _Event(StrictModel):
    ts: float = Field(default_factory=time.time, description="Unix time the event was emitted, seconds.")


class PhaseStarted(_Event):
    event: Literal["phase_started"] = "phase_started"
    phase: Phase


class PhaseFinished(_Event):
    event: Literal["phase_finished"] = "phase_finished"
    phase: Phase
    duration_s: float = Field(description="Phase duration, seconds.")


class WarmupProgress(_Event):
    event: Literal["warmup_progress"] = "warmup_progress"
    done: int = Field(description="Warmup prompts done (count).")
    total: int = Field(description="Planned warmup prompts (count; an upper bound with convergence detection).")
    cv: float | None = Field(None, description="Current latency CV, when convergence detection is on.")


class WindowStarted(_Event):
    event: Literal["window_started"] = "window_started"
    n_prompts: int = Field(description="Prompts in the window (count).")


class PromptsProgress(_Event):
    event: Literal["prompts_progress"] = "prompts_progress"
    done: int = Field(description="Prompts finished in the window (count).")
    total: int = Field(description="Prompts in the window (count).")


class WindowFinished(_Event):
    event: Literal["window_finished"] = "window_finished"
    duration_s: float = Field(description="Window duration, seconds.")
    output_tokens: int = Field(description="Output tokens generated (count).")


class Heartbeat(_Event):
    event: Literal["heartbeat"] = "heartbeat"
    phase: Phase | None = None


class WarningEvent(_Event):
    event: Literal["warning"] = "warning"
    code: str
    message: str


class ResultWritten(_Event):
    event: Literal["result_written"] = "result_written"
    path: str = Field(description="Result file name, relative to the results directory.")


class Failed(_Event):
    event: Literal["failed"] = "failed"
    phase: Phase | None
    type: str
    message: str


ProgressEvent = Annotated[
    PhaseStarted
    | PhaseFinished
    | WarmupProgress
    | WindowStarted
    | PromptsProgress
    | WindowFinished
    | Heartbeat
    | WarningEvent
    | ResultWritten
    | Failed,
    Field(discriminator="event"),
]

_ADAPTER: TypeAdapter[ProgressEvent] = TypeAdapter(ProgressEvent)


def parse_event_line(line: str) -> ProgressEvent | None:
    """The event on this stdout line, or None for a log line (anything else)."""
    text = line.strip()
    if not (text.startswith("{") and '"event"' in text):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "event" not in data:
        return None
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError:
        return None


def event_line(event: _Event) -> str:
    """The one-line JSON form of an event."""
    return event.model_dump_json()


class ErrorDocument(StrictModel):
    """``error.json``: why a run failed."""

    type: str = Field(description="Exception class name.")
    message: str = Field(description="What went wrong, with the fix where known.")
    phase: Phase | None = Field(description="Harness phase the failure happened in.")
    traceback: str | None = Field(None, description="Python traceback (secrets never appear here).")
