"""The result and study-result field names the requirements state, and what they hold."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.synthetic_study import write_study
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.results import NVML_ACCURACY_NOTE, ExperimentResult
from llenergymeasure.schemas.study_result import StudyResult
from unit.orchestrator.orch_factories import make_result, tiny_config


def test_result_field_names() -> None:
    fields = set(ExperimentResult.model_fields)
    assert {"measurement_warnings", "environment_snapshot", "energy_per_device_j", "warmup_excluded_samples"} <= fields
    assert not {"warnings", "environment"} & fields


def test_reproducibility_notes_always_start_with_the_nvml_disclaimer() -> None:
    job = ExperimentJob(config=tiny_config(), context=RunContext(experiment_id="000-x"))
    plain = make_result(job)
    assert plain.reproducibility_notes == [NVML_ACCURACY_NOTE]
    noted = plain.model_copy(update={"reproducibility_notes": ["tf32 on"]})
    revalidated = ExperimentResult.model_validate(noted.model_dump())
    assert revalidated.reproducibility_notes == [NVML_ACCURACY_NOTE, "tf32 on"]
    assert "±5 %" in NVML_ACCURACY_NOTE


def test_study_result_has_protocol_and_summary(tmp_path: Path) -> None:
    study_dir = write_study(tmp_path, n_cycles=2)
    doc = json.loads((study_dir / "study_result.json").read_text())
    result = StudyResult.model_validate(doc)
    protocol = result.measurement_protocol
    assert protocol is not None
    assert (protocol.n_cycles, protocol.cycle_order, protocol.config_gap_seconds) == (2, "sequential", 0.0)
    assert len(protocol.warmup) == 1 and len(protocol.baseline) == 1  # every experiment shares them
    assert len(result.summary.configurations) == 4
    assert result.summary.cv_warning_threshold == 0.05
    # (200 + 400/b)·(1 ± 0.01) over two cycles: 0.99 and 1.0 → CV 0.7 % < 5 %: no warning
    assert result.summary.warnings == []
