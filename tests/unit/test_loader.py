"""Loader: auto-detection, relative paths, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestrator.loader import load_config, load_experiment_config, load_study_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.study import StudyConfig


def test_auto_detects_experiment_and_study(tmp_path: Path) -> None:
    exp = tmp_path / "e.yaml"
    exp.write_text("model: gpt2\n")
    study = tmp_path / "s.yaml"
    study.write_text("model: gpt2\nsweep:\n  n: [1, 2]\n")
    assert isinstance(load_config(exp), ExperimentConfig)
    loaded = load_config(study)
    assert isinstance(loaded, StudyConfig) and len(loaded.experiments) == 2
    with pytest.raises(ConfigError, match="study file"):
        load_experiment_config(study)


def test_relative_paths_resolve_against_the_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "s.yaml").write_text("model: ../models/tiny\ndataset: data/p.jsonl\nexperiments: [{}, {model: gpt2}]\n")
    monkeypatch.chdir("/")
    a, b = load_study_config(conf / "s.yaml").experiments
    assert a.model == str(tmp_path / "models" / "tiny")
    assert a.dataset == str(conf / "data" / "p.jsonl")
    assert b.model == "gpt2"  # a hub id stays a hub id


def test_cli_override_paths_resolve_against_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "here").mkdir()
    (tmp_path / "s.yaml").write_text("model: gpt2\nsweep:\n  precision: [fp16, bf16]\n")
    monkeypatch.chdir(tmp_path / "here")
    study = load_study_config(tmp_path / "s.yaml", {"model": "./m", "n": 4, "pytorch.batch_size": 2})
    assert {e.model for e in study.experiments} == {str(tmp_path / "here" / "m")}
    assert all(e.n == 4 and e.pytorch and e.pytorch.batch_size == 2 for e in study.experiments)


def test_experiment_file_with_execution_section(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("name: one\nmodel: gpt2\nexecution:\n  n_cycles: 2\n  cycle_gap_seconds: 5\n")
    study = load_study_config(f)
    assert study.name == "one" and len(study.experiments) == 1
    assert study.execution.n_cycles == 2 and study.execution.cycle_gap_seconds == 5
