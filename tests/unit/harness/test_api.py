"""`run_experiment`'s small helpers: config coercion, run directory naming (never overwrite)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from llenergymeasure.orchestrator.api import as_experiment_config, unique_run_dir
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def test_config_from_object_dict_and_yaml(tmp_path: Path) -> None:
    cfg = ExperimentConfig(model="org/m", n=3)
    assert as_experiment_config(cfg) is cfg
    assert as_experiment_config({"model": "org/m", "n": 3}) == cfg
    path = tmp_path / "exp.yaml"
    path.write_text("model: org/m\nn: 3\n")
    assert as_experiment_config(path) == cfg
    assert as_experiment_config(str(path)) == cfg
    with pytest.raises(ValidationError):  # built from Python values: pydantic's error, unchanged
        as_experiment_config({"model": "org/m", "n": 0})
    with pytest.raises(TypeError):
        as_experiment_config(42)  # type: ignore[arg-type]


def test_unique_run_dir_never_reuses_a_directory(tmp_path: Path) -> None:
    first = unique_run_dir(tmp_path / "out", "m_pytorch_abcd1234")
    second = unique_run_dir(tmp_path / "out", "m_pytorch_abcd1234")
    third = unique_run_dir(tmp_path / "out", "m_pytorch_abcd1234")
    assert [p.name for p in (first, second, third)] == [
        "m_pytorch_abcd1234",
        "m_pytorch_abcd1234_1",
        "m_pytorch_abcd1234_2",
    ]
    assert all(p.is_dir() for p in (first, second, third))
