"""LocalRunner's process handling, driven by stand-in "python" scripts that play the harness's part.

The runner execs ``<python> -m llenergymeasure.harness``; a shell script in its
place ignores the arguments and behaves as a harness would (or would not).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from harness_fakes import minimal_result

from llenergymeasure.errors import ExperimentError
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.local import LocalRunner
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.events import Heartbeat, PhaseStarted, ResultWritten
from llenergymeasure.schemas.job import ExperimentJob

CONFIG = ExperimentConfig(model="org/model")


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def request(tmp_path: Path, **kwargs: object) -> RunRequest:
    return RunRequest(job=ExperimentJob(config=CONFIG), run_dir=tmp_path / "run", name="t", **kwargs)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_success_streams_events_logs_and_returns_the_result(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(minimal_result(CONFIG).model_dump_json())
    body = f"""
echo '{PhaseStarted(phase="load").model_dump_json()}'
echo 'a log line on stdout'
echo 'a log line on stderr' >&2
echo "job is $(printf %s "$LLEM_EXPERIMENT" | head -c 19)" >&2
cp {good} "$LLEM_RESULTS_DIR/result.json"
echo '{ResultWritten(path="result.json").model_dump_json()}'
"""
    events: list[object] = []
    runner = LocalRunner(python=script(tmp_path, body))
    result = runner.run(request(tmp_path, on_event=events.append))
    assert result.output_tokens == 80
    assert [type(e).__name__ for e in events] == ["PhaseStarted", "ResultWritten"]
    log = (tmp_path / "run" / "harness.log").read_text()
    assert "a log line on stdout" in log
    assert "a log line on stderr" in log
    assert 'job is {"protocol_version"' in log
    assert '"event"' not in log


def test_harness_failure_is_an_experiment_error_with_facts(tmp_path: Path) -> None:
    body = """
echo 'Traceback: something broke' >&2
printf '{"type": "BackendError", "message": "no such model", "phase": "load", "traceback": null}' > "$LLEM_RESULTS_DIR/error.json"
exit 1
"""
    with pytest.raises(ExperimentError) as err:
        LocalRunner(python=script(tmp_path, body)).run(request(tmp_path))
    f = err.value.failure
    assert err.value.message == "BackendError: no such model"
    assert (f.exit_code, f.phase, f.error_type) == (1, "load", "BackendError")
    assert f.log_tail == ["Traceback: something broke"]
    assert f.measurement_config_hash == CONFIG.measurement_config_hash()


def test_silence_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    body = f"""
sleep 300 &
echo $! > {pid_file}
echo '{Heartbeat(phase="warmup").model_dump_json()}'
sleep 300
"""
    t0 = time.monotonic()
    with pytest.raises(ExperimentError, match="timed out") as err:
        LocalRunner(python=script(tmp_path, body), kill_grace_s=1.0).run(request(tmp_path, silence_timeout_s=1.0))
    assert time.monotonic() - t0 < 10
    assert err.value.failure.timed_out == "silence"
    assert err.value.failure.phase == "warmup"
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "a grandchild outlived the run"


def test_wall_clock_timeout_despite_heartbeats(tmp_path: Path) -> None:
    body = f"""
while true; do echo '{Heartbeat(phase="measure").model_dump_json()}'; sleep 0.1; done
"""
    with pytest.raises(ExperimentError) as err:
        LocalRunner(python=script(tmp_path, body), kill_grace_s=1.0).run(
            request(tmp_path, wall_timeout_s=1.0, silence_timeout_s=30.0)
        )
    assert err.value.failure.timed_out == "wall_clock"


def test_unstartable_python_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="cannot start the harness"):
        LocalRunner(python=str(tmp_path / "no-python")).run(request(tmp_path))


def test_environment_carries_the_job_and_host_gpus(tmp_path: Path) -> None:
    env = LocalRunner(extra_env={"X_EXTRA": "1"}).environment(request(tmp_path, host_device_ids=[2, 3]))
    job = ExperimentJob.model_validate_json(env["LLEM_EXPERIMENT"])
    assert job.context.device_ids == [2, 3]  # local: the harness sees host indices
    assert env["LLEM_RESULTS_DIR"] == str(tmp_path / "run")
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["X_EXTRA"] == "1"
