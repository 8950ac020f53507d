"""User config: missing file = defaults; env > file > default; errors name the variable or the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestrator.user_config import load_user_config


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    # the default location (no LLEM_CONFIG) may hold no file: defaults
    eff = load_user_config(env={}, path=tmp_path / "none.yaml")
    assert not eff.file_found
    assert eff.runner_for("pytorch") == "docker"
    assert eff.image_for("pytorch", "cpu") == "llenergymeasure/pytorch:2.0.0-cpu"
    assert eff.config.measurement.datacenter_pue == 1.0
    assert eff.source_of("runners.pytorch") == "default"


def test_env_beats_file_beats_default(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "runners:\n  pytorch: local\n  vllm: local\n  images:\n    vllm: my/vllm:1\n"
        "measurement:\n  datacenter_pue: 1.2\noutput:\n  results_dir: /data/r\n"
    )
    env = {
        "LLEM_CONFIG": str(cfg),
        "LLEM_RUNNER_VLLM": "docker",
        "LLEM_IMAGE_TENSORRT": "my/trt:2",
        "LLEM_DATACENTER_PUE": "1.5",
        "LLEM_CARBON_INTENSITY": "300",
        "LLEM_NO_PROMPT": "1",
    }
    eff = load_user_config(env=env)
    assert eff.file_found
    assert eff.runner_for("pytorch") == "local" and eff.source_of("runners.pytorch") == f"file:{cfg}"
    assert eff.runner_for("vllm") == "docker" and eff.source_of("runners.vllm") == "env:LLEM_RUNNER_VLLM"
    assert eff.runner_for("tensorrt") == "docker" and eff.source_of("runners.tensorrt") == "default"
    assert eff.image_for("vllm", "cuda12") == "my/vllm:1"
    assert eff.image_for("tensorrt", "cuda12") == "my/trt:2"
    assert eff.config.measurement.datacenter_pue == 1.5
    assert eff.config.measurement.carbon_intensity_gco2_per_kwh == 300.0
    assert eff.config.execution.no_prompt is True
    assert eff.config.output.results_dir == "/data/r"


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_user_config(env={"LLEM_RUNNER_PYTORCH": "kubernetes"}, path=tmp_path / "x.yaml")
    text = info.value.render()
    assert "runners.pytorch" in text and "LLEM_RUNNER_PYTORCH" in text and "fix:" in text


def test_bad_file_names_the_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("runners:\n  pytroch: local\n")
    with pytest.raises(ConfigError) as info:
        load_user_config(env={"LLEM_CONFIG": str(cfg)})
    text = info.value.render()
    assert str(cfg) in text and "runners.pytroch" in text and "did you mean 'pytorch'" in text
