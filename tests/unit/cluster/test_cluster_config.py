"""Cluster settings: runners.ray.address in the user config, execution.concurrency in a study, the head's plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestrator.cluster.prepare import plan_cluster
from llenergymeasure.orchestrator.loader import study_from_mapping
from llenergymeasure.orchestrator.user_config import load_user_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def _experiment() -> ExperimentConfig:
    return ExperimentConfig(model="org/tiny", precision="fp32")


def test_user_config_ray_address_is_read(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("runners:\n  ray:\n    address: ray://head:10001\n")
    assert load_user_config(env={"LLEM_CONFIG": str(cfg)}).config.runners.ray.address == "ray://head:10001"


def test_bad_user_config_ray_address_names_the_file_the_field_and_the_fix(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("runners:\n  ray:\n    address: http://head\n")
    with pytest.raises(ConfigError) as e:
        load_user_config(env={"LLEM_CONFIG": str(cfg)})
    text = e.value.render()
    assert e.value.exit_code == 2
    assert str(cfg) in text and "runners.ray.address" in text and "ray://host:port" in text


def test_concurrency_defaults_to_one_run_per_node() -> None:
    study = study_from_mapping({"model": "org/tiny", "experiments": [{"n": 1}]}, "<t>")
    assert study.execution.concurrency == "node"


def test_bad_concurrency_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        study_from_mapping(
            {"model": "org/tiny", "experiments": [{"n": 1}], "execution": {"concurrency": "gpu"}}, "study.yaml"
        )
    text = e.value.render()
    assert "execution.concurrency" in text and "device_set" in text


def test_cluster_plan_uses_the_image_override(tmp_path: Path) -> None:
    env = {"LLEM_CONFIG": str(tmp_path / "none.yaml"), "LLEM_IMAGE_PYTORCH": "my/pytorch:1"}
    (tmp_path / "none.yaml").write_text("{}\n")
    plan = plan_cluster([_experiment()], load_user_config(env=env), env)
    assert plan.images == {"pytorch": "my/pytorch:1"}


def test_cluster_plan_picks_the_gpu_image_for_a_head_without_gpus(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("{}\n")
    env = {"LLEM_CONFIG": str(tmp_path / "c.yaml")}
    plan = plan_cluster([_experiment()], load_user_config(env=env), env)
    assert plan.images["pytorch"].endswith(tuple(f"-cuda{m}" for m in range(10, 20)))


def test_a_local_runner_cannot_go_to_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("{}\n")
    env = {"LLEM_CONFIG": str(tmp_path / "c.yaml"), "LLEM_RUNNER_PYTORCH": "local"}
    with pytest.raises(ConfigError) as e:
        plan_cluster([_experiment()], load_user_config(env=env), env)
    text = e.value.render()
    assert "runners.pytorch" in text and "LLEM_RUNNER_PYTORCH" in text
