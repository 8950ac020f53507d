"""Study directory naming and setting aside earlier attempts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from orch_factories import tiny_config

from llenergymeasure.orchestrator.study.layout import (
    ATTEMPTS_DIR,
    create_study_dir,
    experiment_id,
    run_dir_name,
    set_aside_previous_attempt,
)

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def test_study_dir_name_and_collisions(tmp_path: Path) -> None:
    first = create_study_dir(tmp_path, "Batch vs Precision!", NOW)
    second = create_study_dir(tmp_path, "Batch vs Precision!", NOW)
    third = create_study_dir(tmp_path, "Batch vs Precision!", NOW)
    assert first.name == "batch-vs-precision_20250304T050607Z"
    assert second.name == first.name + "_1"
    assert third.name == first.name + "_2"
    assert all(p.is_dir() for p in (first, second, third))


def test_run_dir_name_and_experiment_id() -> None:
    cfg = tiny_config(model="/data/models/Tiny_Llama/")
    h = cfg.measurement_config_hash()
    assert run_dir_name(7, 2, cfg) == f"007_c2_tiny-llama_pytorch_{h[:8]}"
    assert experiment_id(7, cfg) == f"007-{h[:8]}"


def test_previous_attempt_is_set_aside(tmp_path: Path) -> None:
    run = tmp_path / "000_c1_x"
    run.mkdir()
    assert set_aside_previous_attempt(tmp_path, run) is None  # empty: nothing to keep
    (run / "error.json").write_text("{}")
    moved = set_aside_previous_attempt(tmp_path, run)
    assert moved == tmp_path / ATTEMPTS_DIR / "000_c1_x" / "attempt_1"
    assert (moved / "error.json").is_file()
    assert run.is_dir()
    assert not any(run.iterdir())
    (run / "harness.log").write_text("again")
    assert set_aside_previous_attempt(tmp_path, run) == tmp_path / ATTEMPTS_DIR / "000_c1_x" / "attempt_2"
