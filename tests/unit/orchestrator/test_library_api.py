"""The library API as the CLI's equal: config forms, errors by input, options apart from fields, pre-flight."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_factories import ScriptedRunner
from pydantic import ValidationError

from llenergymeasure.errors import ConfigError, PreFlightError
from llenergymeasure.orchestrator.api import experiment_config, run_experiment
from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.orchestrator.user_config import load_user_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def test_keyword_fields_over_the_defaults() -> None:
    # run_experiment(model="gpt2", n=20)
    assert experiment_config(None, {"model": "gpt2", "n": 20}) == ExperimentConfig(model="gpt2", n=20)


def test_keyword_fields_over_a_file_merge_into_sections(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("model: org/m\nn: 50\nprecision: fp32\npytorch:\n  batch_size: 2\n  attn_implementation: sdpa\n")
    # run_experiment("exp.yaml", n=5, pytorch={"batch_size": 4})
    cfg = experiment_config(path, {"n": 5, "pytorch": {"batch_size": 4}})
    assert (cfg.model, cfg.n, cfg.precision) == ("org/m", 5, "fp32")
    assert cfg.pytorch is not None
    assert (cfg.pytorch.batch_size, cfg.pytorch.attn_implementation) == (4, "sdpa")  # merged, not replaced
    over_object = experiment_config(ExperimentConfig(model="org/m", n=50), {"n": 7})
    assert (over_object.model, over_object.n) == ("org/m", 7)


def test_errors_keep_the_shape_of_their_input(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("model: org/m\nn: 0\n")
    with pytest.raises(ConfigError) as from_file:  # a file: file, line and fix
        experiment_config(path, {})
    text = from_file.value.render()
    assert f"{path}:2" in text and "n" in text
    good = tmp_path / "good.yaml"
    good.write_text("model: org/m\n")
    with pytest.raises(ValidationError) as from_python:  # a bad Python value over a good file
        experiment_config(good, {"n": -1})
    assert from_python.value.errors()[0]["loc"] == ("n",)
    with pytest.raises(ValidationError):
        experiment_config(None, {"modle": "gpt2"})  # a typo'd keyword is an unknown field (extra="forbid")


def test_options_cannot_collide_with_config_fields() -> None:
    import inspect

    params = inspect.signature(run_experiment).parameters
    options = {name for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert "output_dir" in options and "runner" in options
    assert options.isdisjoint(ExperimentConfig.model_fields), options & set(ExperimentConfig.model_fields)
    assert params["config"].kind is inspect.Parameter.POSITIONAL_ONLY


def test_run_experiment_runs_the_host_preflight(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    common = {
        "runner": runner,
        "gpu_probe": NoGpus(),
        "user_config": load_user_config(env={}, path=tmp_path / "none.yaml"),
        "env": {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"},
    }
    with pytest.raises(PreFlightError) as info:  # org/tiny is not cached and offline: caught before any run
        run_experiment(model="org/tiny", n=2, **common)  # type: ignore[arg-type]
    assert [f.check for f in info.value.failures] == ["model"]
    assert runner.requests == []
    result = run_experiment(model="org/tiny", n=2, skip_preflight=True, output_dir=tmp_path / "out", **common)  # type: ignore[arg-type]
    assert (result.n_prompts, len(runner.requests)) == (2, 1)
