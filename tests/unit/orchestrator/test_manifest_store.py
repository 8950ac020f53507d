"""Manifest transitions, each followed by an atomic write; reconciliation on resume."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from orch_factories import study_of

from llenergymeasure.errors import StudyError
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.schemas.manifest import RunFailure, StudyManifest
from llenergymeasure.schemas.study import ExecutionConfig


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _on_disk(store: ManifestStore) -> StudyManifest:
    return StudyManifest.model_validate_json(store.path.read_text())


def test_create_plans_every_run_in_execution_order(tmp_path: Path) -> None:
    study = study_of(3, 2, cycle_order="interleaved")
    store = ManifestStore.create(tmp_path, "sid", study, Clock())
    m = _on_disk(store)
    assert [(e.index, e.cycle) for e in m.entries] == [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)]
    assert all(e.status == "pending" for e in m.entries)
    assert m.study_design_hash == study.study_design_hash
    assert m.status == "running"


def test_every_transition_is_on_disk_at_once(tmp_path: Path) -> None:
    store = ManifestStore.create(tmp_path, "sid", study_of(2, 1), Clock())
    store.mark_running(0, 1, "000_c1_x")
    e = _on_disk(store).entries[0]
    assert (e.status, e.run_dir, e.attempts) == ("running", "000_c1_x", 1)
    store.mark_failed(0, 1, RunFailure(type="ExperimentError", message="boom", exit_code=1))
    e = _on_disk(store).entries[0]
    assert e.status == "failed"
    assert e.failure is not None
    assert e.failure.exit_code == 1
    store.mark_running(0, 1, "000_c1_x")
    store.mark_completed(0, 1)
    e = _on_disk(store).entries[0]
    assert (e.status, e.attempts, e.failure) == ("completed", 2, None)
    store.mark_running(1, 1, "001_c1_x")
    store.mark_interrupted(1, 1)
    e = _on_disk(store).entries[1]
    assert e.status == "pending"
    assert e.failure is not None
    assert e.failure.type == "Interrupted"
    store.set_status("interrupted")
    assert _on_disk(store).status == "interrupted"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp files left


def test_reconcile_keeps_known_state_and_adds_new_cycles(tmp_path: Path) -> None:
    study = study_of(2, 1)
    store = ManifestStore.create(tmp_path, "sid", study, Clock())
    store.mark_running(0, 1, "000_c1_x")
    store.mark_completed(0, 1)
    more = study.model_copy(
        update={"execution": ExecutionConfig(n_cycles=2, config_gap_seconds=0, cycle_gap_seconds=0)}
    )
    reloaded = ManifestStore.load(store.path)
    reloaded.reconcile(more)
    entries = {(e.index, e.cycle): e.status for e in _on_disk(reloaded).entries}
    assert entries == {(0, 1): "completed", (0, 2): "pending", (1, 1): "pending", (1, 2): "pending"}


def test_reconcile_refuses_another_design(tmp_path: Path) -> None:
    store = ManifestStore.create(tmp_path, "sid", study_of(2, 1), Clock())
    with pytest.raises(StudyError, match="design hash"):
        store.reconcile(study_of(3, 1))


def test_load_reports_a_corrupt_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": "2.0"}))
    with pytest.raises(StudyError, match="cannot read the manifest"):
        ManifestStore.load(tmp_path / "manifest.json")
