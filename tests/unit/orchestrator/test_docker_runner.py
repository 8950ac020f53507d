"""`DockerRunner` against a fake Docker client of our own: lifecycle, timeouts, OOM, crash, Ctrl-C, clean-up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from orch_factories import make_result, tiny_config
from orch_fake_docker import FakeDockerClient, Sandbox

from llenergymeasure.errors import ExperimentError
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.reaper import LABEL_HOST_PID, owner_labels
from llenergymeasure.schemas.events import ErrorDocument, Failed, PhaseStarted, ProgressEvent, event_line
from llenergymeasure.schemas.job import ERROR_FILE, RESULT_FILE, ExperimentJob, RunContext

IMAGE = "llenergymeasure/pytorch:2.0.0-cpu"
CANARY = "hf_unit_canary_0042"


def harness_ok(box: Sandbox) -> int:
    box.out(event_line(PhaseStarted(phase="preflight")))
    box.err("INFO loading the model")
    box.out("a stray print on stdout")
    box.out(event_line(PhaseStarted(phase="measure")))
    (box.results / RESULT_FILE).write_text(make_result(box.job).model_dump_json())
    return 0


def harness_error(box: Sandbox) -> int:
    box.out(event_line(PhaseStarted(phase="load")))
    doc = ErrorDocument(type="BackendError", message="weights are corrupt", phase="load")
    (box.results / ERROR_FILE).write_text(doc.model_dump_json())
    box.out(event_line(Failed(phase="load", type="BackendError", message="weights are corrupt")))
    return 1


def crash(box: Sandbox) -> int:
    box.err("Segmentation fault (core dumped)")
    return 139


def hang(box: Sandbox) -> int:
    box.out(event_line(PhaseStarted(phase="load")))
    box.killed.wait(30)
    return 0


def chatty_hang(box: Sandbox) -> int:
    while not box.killed.wait(0.05):
        box.err("still busy")
    return 0


def oom(box: Sandbox) -> int:
    box.out(event_line(PhaseStarted(phase="load")))
    box.oom[0] = True
    return 137


def _request(tmp_path: Path, **kw: float) -> RunRequest:
    job = ExperimentJob(config=tiny_config(), context=RunContext(study_id="s", experiment_id="000-x", cycle=1))
    return RunRequest(
        job=job,
        run_dir=tmp_path / "run",
        name="llem-s-000-c1",
        labels={"llem.study_id": "s"},
        wall_timeout_s=kw.get("wall", 30.0),
        silence_timeout_s=kw.get("silence", 30.0),
    )


def _runner(client: FakeDockerClient, **options: object) -> DockerRunner:
    client.add_image(IMAGE)
    return DockerRunner(
        client,
        {"pytorch": IMAGE},
        DockerOptions(stop_timeout_s=1, **options),
        host_env={"HF_TOKEN": CANARY},  # type: ignore[arg-type]
    )


def test_success_streams_events_logs_and_removes_the_container(tmp_path: Path) -> None:
    client = FakeDockerClient(harness_ok)
    events: list[ProgressEvent] = []
    request = _request(tmp_path)
    request.on_event = events.append
    result = _runner(client).run(request)
    assert result.experiment_id == "000-x"
    assert [e.phase for e in events if isinstance(e, PhaseStarted)] == ["preflight", "measure"]
    log = (tmp_path / "run" / "harness.log").read_text().splitlines()
    assert sorted(log) == sorted(["INFO loading the model", "a stray print on stdout"])
    (container,) = client.created
    assert container.removed
    assert client.live() == []
    assert container.labels["llem.study_id"] == "s"
    assert container.labels[LABEL_HOST_PID] == owner_labels()[LABEL_HOST_PID]
    assert container.kwargs["environment"]["HF_TOKEN"] == CANARY  # forwarded to the container...
    for path in (tmp_path / "run").rglob("*"):  # ...and never written by the host
        assert CANARY not in path.read_text()


def test_harness_error_is_structured(tmp_path: Path) -> None:
    client = FakeDockerClient(harness_error)
    with pytest.raises(ExperimentError) as info:
        _runner(client).run(_request(tmp_path))
    f = info.value.failure
    assert (f.exit_code, f.phase, f.error_type, f.oom_killed, f.timed_out) == (1, "load", "BackendError", False, None)
    assert f.measurement_config_hash == tiny_config().measurement_config_hash()
    assert "weights are corrupt" in info.value.message
    assert client.live() == []


def test_crash_without_error_json(tmp_path: Path) -> None:
    client = FakeDockerClient(crash)
    with pytest.raises(ExperimentError) as info:
        _runner(client).run(_request(tmp_path))
    assert info.value.failure.exit_code == 139
    assert info.value.failure.log_tail == ["Segmentation fault (core dumped)"]
    assert "without writing error.json" in info.value.message
    assert client.live() == []


def test_silence_timeout_stops_and_removes(tmp_path: Path) -> None:
    client = FakeDockerClient(hang)
    t0 = time.monotonic()
    with pytest.raises(ExperimentError) as info:
        _runner(client).run(_request(tmp_path, silence=0.3))
    assert time.monotonic() - t0 < 5
    assert info.value.failure.timed_out == "silence"
    assert info.value.failure.phase == "load"
    (container,) = client.created
    assert container.calls[:2] == ["start", "stop(1)"]
    assert container.removed
    assert client.live() == []


def test_wall_clock_timeout_fires_even_while_output_flows(tmp_path: Path) -> None:
    client = FakeDockerClient(chatty_hang)
    with pytest.raises(ExperimentError) as info:
        _runner(client).run(_request(tmp_path, wall=0.5, silence=0.3))
    assert info.value.failure.timed_out == "wall_clock"
    assert client.live() == []


def test_oom_kill_is_reported(tmp_path: Path) -> None:
    client = FakeDockerClient(oom)
    with pytest.raises(ExperimentError) as info:
        _runner(client, mem_limit="64m").run(_request(tmp_path))
    f = info.value.failure
    assert f.oom_killed
    assert f.exit_code == 137
    assert f.phase == "load"
    assert client.created[0].kwargs["mem_limit"] == "64m"
    assert client.live() == []


def test_ctrl_c_removes_the_container_and_propagates(tmp_path: Path) -> None:
    client = FakeDockerClient(hang)
    request = _request(tmp_path)

    def interrupt(event: ProgressEvent) -> None:
        raise KeyboardInterrupt

    request.on_event = interrupt
    with pytest.raises(KeyboardInterrupt):
        _runner(client).run(request)
    (container,) = client.created
    assert container.removed
    assert "stop(1)" not in container.calls  # no grace period after Ctrl-C
    assert client.live() == []


def test_missing_image_is_an_experiment_error(tmp_path: Path) -> None:
    client = FakeDockerClient(harness_ok)
    runner = DockerRunner(client, {"pytorch": "nope:1"}, host_env={})
    with pytest.raises(ExperimentError) as info:
        runner.run(_request(tmp_path))
    assert info.value.failure.phase == "container"
    assert "make image-cpu" in info.value.message


def test_stale_container_of_a_dead_process_is_replaced(tmp_path: Path) -> None:
    client = FakeDockerClient(harness_ok)
    runner = _runner(client)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    labels = {**owner_labels(), LABEL_HOST_PID: str(dead.pid)}
    labels.pop("llem.host_pid_start", None)
    client.containers.create(image=IMAGE, name="llem-s-000-c1", labels=labels, environment={}, volumes={})
    runner.run(_request(tmp_path))
    assert client.live() == []


def test_container_of_a_live_process_is_never_touched(tmp_path: Path) -> None:
    client = FakeDockerClient(harness_ok)
    runner = _runner(client)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        labels = owner_labels(pid=alive.pid)  # another llem process of this host, still running
        client.containers.create(image=IMAGE, name="llem-s-000-c1", labels=labels, environment={}, volumes={})
        with pytest.raises(ExperimentError, match="docker rm -f"):
            runner.run(_request(tmp_path))
    finally:
        alive.kill()
        alive.wait()
    assert [c.name for c in client.live()] == ["llem-s-000-c1"]


def test_other_user_gets_a_writable_run_dir(tmp_path: Path) -> None:
    client = FakeDockerClient(harness_ok)
    _runner(client, user="4321:4321").run(_request(tmp_path))
    assert client.created[0].kwargs["user"] == "4321:4321"
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o777


def test_job_sent_is_valid_json_with_the_image(tmp_path: Path) -> None:
    client = FakeDockerClient(harness_ok)
    _runner(client).run(_request(tmp_path))
    job = json.loads(client.created[0].kwargs["environment"]["LLEM_EXPERIMENT"])
    assert job["context"]["image"] == IMAGE
    assert job["protocol_version"] == 1


def test_a_second_ctrl_c_during_clean_up_is_held_until_the_container_is_gone() -> None:
    import os
    import signal

    from llenergymeasure.orchestrator.runners.docker import _defer_sigint

    steps: list[str] = []

    def clean_up() -> None:
        with _defer_sigint():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            steps.append("removed")  # clean-up went on despite the signal
        steps.append("never")

    # the test sets the handler it relies on: a shell's background job (`make test &`) starts with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            clean_up()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert steps == ["removed"]
