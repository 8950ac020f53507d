"""Faults on the real engine; each leaves the study consistent and no container behind.

Crash and hang use the docker runner's command seam (`DockerOptions.command_override`,
a different command in the same image) — no fault code lives in the product
harness. The OOM case runs the real harness under a memory limit too small for
it. Ctrl-C and the host SIGKILL drive the real `llem` CLI in a subprocess.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import (
    llem_command,
    llem_env,
    only_study_dir,
    read_manifest,
    stop_if_running,
    study_containers,
    tiny_experiment,
    wait_for,
    write_study_yaml,
)

from llenergymeasure.errors import StudyError
from llenergymeasure.orchestrator.api import run_study
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.user_config import load_user_config
from llenergymeasure.schemas.job import ExperimentJob
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.schemas.sweep import resolve_study

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CRASH = ["python", "-c", "import os, sys; print('about to crash', file=sys.stderr, flush=True); os.abort()"]
HANG = [
    "python",
    "-c",
    'import time; print(\'{"event": "phase_started", "phase": "load"}\', flush=True); time.sleep(3600)',
]


def _study(model: Path, n_experiments: int, n_cycles: int = 1, **execution: Any) -> StudyConfig:
    raw = {
        **tiny_experiment(model),
        "name": "faults",
        "experiments": [{"n": 2 + i} for i in range(n_experiments)],
        "execution": {"n_cycles": n_cycles, "config_gap_seconds": 0, "cycle_gap_seconds": 0, **execution},
    }
    return resolve_study(raw)


def _run_study(study: StudyConfig, client: Any, image: str, output: Path, **options: Any) -> Any:
    runner = DockerRunner(client, {"pytorch": image}, DockerOptions(stop_timeout_s=2, **options), host_env={})
    return run_study(
        study,
        output_dir=output,
        runner=runner,
        quiet=True,
        user_config=load_user_config(env={}, path=output / "no-user-config.yaml"),
    )


def _override(index_to_command: dict[int, Sequence[str]]) -> Any:
    """Command seam: experiment `i` (its id starts with the zero-padded index) runs another command."""

    def choose(job: ExperimentJob) -> Sequence[str] | None:
        return index_to_command.get(int(job.context.experiment_id.split("-")[0]))

    return choose


def _assert_consistent(study_dir: Path, expected: list[str]) -> Any:
    manifest = read_manifest(study_dir)
    assert [e.status for e in manifest.entries] == expected
    for e in manifest.entries:
        run_dir = study_dir / str(e.run_dir)
        has_result = (run_dir / "result.json").is_file()
        assert has_result == (e.status == "completed"), e
        if has_result:
            ExperimentResult.model_validate_json((run_dir / "result.json").read_text())
    assert study_containers(study_dir.name) == []
    return manifest


def test_a_crash_is_isolated(docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path) -> None:
    result = _run_study(
        _study(tiny_model, 3), docker_client, cpu_image, tmp_path, command_override=_override({1: CRASH})
    )
    study_dir = Path(result.study_dir)
    manifest = _assert_consistent(study_dir, ["completed", "failed", "completed"])
    failure = manifest.entries[1].failure
    assert failure.exit_code == 134  # SIGABRT, no error.json
    assert not failure.oom_killed
    assert failure.timed_out is None
    assert "without writing error.json" in failure.message
    assert "about to crash" in (study_dir / str(manifest.entries[1].run_dir) / "harness.log").read_text()
    assert (result.status, result.runs_completed, result.runs_failed) == ("failed", 2, 1)


def test_a_hang_is_stopped_by_the_silence_timeout(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    study = _study(tiny_model, 1, silence_timeout_seconds=3)
    t0 = time.monotonic()
    result = _run_study(study, docker_client, cpu_image, tmp_path, command_override=_override({0: HANG}))
    assert time.monotonic() - t0 < 60
    manifest = _assert_consistent(Path(result.study_dir), ["failed"])
    failure = manifest.entries[0].failure
    assert failure.timed_out == "silence"
    assert failure.phase == "load"


def test_an_oom_kill_is_reported(docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path) -> None:
    # the real harness, under a limit far below what importing torch needs
    result = _run_study(_study(tiny_model, 1, n_cycles=2), docker_client, cpu_image, tmp_path, mem_limit="48m")
    manifest = _assert_consistent(Path(result.study_dir), ["failed", "failed"])
    for entry in manifest.entries:
        assert entry.failure.oom_killed
        assert entry.failure.exit_code == 137


def test_circuit_breaker_on_the_real_engine(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    study = _study(tiny_model, 3, max_consecutive_failures=2)
    with pytest.raises(StudyError, match="2 consecutive failed runs"):
        _run_study(study, docker_client, cpu_image, tmp_path, command_override=lambda job: CRASH)
    study_dir = only_study_dir(tmp_path)
    _assert_consistent(study_dir, ["failed", "failed", "pending"])
    assert json.loads((study_dir / "study_result.json").read_text())["status"] == "failed"


def _start_llem(tmp_path: Path, study: dict[str, Any], *extra: str) -> tuple[subprocess.Popen[str], Path]:
    config = write_study_yaml(tmp_path / "study.yaml", study)
    output = tmp_path / "results"
    proc = subprocess.Popen(
        [*llem_command(), "run", str(config), "-o", str(output), "--quiet", *extra],
        env=llem_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control starts background jobs with SIGINT ignored, and the child would inherit
        # that: give it the default disposition, so Python installs its KeyboardInterrupt handler as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return proc, output


def _running_containers(study_id: str, client: Any) -> list[Any]:
    return [c for c in client.containers.list(filters={"label": f"llem.study_id={study_id}"}) if c.status == "running"]


def test_ctrl_c_mid_experiment(docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path) -> None:
    # a long warmup (60 s thermal floor) keeps the harness busy mid-experiment when Ctrl-C arrives
    study = {
        **tiny_experiment(tiny_model, warmup={"n_warmup": 1, "thermal_floor_seconds": 60}),
        "name": "ctrl-c",
        "experiments": [{"n": 2}, {"n": 3}],
        "execution": {"n_cycles": 1, "config_gap_seconds": 0, "cycle_gap_seconds": 0},
    }
    proc, output = _start_llem(tmp_path, study)
    try:
        study_dir = wait_for(lambda: next((p for p in output.glob("*") if p.is_dir()), None), 60, "the study directory")
        wait_for(lambda: _running_containers(study_dir.name, docker_client), 60, "a running container")
        time.sleep(5)  # mid-experiment: the run lasts > 60 s (thermal floor), loading takes a few seconds
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        stop_if_running(proc)
    assert proc.returncode == 130, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    manifest = _assert_consistent(study_dir, ["pending", "pending"])
    assert manifest.status == "interrupted"
    assert manifest.entries[0].failure.type == "Interrupted"
    assert manifest.entries[0].attempts == 1
    assert json.loads((study_dir / "study_result.json").read_text())["status"] == "interrupted"


def _statuses(study_dir: Path) -> list[str]:
    if not (study_dir / "manifest.json").is_file():  # the directory is made a moment before its manifest
        return []
    return [e.status for e in read_manifest(study_dir).entries]


def test_host_killed_mid_study_then_resume(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    """Two host deaths, two resumes; every (experiment, cycle) ends up with exactly one result.

    1. The host is frozen (SIGSTOP) while a run is in its container, the container finishes and writes its
       result, then the host is SIGKILLed: the manifest still says ``running`` → the resume *adopts* that result.
       (Frozen, not dead, while the container finishes: another llem on this host would otherwise reap the
       orphan, which is the right thing for it to do but would make this case nondeterministic.)
    2. The resumed host is SIGKILLed while its container runs: the next resume reaps the orphan and runs the
       pair again (or adopts it, if the orphan finished first).
    """
    study = {
        **tiny_experiment(tiny_model),
        "name": "killed",
        "experiments": [{"n": 2}, {"n": 3}, {"n": 4}],
        "execution": {"n_cycles": 2, "config_gap_seconds": 0, "cycle_gap_seconds": 0},
    }
    proc, output = _start_llem(tmp_path, study)
    try:
        study_dir = wait_for(lambda: next((p for p in output.glob("*") if p.is_dir()), None), 60, "the study directory")
        wait_for(
            lambda: "running" in _statuses(study_dir) and _statuses(study_dir).count("completed") >= 1, 120, "run 2"
        )
        (orphan,) = wait_for(lambda: _running_containers(study_dir.name, docker_client), 30, "the running container")
        proc.send_signal(signal.SIGSTOP)
        assert orphan.wait(timeout=120)["StatusCode"] == 0  # finished and wrote result.json while its host was frozen
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_if_running(proc)
    first_kill = read_manifest(study_dir)
    (adoptable,) = [e for e in first_kill.entries if e.status == "running"]
    assert (study_dir / str(adoptable.run_dir) / "result.json").is_file()

    proc, _ = _start_llem(tmp_path, study, "--resume")
    try:
        wait_for(
            lambda: "running" in _statuses(study_dir) and _statuses(study_dir).count("completed") >= 3, 180, "run 4"
        )
        wait_for(lambda: _running_containers(study_dir.name, docker_client), 30, "the running container")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_if_running(proc)
    (killed_mid_run,) = [e for e in read_manifest(study_dir).entries if e.status == "running"]

    resumed = subprocess.run(
        [*llem_command(), "run", str(tmp_path / "study.yaml"), "-o", str(output), "--quiet", "--resume"],
        env=llem_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, f"stdout:\n{resumed.stdout}\nstderr:\n{resumed.stderr[-4000:]}"
    assert only_study_dir(output) == study_dir  # resumed in place, never a second study
    manifest = _assert_consistent(study_dir, ["completed"] * 6)
    assert manifest.status == "completed"
    entries = {(e.index, e.cycle): e for e in manifest.entries}
    assert entries[(adoptable.index, adoptable.cycle)].attempts == 1  # adopted, not run again
    assert entries[(killed_mid_run.index, killed_mid_run.cycle)].attempts in (1, 2)
    results = [ExperimentResult.model_validate_json(p.read_text()) for p in study_dir.glob("*/result.json")]
    assert sorted((r.experiment_id, r.cycle) for r in results) == sorted(
        (e.experiment_id, e.cycle) for e in manifest.entries
    )
    assert all(e.attempts == 1 for k, e in entries.items() if k != (killed_mid_run.index, killed_mid_run.cycle))
