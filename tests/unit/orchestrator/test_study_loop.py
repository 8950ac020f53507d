"""The study loop with a fake `Runner` of our own: order, isolation, circuit breaker, baseline reuse, Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_factories import T0, ScriptedRunner, study_of

from llenergymeasure.errors import ExperimentError, ExperimentFailure, StudyError
from llenergymeasure.orchestrator.runners.base import Runner, RunRequest
from llenergymeasure.orchestrator.study.baseline_cache import BaselineCache
from llenergymeasure.orchestrator.study.gaps import GapWaiter
from llenergymeasure.orchestrator.study.loop import LoopServices, StudyLoop
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.schemas.study import StudyConfig


def _loop(tmp_path: Path, study: StudyConfig, runner: Runner, **services: object) -> StudyLoop:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = ManifestStore.create(tmp_path, tmp_path.name, study)
    svc = LoopServices(
        runner_for=lambda backend: runner,
        device_ids_for=lambda cfg: [0],
        **{"baselines": BaselineCache(clock=lambda: T0), **services},  # type: ignore[arg-type]
    )
    return StudyLoop(study, tmp_path, store, svc)


def _key(r: RunRequest) -> tuple[str, int]:
    return r.job.context.experiment_id[:3], r.job.context.cycle


def test_runs_in_order_and_records_everything(tmp_path: Path) -> None:
    study = study_of(3, 2, cycle_order="interleaved")
    runner = ScriptedRunner()
    loop = _loop(tmp_path, study, runner)
    loop.run()
    assert [_key(r) for r in runner.requests] == [
        ("000", 1),
        ("001", 1),
        ("002", 1),
        ("000", 2),
        ("001", 2),
        ("002", 2),
    ]
    assert loop.store.manifest.status == "completed"
    assert all(e.status == "completed" and e.attempts == 1 for e in loop.store.entries())
    first = runner.requests[0]
    assert first.labels == {
        "llem.study_id": tmp_path.name,
        "llem.experiment_id": first.job.context.experiment_id,
        "llem.cycle": "1",
    }
    assert first.run_dir.parent == tmp_path
    assert first.run_dir.name.startswith("000_c1_tiny_pytorch_")
    assert first.wall_timeout_s == study.execution.experiment_timeout_seconds


def test_baseline_measured_once_is_passed_to_later_runs(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    _loop(tmp_path, study_of(2, 2), runner).run()
    cached = [r.job.context.cached_baseline for r in runner.requests]
    assert cached[0] is None
    assert all(c is not None and c.power_w == 40.0 and c.device_ids == [0] for c in cached[1:])


def test_baseline_cache_is_keyed_by_the_runner_environment_key(tmp_path: Path) -> None:
    shared = BaselineCache(clock=lambda: T0)
    first = ScriptedRunner(environment="env-a")
    _loop(tmp_path / "a", study_of(1, 1), first, baselines=shared).run()
    other_env = ScriptedRunner(environment="env-b")
    _loop(tmp_path / "b", study_of(1, 1), other_env, baselines=shared).run()
    same_env = ScriptedRunner(environment="env-a")
    _loop(tmp_path / "c", study_of(1, 1), same_env, baselines=shared).run()
    assert other_env.requests[0].job.context.cached_baseline is None  # another environment measures its own
    reused = same_env.requests[0].job.context.cached_baseline
    assert reused is not None and reused.power_w == 40.0


def test_failure_is_isolated(tmp_path: Path) -> None:
    def fail(r: RunRequest) -> Exception | None:
        if _key(r) == ("001", 1):
            return ExperimentError("boom", ExperimentFailure(exit_code=3, phase="load", error_type="BackendError"))
        return None

    runner = ScriptedRunner(fail)
    loop = _loop(tmp_path, study_of(3, 1), runner)
    loop.run()
    assert len(runner.requests) == 3
    statuses = [e.status for e in loop.store.entries()]
    assert statuses == ["completed", "failed", "completed"]
    failure = loop.store.entries()[1].failure
    assert failure is not None
    assert (failure.type, failure.exit_code, failure.phase) == ("BackendError", 3, "load")
    assert loop.store.manifest.status == "failed"  # not every run completed


def test_circuit_breaker_stops_after_n_consecutive_failures(tmp_path: Path) -> None:
    runner = ScriptedRunner(lambda r: ExperimentError("always", ExperimentFailure(exit_code=1)))
    loop = _loop(tmp_path, study_of(3, 2, max_consecutive_failures=2), runner)
    with pytest.raises(StudyError, match="2 consecutive failed runs"):
        loop.run()
    assert len(runner.requests) == 2
    assert loop.store.manifest.status == "failed"
    assert [e.status for e in loop.store.entries()] == ["failed", "failed", "pending", "pending", "pending", "pending"]


def test_a_success_resets_the_breaker(tmp_path: Path) -> None:
    runner = ScriptedRunner(lambda r: ExperimentError("x") if r.job.context.cycle == 1 else None)
    loop = _loop(tmp_path, study_of(3, 2, cycle_order="sequential", max_consecutive_failures=2), runner)
    loop.run()  # sequential: F S F S F S — never two failures in a row
    assert len(runner.requests) == 6


def test_ctrl_c_marks_run_pending_and_study_interrupted(tmp_path: Path) -> None:
    def fail(r: RunRequest) -> Exception | None:
        return KeyboardInterrupt() if _key(r) == ("001", 1) else None  # type: ignore[return-value]

    loop = _loop(tmp_path, study_of(3, 1), ScriptedRunner(fail))
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    entries = loop.store.entries()
    assert [e.status for e in entries] == ["completed", "pending", "pending"]
    assert entries[1].failure is not None
    assert entries[1].failure.type == "Interrupted"
    assert loop.store.manifest.status == "interrupted"


def test_ctrl_c_during_a_gap(tmp_path: Path) -> None:
    def sleep(s: float) -> None:
        raise KeyboardInterrupt

    loop = _loop(tmp_path, study_of(2, 1, config_gap_seconds=30), ScriptedRunner(), gaps=GapWaiter(sleep=sleep))
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert [e.status for e in loop.store.entries()] == ["completed", "pending"]
    assert loop.store.manifest.status == "interrupted"


def test_completed_runs_are_skipped(tmp_path: Path) -> None:
    study = study_of(2, 1)
    runner = ScriptedRunner()
    loop = _loop(tmp_path, study, runner)
    loop.store.mark_running(0, 1, "x")
    loop.store.mark_completed(0, 1)
    loop.run()
    assert [_key(r) for r in runner.requests] == [("001", 1)]


def test_gaps_between_runs_not_before_the_first(tmp_path: Path) -> None:
    waits: list[tuple[float, str]] = []

    class RecordingWaiter(GapWaiter):
        def wait(self, seconds: float, reason: str) -> None:
            waits.append((seconds, reason))

    study = study_of(2, 2, cycle_order="interleaved", config_gap_seconds=60, cycle_gap_seconds=300)
    _loop(tmp_path, study, ScriptedRunner(), gaps=RecordingWaiter()).run()
    assert waits == [(0.0, "first run"), (60.0, "config gap"), (300.0, "cycle gap"), (60.0, "config gap")]


def test_a_retried_run_starts_in_a_clean_directory(tmp_path: Path) -> None:
    study = study_of(1, 1)
    loop = _loop(tmp_path, study, ScriptedRunner())
    run_dir = loop.build_request(0, 1).run_dir
    run_dir.mkdir()
    (run_dir / "error.json").write_text("{}")
    loop.run()
    assert not (run_dir / "error.json").exists()
    assert (tmp_path / ".attempts" / run_dir.name / "attempt_1" / "error.json").is_file()
