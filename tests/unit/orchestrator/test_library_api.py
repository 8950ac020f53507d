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


def test_keyword_fields_over_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # run_experiment(model="gpt2", n=20)
    assert experiment_config(None, {"model": "gpt2", "n": 20}) == ExperimentConfig(model="gpt2", n=20)
    # a local model as a Path or relative to the current directory, like the CLI's --model
    (tmp_path / "tiny").mkdir()
    monkeypatch.chdir(tmp_path)
    assert experiment_config(None, {"model": Path("tiny")}).model == str(tmp_path / "tiny")
    assert experiment_config(None, {"model": "./tiny"}).model == str(tmp_path / "tiny")


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


ROOT = Path(__file__).resolve().parents[3]


def test_each_documented_call_form_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call in the user guide's Python block, run as written (from the repository root) with this
    test's collaborators added: a scripted runner, no GPUs, an HF cache holding the hub models' configs."""
    from llenergymeasure import ExperimentConfig, run_study
    from llenergymeasure import run_experiment as public_run_experiment

    assert public_run_experiment is run_experiment  # the package exports the api function itself
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    readme = (ROOT / "README.md").read_text()
    hub = tmp_path / "hub"
    for repo in ("gpt2", "meta-llama/Llama-3.2-1B"):
        snapshot = hub / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc"
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")
    monkeypatch.chdir(ROOT)
    runner = ScriptedRunner()
    inject = {
        "runner": runner,
        "gpu_probe": NoGpus(),
        "user_config": load_user_config(env={}, path=tmp_path / "none.yaml"),
        "env": {"HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"},
    }
    out = {"output_dir": tmp_path / "out"}
    forms = {
        'run_experiment(model="gpt2", n=20)': lambda: run_experiment(model="gpt2", n=20, **out, **inject),
        'run_experiment("examples/experiment.yaml", n=5)': lambda: run_experiment(
            "examples/experiment.yaml", n=5, **out, **inject
        ),
        'run_experiment(ExperimentConfig(model="gpt2"), pytorch={"batch_size": 4})': lambda: run_experiment(
            ExperimentConfig(model="gpt2"), pytorch={"batch_size": 4}, **out, **inject
        ),
        'run_study("examples/study.yaml")': lambda: run_study(
            "examples/study.yaml", quiet=True, no_gaps=True, **out, **inject
        ),
        'run_study("examples/study.yaml", resume=True)': lambda: run_study(
            "examples/study.yaml", resume=True, quiet=True, no_gaps=True, **out, **inject
        ),
        'run_study("examples/study.yaml", n_cycles=1, no_gaps=True)': lambda: run_study(
            "examples/study.yaml", n_cycles=1, no_gaps=True, quiet=True, **out, **inject
        ),
    }
    results = {}
    for text, call in forms.items():
        assert text in guide, f"the user guide no longer shows {text}"
        if text == 'run_study("examples/study.yaml")':
            stop_at = len(runner.requests) + 5  # Ctrl-C during its 5th run, so the resume form has work left
            runner.fail = lambda r, n=stop_at: KeyboardInterrupt() if len(runner.requests) == n else None  # type: ignore[misc,return-value]
            with pytest.raises(KeyboardInterrupt):
                call()
            runner.fail = lambda r: None
            continue
        results[text] = call()
    assert 'run_experiment(model="gpt2", n=20)' in readme
    assert results['run_experiment(model="gpt2", n=20)'].config.n == 20
    from_file = results['run_experiment("examples/experiment.yaml", n=5)'].config
    assert (from_file.model, from_file.n, from_file.precision) == ("meta-llama/Llama-3.2-1B", 5, "bf16")
    merged = results['run_experiment(ExperimentConfig(model="gpt2"), pytorch={"batch_size": 4})'].config
    assert merged.pytorch is not None and merged.pytorch.batch_size == 4
    # examples/study.yaml: 6 grid points + 1 explicit entry, n_cycles 3 in the file → 21 runs; 4 done before Ctrl-C
    resumed = results['run_study("examples/study.yaml", resume=True)']
    assert (resumed.status, resumed.runs_total, resumed.runs_completed) == ("completed", 21, 21)
    assert results['run_study("examples/study.yaml", n_cycles=1, no_gaps=True)'].runs_total == 7
