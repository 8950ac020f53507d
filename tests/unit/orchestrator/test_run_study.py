"""`run_study` wiring with fakes of our own: runner resolution, pre-flight, study directory, resume, imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from orch_factories import ScriptedRunner, make_result, study_of
from orch_fake_docker import FakeDockerClient, Sandbox

from llenergymeasure.errors import ExperimentError, PreFlightError, StudyError
from llenergymeasure.orchestrator.api import run_study
from llenergymeasure.orchestrator.runners import resolve_runner
from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.orchestrator.runners.reaper import LABEL_HOST, LABEL_HOST_PID
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig, load_user_config
from llenergymeasure.schemas.events import PhaseStarted, event_line
from llenergymeasure.schemas.job import PROTOCOL_LABEL, RESULT_FILE
from llenergymeasure.schemas.manifest import StudyManifest
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.schemas.study_result import StudyResult

CPU_IMAGE = "llenergymeasure/pytorch:2.0.0-cpu"


def _user(tmp_path: Path, env: dict[str, str] | None = None, text: str | None = None) -> EffectiveUserConfig:
    path = tmp_path / "user.yaml"
    if text is not None:
        path.write_text(text)
    return load_user_config(env=env or {}, path=path)


def _local_study(tmp_path: Path, study: StudyConfig, runner: Any, **kw: Any) -> StudyResult:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    study = study.model_copy(
        update={"experiments": [e.model_copy(update={"model": str(model)}) for e in study.experiments]}
    )
    kw.setdefault("user_config", _user(tmp_path))
    return run_study(study, output_dir=tmp_path / "out", runner=runner, quiet=True, gpu_probe=NoGpus(), **kw)


def test_study_directory_contents(tmp_path: Path) -> None:
    result = _local_study(tmp_path, study_of(2, 2), ScriptedRunner())
    study_dir = Path(result.study_dir)
    assert study_dir.parent == tmp_path / "out"
    assert (result.status, result.runs_total, result.runs_completed, result.runner) == ("completed", 4, 4, "local")
    on_disk = StudyResult.model_validate_json((study_dir / "study_result.json").read_text())
    assert on_disk.model_dump(exclude={"finished_at"}) == result.model_dump(exclude={"finished_at"})
    assert len(result.result_files) == 4
    assert all((study_dir / f).is_file() for f in result.result_files)
    saved = yaml.safe_load((study_dir / "study.yaml").read_text())
    assert StudyConfig.model_validate(saved).study_design_hash == result.study_design_hash
    assert StudyManifest.model_validate_json((study_dir / "manifest.json").read_text()).status == "completed"


def test_resume_continues_the_same_directory(tmp_path: Path) -> None:
    study = study_of(2, 2, cycle_order="sequential", max_consecutive_failures=1)
    flaky = ScriptedRunner(lambda r: ExperimentError("boom") if r.job.context.experiment_id.startswith("001") else None)
    with pytest.raises(StudyError):
        _local_study(tmp_path, study, flaky)
    first_dir = next((tmp_path / "out").iterdir())
    runner = ScriptedRunner()
    result = _local_study(tmp_path, study, runner, resume=True)
    assert Path(result.study_dir) == first_dir
    assert [(r.job.context.experiment_id[:3], r.job.context.cycle) for r in runner.requests] == [("001", 1), ("001", 2)]
    assert result.status == "completed"
    assert result.runs_completed == 4


def test_resume_with_nothing_to_resume(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="nothing to resume"):
        _local_study(tmp_path, study_of(1, 1), ScriptedRunner(), resume=True)


def test_interrupt_writes_the_outcome_and_propagates(tmp_path: Path) -> None:
    runner = ScriptedRunner(lambda r: KeyboardInterrupt() if r.job.context.cycle == 2 else None)  # type: ignore[arg-type,return-value]
    with pytest.raises(KeyboardInterrupt):
        _local_study(tmp_path, study_of(1, 2), runner)
    study_dir = next((tmp_path / "out").iterdir())
    outcome = StudyResult.model_validate_json((study_dir / "study_result.json").read_text())
    assert (outcome.status, outcome.runs_completed, outcome.runs_failed) == ("interrupted", 1, 0)


# -- the docker path, resolved from the user config, with a fake client -------------------------------------


def _harness(box: Sandbox) -> int:
    box.out(event_line(PhaseStarted(phase="preflight")))
    (box.results / RESULT_FILE).write_text(make_result(box.job).model_dump_json())
    return 0


def test_docker_runner_resolved_preflighted_and_orphans_reaped(tmp_path: Path) -> None:
    client = FakeDockerClient(_harness)
    client.add_image(CPU_IMAGE, {PROTOCOL_LABEL: "1"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    orphan = client.containers.create(
        image=CPU_IMAGE,
        name="llem-old-000-c1",
        labels={LABEL_HOST: socket.gethostname(), LABEL_HOST_PID: str(dead.pid)},
        environment={},
        volumes={},
    )
    study = study_of(2, 1)
    hub = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc"
    hub.mkdir(parents=True)
    (hub / "config.json").write_text("{}")
    result = run_study(
        study,
        output_dir=tmp_path / "out",
        quiet=True,
        user_config=_user(tmp_path),
        docker_client=client,
        gpu_probe=NoGpus(),
        env={"HF_HUB_CACHE": str(tmp_path / "hub")},
    )
    assert result.status == "completed"
    assert result.runner == "docker"
    assert orphan.removed
    assert [c.kwargs["image"] for c in client.created[1:]] == [CPU_IMAGE, CPU_IMAGE]
    assert all(c.kwargs["environment"]["HF_HUB_OFFLINE"] == "1" for c in client.created[1:])
    assert client.live() == []


def test_preflight_failures_stop_before_any_container(tmp_path: Path) -> None:
    client = FakeDockerClient(_harness)  # no image at all
    with pytest.raises(PreFlightError) as info:
        run_study(
            study_of(1, 1),  # model org/tiny: not in the (empty) cache and the fetch fails
            output_dir=tmp_path / "out",
            quiet=True,
            user_config=_user(tmp_path),
            docker_client=client,
            gpu_probe=NoGpus(),
            env={"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"},
        )
    assert sorted(f.check for f in info.value.failures) == ["image", "model"]
    assert client.created == []
    assert not (tmp_path / "out").exists()


def test_multi_backend_with_a_local_runner_is_refused_even_without_preflight(tmp_path: Path) -> None:
    study = StudyConfig(
        name="mixed",
        experiments=[
            study_of(1, 1).experiments[0],
            study_of(1, 1).experiments[0].model_copy(update={"backend": "vllm", "precision": "fp16"}),
        ],
    )
    with pytest.raises(PreFlightError, match="pre-flight") as info:
        run_study(
            study,
            output_dir=tmp_path / "out",
            quiet=True,
            skip_preflight=True,
            user_config=_user(tmp_path, env={"LLEM_RUNNER_PYTORCH": "local"}),
            docker_client=FakeDockerClient(_harness),
            gpu_probe=NoGpus(),
        )
    assert info.value.failures[0].check == "multi-backend"


def test_runner_resolution_precedence(tmp_path: Path) -> None:
    default = resolve_runner("pytorch", _user(tmp_path))
    assert (default.kind, default.image, default.kind_source) == ("docker", CPU_IMAGE, "default")
    assert resolve_runner("vllm", _user(tmp_path), gpu_count=2).image == "llenergymeasure/vllm:2.0.0-cuda12"
    from_file = _user(tmp_path, text="runners:\n  pytorch: local\n  images: {vllm: my/vllm:dev}\n")
    assert resolve_runner("pytorch", from_file).kind == "local"
    assert resolve_runner("pytorch", from_file).image is None
    assert resolve_runner("vllm", from_file, gpu_count=1).image == "my/vllm:dev"
    env_wins = _user(
        tmp_path,
        env={"LLEM_RUNNER_PYTORCH": "docker", "LLEM_IMAGE_VLLM": "env/vllm:1"},
        text="runners:\n  pytorch: local\n  images: {vllm: my/vllm:dev}\n",
    )
    assert resolve_runner("pytorch", env_wins).kind == "docker"
    assert resolve_runner("pytorch", env_wins).kind_source == "env:LLEM_RUNNER_PYTORCH"
    assert resolve_runner("vllm", env_wins).image == "env/vllm:1"


def test_importing_the_package_and_the_orchestrator_loads_no_docker_or_ml_framework() -> None:
    code = (
        "import sys, llenergymeasure, llenergymeasure.orchestrator.api, llenergymeasure.orchestrator.study.session, "
        "llenergymeasure.orchestrator.runners.docker, llenergymeasure.orchestrator.preflight; "
        "bad = [m for m in ('docker', 'torch', 'transformers', 'pynvml', 'huggingface_hub') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_study_being_run_cannot_be_resumed_twice(tmp_path: Path) -> None:
    from llenergymeasure.orchestrator.study.lock import StudyLock

    study = study_of(1, 2)
    flaky = ScriptedRunner(lambda r: ExperimentError("boom"))
    _local_study(tmp_path, study, flaky)  # leaves a failed (resumable) study
    study_dir = next((tmp_path / "out").iterdir())
    with StudyLock(study_dir), pytest.raises(StudyError, match="another llem process"):
        _local_study(tmp_path, study, ScriptedRunner(), resume=True)
    # once released (as when the holder dies), resuming works
    assert _local_study(tmp_path, study, ScriptedRunner(), resume=True).status == "completed"


# -- execution policy: library = CLI, and a resume runs as the study was started ---------------------------


def _unset_cycles_study() -> StudyConfig:
    """A study whose file would set no n_cycles (only gaps, so the unit tests do not sleep)."""
    from orch_factories import tiny_config

    from llenergymeasure.schemas.study import ExecutionConfig

    return StudyConfig(
        name="policy",
        experiments=[tiny_config(n=4), tiny_config(n=5)],
        execution=ExecutionConfig(config_gap_seconds=0, cycle_gap_seconds=0),
    )


def test_library_applies_the_cli_default_of_three_cycles(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    result = _local_study(tmp_path, _unset_cycles_study(), runner)
    # 2 experiments × 3 cycles (the default when the config sets none), not the model default of 1
    assert (result.runs_total, result.runs_completed) == (6, 6)
    assert sorted({r.job.context.cycle for r in runner.requests}) == [1, 2, 3]


def test_library_takes_gaps_from_the_user_config(tmp_path: Path) -> None:
    from llenergymeasure.schemas.study import ExecutionConfig

    study = _unset_cycles_study().model_copy(update={"execution": ExecutionConfig()})  # nothing set in the file
    user = _user(tmp_path, text="execution:\n  config_gap_seconds: 0\n  cycle_gap_seconds: 0\n")
    result = _local_study(tmp_path, study, ScriptedRunner(), n_cycles=1, user_config=user)
    manifest = StudyManifest.model_validate_json((Path(result.study_dir) / "manifest.json").read_text())
    # the model defaults are 60 s and 120 s: 0 and 0 can only come from the user config
    assert (manifest.execution.config_gap_seconds, manifest.execution.cycle_gap_seconds) == (0.0, 0.0)
    assert manifest.execution.n_cycles == 1


def test_resume_without_the_flag_keeps_the_cycles_the_study_started_with(tmp_path: Path) -> None:
    # started as `--cycles 4`, interrupted during cycle 3 of the first experiment
    stop = ScriptedRunner(lambda r: KeyboardInterrupt() if r.job.context.cycle == 3 else None)  # type: ignore[arg-type,return-value]
    with pytest.raises(KeyboardInterrupt):
        _local_study(tmp_path, _unset_cycles_study(), stop, n_cycles=4, cycle_order="sequential")
    runner = ScriptedRunner()
    result = _local_study(tmp_path, _unset_cycles_study(), runner, resume=True)
    # sequential order A1 A2 A3 A4 B1..B4: A1 and A2 were done, the 6 others remain — not 3 cycles' worth
    assert [(r.job.context.experiment_id[:3], r.job.context.cycle) for r in runner.requests] == [
        ("000", 3),
        ("000", 4),
        ("001", 1),
        ("001", 2),
        ("001", 3),
        ("001", 4),
    ]
    assert (result.status, result.runs_total, result.runs_completed) == ("completed", 8, 8)
    manifest = StudyManifest.model_validate_json((Path(result.study_dir) / "manifest.json").read_text())
    assert (manifest.execution.n_cycles, manifest.execution.cycle_order) == (4, "sequential")


def test_resume_with_a_contradicting_flag_is_a_config_error_naming_both_values(tmp_path: Path) -> None:
    from llenergymeasure.errors import ConfigError

    stop = ScriptedRunner(lambda r: KeyboardInterrupt() if r.job.context.cycle == 2 else None)  # type: ignore[arg-type,return-value]
    with pytest.raises(KeyboardInterrupt):
        _local_study(tmp_path, _unset_cycles_study(), stop, n_cycles=4)
    study_dir = next((tmp_path / "out").iterdir())
    before = (study_dir / "manifest.json").read_text()
    runner = ScriptedRunner()
    with pytest.raises(ConfigError) as info:
        _local_study(tmp_path, _unset_cycles_study(), runner, resume=True, n_cycles=2, cycle_order="interleaved")
    text = info.value.render()
    assert info.value.exit_code == 2
    assert "--cycles 2 asked" in text and "n_cycles = 4" in text
    assert "--order interleaved asked" in text and "cycle_order = sequential" in text
    assert "manifest.json" in text and "fix:" in text
    assert runner.requests == []
    assert (study_dir / "manifest.json").read_text() == before  # nothing was changed
    # the same value as recorded is no contradiction
    assert _local_study(tmp_path, _unset_cycles_study(), ScriptedRunner(), resume=True, n_cycles=4).runs_total == 8
