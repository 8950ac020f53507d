"""Progress on stderr while a study runs, fed by the harness's events.

One interface (`StudyDisplay`), one tqdm implementation (`ProgressDisplay`) and a
null object (`NullDisplay`, for ``quiet`` and for library callers). stdout is
left alone: the final summary table is printed by the CLI
(`llenergymeasure.orchestrator.cli.summary`), so ``llem run ... > table.txt``
captures only the table.

- default: a bar over runs (``done/total``), a bar over the measured prompts of
  the current run, the phase as postfix, the gap countdown as postfix;
- ``verbose``: also every harness log line;
- ``quiet``: nothing (errors still reach the logging handlers the CLI installs).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

from llenergymeasure.schemas.events import (
    Failed,
    PhaseStarted,
    ProgressEvent,
    PromptsProgress,
    WarmupProgress,
    WarningEvent,
    WindowFinished,
)


class StudyDisplay(Protocol):
    def study_started(self, study_id: str, total_runs: int, done_runs: int) -> None: ...
    def run_started(self, label: str, cycle: int) -> None: ...
    def event(self, event: ProgressEvent) -> None: ...
    def log_line(self, line: str) -> None: ...
    def run_finished(self, ok: bool, message: str = "") -> None: ...
    def gap_tick(self, seconds_left: float, reason: str) -> None: ...
    def close(self) -> None: ...


class NullDisplay:
    """Shows nothing."""

    def study_started(self, study_id: str, total_runs: int, done_runs: int) -> None:
        pass

    def run_started(self, label: str, cycle: int) -> None:
        pass

    def event(self, event: ProgressEvent) -> None:
        pass

    def log_line(self, line: str) -> None:
        pass

    def run_finished(self, ok: bool, message: str = "") -> None:
        pass

    def gap_tick(self, seconds_left: float, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


class ProgressDisplay:
    """tqdm bars on `stream` (stderr by default)."""

    def __init__(self, *, verbose: bool = False, stream: TextIO | None = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._stream = stream or sys.stderr
        self._verbose = verbose
        self._runs: Any = None
        self._prompts: Any = None
        self._label = ""

    def study_started(self, study_id: str, total_runs: int, done_runs: int) -> None:
        self._runs = self._tqdm(
            total=total_runs,
            initial=done_runs,
            desc=f"study {study_id}",
            unit="run",
            file=self._stream,
            position=0,
            leave=True,
            dynamic_ncols=True,
        )

    def run_started(self, label: str, cycle: int) -> None:
        self._label = f"{label} · cycle {cycle}"
        self._close_prompts()
        if self._runs is not None:
            self._runs.set_postfix_str(self._label, refresh=True)

    def event(self, event: ProgressEvent) -> None:
        if isinstance(event, PhaseStarted):
            self._postfix(f"{self._label} · {event.phase}")
        elif isinstance(event, WarmupProgress):
            self._postfix(f"{self._label} · warmup {event.done}/{event.total}")
        elif isinstance(event, PromptsProgress):
            if self._prompts is None:
                self._prompts = self._tqdm(
                    total=event.total,
                    desc="  prompts",
                    unit="prompt",
                    file=self._stream,
                    position=1,
                    leave=False,
                    dynamic_ncols=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}",  # no rate: updates are batched
                )
            self._prompts.n = event.done
            self._prompts.refresh()
        elif isinstance(event, WindowFinished):
            self._close_prompts()
            rate = event.output_tokens / event.duration_s if event.duration_s > 0 else 0.0
            self._write(
                f"  {self._label}: {event.output_tokens} output tokens in {event.duration_s:.2f} s ({rate:.1f} tokens/s)"
            )
        elif isinstance(event, WarningEvent):
            self._write(f"  warning [{event.code}]: {event.message}")
        elif isinstance(event, Failed):
            self._write(f"  failed in {event.phase or '?'}: {event.type}: {event.message}")

    def log_line(self, line: str) -> None:
        if self._verbose:
            self._write(f"  | {line}")

    def run_finished(self, ok: bool, message: str = "") -> None:
        self._close_prompts()
        if not ok:
            self._write(f"✗ {self._label}: {message}" if message else f"✗ {self._label}")
        if self._runs is not None:
            self._runs.set_postfix_str("", refresh=False)
            self._runs.update(1)

    def gap_tick(self, seconds_left: float, reason: str) -> None:
        self._postfix(f"{reason}: {seconds_left:.0f} s left" if seconds_left > 0 else "")

    def close(self) -> None:
        self._close_prompts()
        if self._runs is not None:
            self._runs.close()
            self._runs = None

    def _postfix(self, text: str) -> None:
        if self._runs is not None:
            self._runs.set_postfix_str(text, refresh=True)

    def _write(self, text: str) -> None:
        self._tqdm.write(text, file=self._stream)

    def _close_prompts(self) -> None:
        if self._prompts is not None:
            self._prompts.close()
            self._prompts = None


class LineDisplay:
    """Plain lines on `stream` for logs and CI (no carriage returns, no redraws): one line per run and
    per notable event, and the gap countdown every `GAP_STEP_S` seconds."""

    GAP_STEP_S = 10.0

    def __init__(self, *, verbose: bool = False, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._verbose = verbose
        self._total = 0
        self._done = 0
        self._label = ""
        self._last_gap_s: float | None = None

    def study_started(self, study_id: str, total_runs: int, done_runs: int) -> None:
        self._total, self._done = total_runs, done_runs
        resumed = f" ({done_runs} already done)" if done_runs else ""
        self._write(f"study {study_id}: {total_runs} runs{resumed}")

    def run_started(self, label: str, cycle: int) -> None:
        self._label = f"{label} · cycle {cycle}"
        self._last_gap_s = None
        self._write(f"[{self._done + 1}/{self._total}] {self._label}")

    def event(self, event: ProgressEvent) -> None:
        if isinstance(event, WindowFinished):
            rate = event.output_tokens / event.duration_s if event.duration_s > 0 else 0.0
            self._write(f"  {event.output_tokens} output tokens in {event.duration_s:.2f} s ({rate:.1f} tokens/s)")
        elif isinstance(event, WarningEvent):
            self._write(f"  warning [{event.code}]: {event.message}")
        elif isinstance(event, Failed):
            self._write(f"  failed in {event.phase or '?'}: {event.type}: {event.message}")
        elif self._verbose and isinstance(event, PhaseStarted):
            self._write(f"  {event.phase}")

    def log_line(self, line: str) -> None:
        if self._verbose:
            self._write(f"  | {line}")

    def run_finished(self, ok: bool, message: str = "") -> None:
        self._done += 1
        if not ok:
            self._write(f"  ✗ {message}" if message else "  ✗ failed")

    def gap_tick(self, seconds_left: float, reason: str) -> None:
        if seconds_left <= 0:
            return
        if self._last_gap_s is None or self._last_gap_s - seconds_left >= self.GAP_STEP_S:
            self._last_gap_s = seconds_left
            self._write(f"  {reason}: {seconds_left:.0f} s left")

    def close(self) -> None:
        self._stream.flush()

    def _write(self, text: str) -> None:
        print(text, file=self._stream, flush=True)


def make_display(*, quiet: bool, verbose: bool, stream: TextIO | None = None) -> StudyDisplay:
    """`NullDisplay` when quiet; tqdm bars on a terminal; plain lines when the stream is a file or a pipe."""
    if quiet:
        return NullDisplay()
    target = stream or sys.stderr
    if getattr(target, "isatty", lambda: False)():
        return ProgressDisplay(verbose=verbose, stream=target)
    return LineDisplay(verbose=verbose, stream=target)
