"""The study lifecycle on the real engine: resume after a host kill keeps the execution it started with,
a second Ctrl-C during clean-up, the library's defaults equal the CLI's, and a container left with the
deterministic name is replaced."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
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

from llenergymeasure.orchestrator.retry import RetryPolicy
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.reaper import owner_labels
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.results import ExperimentResult

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NO_GAPS = {"config_gap_seconds": 0, "cycle_gap_seconds": 0}


def _start(tmp_path: Path, study_yaml: Path, output: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*llem_command(), "run", str(study_yaml), "-o", str(output), "--quiet", *extra],
        env=llem_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # the CLI installs its own SIGINT handler, so the disposition a background job inherits does not matter
    )


def _llem(tmp_path: Path, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*llem_command(), *args], env=llem_env(tmp_path), capture_output=True, text=True, timeout=timeout_s
    )


def _statuses(study_dir: Path) -> list[str]:
    return [e.status for e in read_manifest(study_dir).entries]


def test_resume_after_a_host_kill_finishes_the_cycles_the_study_started_with(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    # the file sets no n_cycles: the study is started with --cycles 4 (the default would be 3)
    study = {**tiny_experiment(tiny_model), "name": "resume-cycles", "execution": NO_GAPS}
    study_yaml = write_study_yaml(tmp_path / "study.yaml", study)
    output = tmp_path / "out"
    proc = _start(tmp_path, study_yaml, output, "--cycles", "4")
    try:
        study_dir = wait_for(lambda: next((p for p in output.glob("*") if p.is_dir()), None), 60, "the study dir")
        wait_for(lambda: _statuses(study_dir).count("completed") >= 1, 180, "a completed run")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_if_running(proc)
    killed = read_manifest(study_dir)
    assert (killed.execution.n_cycles, len(killed.entries)) == (4, 4)
    assert killed.entries[-1].status != "completed"

    contradicting = _llem(tmp_path, "run", str(study_yaml), "-o", str(output), "--quiet", "--resume", "--cycles", "2")
    assert contradicting.returncode == 2, contradicting.stderr
    assert "--cycles 2 asked" in contradicting.stderr and "n_cycles = 4" in contradicting.stderr
    assert "Traceback" not in contradicting.stderr

    resumed = _llem(tmp_path, "run", str(study_yaml), "-o", str(output), "--quiet", "--resume")
    assert resumed.returncode == 0, f"stdout:\n{resumed.stdout}\nstderr:\n{resumed.stderr[-4000:]}"
    assert only_study_dir(output) == study_dir
    manifest = read_manifest(study_dir)
    assert manifest.status == "completed"
    assert manifest.execution.n_cycles == 4
    assert [(e.cycle, e.status) for e in manifest.entries] == [(c, "completed") for c in (1, 2, 3, 4)]
    results = [ExperimentResult.model_validate_json(p.read_text()) for p in study_dir.glob("*/result.json")]
    assert sorted(r.cycle for r in results) == [1, 2, 3, 4]
    outcome = json.loads((study_dir / "study_result.json").read_text())
    assert (outcome["status"], outcome["runs_total"], outcome["runs_completed"]) == ("completed", 4, 4)
    assert study_containers(study_dir.name) == []


def test_a_second_ctrl_c_during_clean_up_prints_one_line_and_exits_130(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    # a 60 s thermal floor keeps the container busy when the two Ctrl-C arrive
    study = {
        **tiny_experiment(tiny_model, warmup={"n_warmup": 1, "thermal_floor_seconds": 60}),
        "name": "double-ctrl-c",
        "execution": {"n_cycles": 2, **NO_GAPS},
    }
    output = tmp_path / "out"
    proc = _start(tmp_path, write_study_yaml(tmp_path / "study.yaml", study), output)
    try:
        study_dir = wait_for(lambda: next((p for p in output.glob("*") if p.is_dir()), None), 60, "the study dir")
        wait_for(lambda: study_containers(study_dir.name), 60, "a container")
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # the clean-up (stop, remove the container, write the manifest) is under way
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        stop_if_running(proc)
    assert proc.returncode == 130, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["interrupted"]
    manifest = read_manifest(study_dir)
    assert manifest.status == "interrupted"
    assert [e.status for e in manifest.entries] == ["pending", "pending"]
    assert study_containers(study_dir.name) == []


def test_library_defaults_equal_the_cli_and_each_documented_call_form_runs(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llenergymeasure import run_experiment, run_study

    user_config = tmp_path / "user.yaml"
    user_config.write_text("execution:\n  config_gap_seconds: 0\n  cycle_gap_seconds: 0\n")
    for key, value in llem_env(tmp_path).items():
        if key.startswith("LLEM_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("LLEM_CONFIG", str(user_config))
    monkeypatch.delenv("LLEM_RUNNER_PYTORCH", raising=False)

    # run_study("study.yaml"): no n_cycles in the file → 3 cycles, gaps from the user config, docker resolved
    exp = tiny_experiment(tiny_model)
    study_yaml = write_study_yaml(tmp_path / "study.yaml", {**exp, "name": "parity"})
    outcome = run_study(study_yaml, output_dir=tmp_path / "out", quiet=True)
    assert (outcome.status, outcome.runs_total, outcome.runs_completed, outcome.runner) == (
        "completed",
        3,
        3,
        "docker",
    )
    manifest = read_manifest(Path(outcome.study_dir))
    assert (manifest.execution.config_gap_seconds, manifest.execution.cycle_gap_seconds) == (0.0, 0.0)

    # run_experiment(model=..., n=...): fields over the defaults
    by_fields = run_experiment(**{k: v for k, v in exp.items() if k != "n"}, n=2)
    assert by_fields.n_prompts == 2
    assert by_fields.environment_snapshot.image == cpu_image

    # run_experiment("exp.yaml", n=...): fields over a file
    exp_yaml = write_study_yaml(tmp_path / "exp.yaml", exp)
    over_file = run_experiment(exp_yaml, n=2, output_dir=tmp_path / "runs")
    assert over_file.n_prompts == 2 and over_file.config.max_output_tokens == exp["max_output_tokens"]

    # run_experiment(ExperimentConfig(...))
    by_object = run_experiment(ExperimentConfig.model_validate({**exp, "n": 1}))
    assert by_object.n_prompts == 1


def test_a_container_left_with_the_deterministic_name_is_replaced(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    """Name conflicts on the real engine: a container of a dead llem process, and this process's own
    never-started leftover (a create whose answer was lost), hold the run's name; both are removed and
    the run goes ahead."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runner = DockerRunner(
        docker_client,
        {"pytorch": cpu_image},
        DockerOptions(stop_timeout_s=2),
        host_env={},
        retry=RetryPolicy(initial_s=0.2, max_s=1.0, jitter_s=0.1),
    )
    config = ExperimentConfig.model_validate({**tiny_experiment(tiny_model), "n": 1})
    stamp = str(time.time_ns())
    for owner_pid in (dead.pid, None):  # a dead process; this process
        name = f"llem-lifecycle-{stamp}-{owner_pid or 'self'}"
        stale = docker_client.containers.create(cpu_image, command=["true"], name=name, labels=owner_labels(owner_pid))
        request = RunRequest(
            job=ExperimentJob(config=config, context=RunContext(experiment_id="000-x")),
            run_dir=tmp_path / name,
            name=name,
            wall_timeout_s=300,
            silence_timeout_s=120,
        )
        try:
            result = runner.run(request)
        finally:
            for leftover in docker_client.containers.list(all=True, filters={"name": name}):
                leftover.remove(force=True)
        assert result.n_prompts == 1
        import docker.errors

        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(stale.id)  # the stale one is gone; the run's own was removed too
