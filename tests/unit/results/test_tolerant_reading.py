"""Readers accept any 2.x file and ignore unknown fields (one warning); a 3.x file is refused."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from llenergymeasure.errors import ExperimentError, StudyError
from llenergymeasure.orchestrator.runners.collect import read_result
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.reading import SchemaVersionError, read_json_tolerant
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study_result import StudyResult
from unit.orchestrator.orch_factories import make_result, study_of, tiny_config


def _result_dict() -> dict[str, object]:
    job = ExperimentJob(config=tiny_config(), context=RunContext(experiment_id="000-x", cycle=1))
    return json.loads(make_result(job, energy_j=50.0).model_dump_json())


def test_a_2_1_result_with_new_fields_loads_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = _result_dict()
    data["schema_version"] = "2.1"
    data["future_top_level"] = {"x": 1}
    data["energy"]["future_nested"] = 3  # type: ignore[index]
    data["config"]["future_config_field"] = True  # type: ignore[index]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        result = read_json_tolerant(ExperimentResult, path)
    assert result.energy_total_j == 50.0
    assert result.schema_version == "2.0"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "future_top_level" in message
    assert "energy.future_nested" in message
    assert "config.future_config_field" in message
    assert "2.1" in message
    # the host's result reader is the same tolerant reader
    assert read_result(path).energy_total_j == 50.0


def test_a_3_0_result_is_refused_clearly(tmp_path: Path) -> None:
    data = _result_dict()
    data["schema_version"] = "3.0"
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaVersionError, match=r"schema version 3\.0; this llenergymeasure reads 2\.x") as info:
        read_json_tolerant(ExperimentResult, path)
    assert info.value.exit_code == 2
    with pytest.raises(ExperimentError, match="same llenergymeasure version"):
        read_result(path)


def test_an_invalid_known_field_still_fails(tmp_path: Path) -> None:
    data = _result_dict()
    data["output_tokens"] = -1
    data["unknown"] = 1
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="output_tokens"):
        read_json_tolerant(ExperimentResult, path)


def test_writers_stay_strict() -> None:
    data = _result_dict()
    data["unknown"] = 1
    with pytest.raises(ValueError, match="unknown"):
        ExperimentResult.model_validate(data)


def test_manifest_2_x_loads_and_3_x_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = ManifestStore.create(tmp_path, "s", study_of(1, 1))
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_version"] = "2.4"
    data["entries"][0]["future"] = "x"
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        loaded = ManifestStore.load(path)
    assert loaded.manifest.study_id == store.manifest.study_id
    assert sum("entries.0.future" in r.getMessage() for r in caplog.records) == 1
    data["schema_version"] = "3.0"
    path.write_text(json.dumps(data))
    with pytest.raises(StudyError, match=r"schema version 3\.0"):
        ManifestStore.load(path)


def test_study_result_2_x_with_unknown_summary_field(tmp_path: Path) -> None:
    doc = {
        "schema_version": "2.7",
        "study_id": "s",
        "name": "s",
        "study_design_hash": "0" * 16,
        "protocol_version": 1,
        "status": "completed",
        "study_dir": str(tmp_path),
        "started_at": "2025-01-01T00:00:00Z",
        "runs_total": 0,
        "runs_completed": 0,
        "runs_failed": 0,
        "brand_new": [1, 2],
    }
    path = tmp_path / "study_result.json"
    path.write_text(json.dumps(doc))
    assert read_json_tolerant(StudyResult, path).study_id == "s"
