"""Ctrl-C in the CLI: the first one interrupts, the ones during clean-up or interpreter shutdown never
print a traceback; the exit code is 130. Real signals, sent to this process or to a `llem` subprocess.

Each test installs the handlers it relies on itself, so it passes whatever disposition the parent
left (a shell's background job starts with SIGINT ignored).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llenergymeasure.orchestrator.cli import _interrupt_on_signals


def test_only_the_first_signal_interrupts_the_ones_during_clean_up_are_swallowed() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job would start
    restore = _interrupt_on_signals()
    cleaned_up: list[str] = []

    def work_then_clean_up() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # never reached: the handler raises
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # a second request to stop (a scheduler) during clean-up
            time.sleep(0.05)
            cleaned_up.append("done")  # the clean-up ran to its end

    try:
        with pytest.raises(KeyboardInterrupt):
            work_then_clean_up()
    finally:
        restore()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the previous disposition is back
        signal.signal(signal.SIGINT, previous)
    assert cleaned_up == ["done"]


_SLOW_SHUTDOWN = """
import atexit, sys, time

def library_exit_hook():  # stands for a library's exit hook that takes a while (a thread-pool join, a flush)
    print("exit hook started", flush=True)
    time.sleep(10)
    print("exit hook finished", flush=True)

atexit.register(library_exit_hook)
sys.argv = ["llem", "run", "--model", "gpt2", "-n", "2", "--dry-run"]
from llenergymeasure.orchestrator.cli import entrypoint
entrypoint()
"""


def test_ctrl_c_during_interpreter_shutdown_exits_130_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    env = {**os.environ, "LLEM_CONFIG": str(tmp_path / "empty.yaml"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SHUTDOWN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # inherited as ignored: llem sets its own
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("exit hook started"):
                break
        assert any(line.startswith("exit hook started") for line in lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=10)
        elapsed_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert elapsed_s < 5  # it left at once, not after the hook's 10 s
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "exit hook finished" not in out
    assert "dry run: nothing was executed" in "".join(lines) + out  # what was printed before is kept


_HUNG_CLEAN_UP = """
import os, signal, sys, time
from llenergymeasure.orchestrator.cli import _interrupt_on_signals

_interrupt_on_signals()
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
except KeyboardInterrupt:
    print("interrupted, cleaning up", flush=True)
    os.kill(os.getpid(), signal.SIGINT)  # second: swallowed
    time.sleep(0.1)
    print("still cleaning up", flush=True)
    os.kill(os.getpid(), signal.SIGINT)  # third: leave now
    time.sleep(10)
    print("clean-up finished", flush=True)
sys.exit(0)
"""


def test_a_third_signal_leaves_a_hung_clean_up_at_once_with_130() -> None:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _HUNG_CLEAN_UP], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 130, proc.stderr
    assert time.monotonic() - t0 < 8  # not after the 10 s sleep
    assert proc.stdout.splitlines() == ["interrupted, cleaning up", "still cleaning up"]
    assert "Traceback" not in proc.stderr
