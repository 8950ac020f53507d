"""Progress display on a stream: what a user sees for a run, quiet shows nothing."""

from __future__ import annotations

import io

from llenergymeasure.orchestrator.display import LineDisplay, NullDisplay, ProgressDisplay, make_display
from llenergymeasure.schemas.events import (
    PhaseStarted,
    PromptsProgress,
    WarningEvent,
    WindowFinished,
)


def _session(verbose: bool) -> str:
    stream = io.StringIO()
    d = ProgressDisplay(verbose=verbose, stream=stream)
    d.study_started("s1", total_runs=2, done_runs=1)
    d.run_started("tiny · pytorch · fp32", cycle=2)
    d.event(PhaseStarted(phase="load"))
    d.log_line("loading weights")
    d.event(PromptsProgress(done=2, total=4))
    d.event(WindowFinished(duration_s=2.0, output_tokens=50))
    d.event(WarningEvent(code="short_window", message="window < 10 s"))
    d.run_finished(False, "harness exited with code 1")
    d.gap_tick(42, "config gap")
    d.close()
    return stream.getvalue()


def test_progress_shows_runs_phases_window_and_failures() -> None:
    out = _session(verbose=False)
    assert "study s1" in out
    assert "2/2" in out  # one run was already done, one finished now
    assert "tiny · pytorch · fp32 · cycle 2 · load" in out
    assert "50 output tokens in 2.00 s (25.0 tokens/s)" in out
    assert "warning [short_window]: window < 10 s" in out
    assert "✗ tiny · pytorch · fp32 · cycle 2: harness exited with code 1" in out
    assert "config gap: 42 s left" in out
    assert "loading weights" not in out


def test_verbose_shows_harness_log_lines() -> None:
    assert "| loading weights" in _session(verbose=True)


def test_quiet_is_the_null_display() -> None:
    assert isinstance(make_display(quiet=True, verbose=False), NullDisplay)


def test_plain_lines_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()  # not a TTY: a log file, a pipe, CI
    d = make_display(quiet=False, verbose=False, stream=stream)
    assert isinstance(d, LineDisplay)
    d.study_started("s1", total_runs=2, done_runs=0)
    d.run_started("tiny · pytorch", 1)
    d.event(WindowFinished(duration_s=2.0, output_tokens=100))
    d.event(WarningEvent(code="short_window", message="window under 10 s"))
    d.run_finished(True)
    for left in (30.0, 29.0, 21.0, 20.0, 5.0, 0.0):
        d.gap_tick(left, "gap before the next experiment")
    d.run_started("tiny · pytorch", 2)
    d.run_finished(False, "exit 137 (OOM)")
    d.close()
    assert stream.getvalue().splitlines() == [
        "study s1: 2 runs",
        "[1/2] tiny · pytorch · cycle 1",
        "  100 output tokens in 2.00 s (50.0 tokens/s)",
        "  warning [short_window]: window under 10 s",
        "  gap before the next experiment: 30 s left",
        "  gap before the next experiment: 20 s left",
        "  gap before the next experiment: 5 s left",
        "[2/2] tiny · pytorch · cycle 2",
        "  ✗ exit 137 (OOM)",
    ]
    assert "\r" not in stream.getvalue()
