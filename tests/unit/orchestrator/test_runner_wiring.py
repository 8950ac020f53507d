"""Runner wiring (`runners.factory.wire_runners`): given runners, what the host asks of them through `Runner`."""

from __future__ import annotations

import pytest
from orch_factories import ScriptedRunner

from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestrator.runners.base import PreflightNeeds, RunDeadlines
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.factory import wire_runners
from llenergymeasure.orchestrator.runners.local import LocalRunner
from llenergymeasure.orchestrator.user_config import load_user_config


class ReapingRunner(ScriptedRunner):
    def __init__(self) -> None:
        super().__init__()
        self.reaped = 0

    def reap(self) -> list[str]:
        self.reaped += 1
        return [f"orphan-{self.reaped}"]

    def preflight_needs(self, backend: str) -> PreflightNeeds:
        return PreflightNeeds(image=f"img/{backend}", engine="engine")


def test_one_given_runner_serves_every_backend_and_reaps_once() -> None:
    runner = ReapingRunner()
    wired = wire_runners(
        ["pytorch", "vllm"], given=runner, user=load_user_config({}), cuda_gpu_count=0, docker_options=DockerOptions()
    )
    assert wired.runner_for("vllm") is runner
    assert wired.kinds == {"pytorch": "local", "vllm": "local"}
    assert wired.images() == {"pytorch": "img/pytorch", "vllm": "img/vllm"}
    assert wired.engine() == "engine"
    assert wired.reap() == ["orphan-1"]
    assert runner.reaped == 1


def test_a_runner_without_images_needs_no_preflight_image_and_reaps_nothing() -> None:
    wired = wire_runners(
        ["pytorch"], given=LocalRunner(), user=load_user_config({}), cuda_gpu_count=0, docker_options=DockerOptions()
    )
    assert wired.images() == {}
    assert wired.engine() is None
    assert wired.reap() == []


def test_a_backend_without_a_given_runner_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no runner given"):
        wire_runners(
            ["pytorch", "vllm"],
            given={"pytorch": LocalRunner()},
            user=load_user_config({}),
            cuda_gpu_count=0,
            docker_options=DockerOptions(),
        )


def test_local_runner_environment_key_names_the_interpreter() -> None:
    a, b = LocalRunner(python="/opt/a/python"), LocalRunner(python="/opt/b/python")
    assert a.environment_key("pytorch") != b.environment_key("pytorch")
    assert "/opt/a/python" in a.environment_key("pytorch")
    assert "/opt/a/python" in a.label("pytorch")


def test_docker_runner_environment_key_is_the_image_and_preflight_needs_its_client() -> None:
    client = object()
    runner = DockerRunner(client, {"pytorch": "llenergymeasure/pytorch:x"}, host_env={})
    assert runner.environment_key("pytorch") == "llenergymeasure/pytorch:x"
    assert "llenergymeasure/pytorch:x" in runner.label("pytorch")
    assert runner.preflight_needs("pytorch") == PreflightNeeds(image="llenergymeasure/pytorch:x", engine=client)


def test_run_deadlines_say_which_deadline_passed_and_how_long_to_wait() -> None:
    d = RunDeadlines(started_at=100.0, wall_timeout_s=60.0, silence_timeout_s=10.0)
    assert d.expired(105.0, last_activity_at=104.0) is None
    assert d.wait_s(105.0, last_activity_at=104.0) == 9.0
    assert d.expired(114.0, last_activity_at=104.0) == "silence"
    assert d.expired(160.0, last_activity_at=159.0) == "wall_clock"  # wall clock first, however chatty
    assert d.wait_s(200.0, last_activity_at=104.0) == 0.0
