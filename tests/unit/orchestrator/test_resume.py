"""Finding the study to resume, and adopting results written just before a crash."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from orch_factories import T0, make_result, study_of

from llenergymeasure.errors import StudyError
from llenergymeasure.orchestrator.study.layout import run_dir_name
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.orchestrator.study.resume import adopt_finished_runs, find_resumable, require_resumable
from llenergymeasure.schemas.job import ExperimentJob, RunContext


def _study_dir(root: Path, name: str, study, status: str = "running", minutes: int = 0) -> ManifestStore:  # type: ignore[no-untyped-def]
    d = root / name
    d.mkdir(parents=True)
    store = ManifestStore.create(d, name, study, clock=lambda: T0 + timedelta(minutes=minutes))
    store.set_status(status)  # type: ignore[arg-type]
    return store


def test_latest_unfinished_study_with_the_same_design_wins(tmp_path: Path) -> None:
    study, other = study_of(2, 1), study_of(3, 1)
    _study_dir(tmp_path, "a_old", study, "interrupted", minutes=1)
    _study_dir(tmp_path, "b_newer", study, "failed", minutes=5)
    _study_dir(tmp_path, "c_done", study, "completed", minutes=9)
    _study_dir(tmp_path, "d_other", other, "interrupted", minutes=10)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "manifest.json").write_text("not json")
    assert find_resumable(tmp_path, study.study_design_hash) == tmp_path / "b_newer"
    assert find_resumable(tmp_path / "a_old", study.study_design_hash) == tmp_path / "a_old"  # a study dir itself
    assert find_resumable(tmp_path / "absent", study.study_design_hash) is None
    with pytest.raises(StudyError, match="nothing to resume"):
        require_resumable(tmp_path / "c_done", study.study_design_hash)


def test_a_valid_result_of_a_running_entry_is_adopted(tmp_path: Path) -> None:
    study = study_of(2, 1)
    store = _study_dir(tmp_path, "s", study)
    d = tmp_path / "s"
    cfg0 = study.experiments[0]
    entry0 = store.entry(0, 1)
    # run 0: host died after the container wrote its result
    store.mark_running(0, 1, run_dir_name(0, 1, cfg0))
    (d / run_dir_name(0, 1, cfg0)).mkdir()
    job0 = ExperimentJob(config=cfg0, context=RunContext(study_id="s", experiment_id=entry0.experiment_id, cycle=1))
    (d / run_dir_name(0, 1, cfg0) / "result.json").write_text(make_result(job0).model_dump_json())
    # run 1: host died mid-run, the result file is torn
    cfg1 = study.experiments[1]
    store.mark_running(1, 1, run_dir_name(1, 1, cfg1))
    (d / run_dir_name(1, 1, cfg1)).mkdir()
    (d / run_dir_name(1, 1, cfg1) / "result.json").write_text('{"schema_version": "2.0", "experi')
    assert adopt_finished_runs(store, d) == [(0, 1)]
    assert [e.status for e in ManifestStore.load(d / "manifest.json").entries()] == ["completed", "running"]


def test_a_result_of_another_cycle_is_not_adopted(tmp_path: Path) -> None:
    study = study_of(1, 2)
    store = _study_dir(tmp_path, "s", study)
    d = tmp_path / "s"
    cfg = study.experiments[0]
    store.mark_running(0, 2, "run")
    (d / "run").mkdir()
    job = ExperimentJob(config=cfg, context=RunContext(experiment_id=store.entry(0, 2).experiment_id, cycle=1))
    (d / "run" / "result.json").write_text(make_result(job).model_dump_json())
    assert adopt_finished_runs(store, d) == []
