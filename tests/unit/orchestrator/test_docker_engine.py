"""`DockerEngine`: the one wrapper of Docker SDK calls, over our fake SDK client."""

from __future__ import annotations

from orch_fake_docker import FakeDockerClient

from llenergymeasure.orchestrator.runners.docker_engine import DockerEngine, engine_of


def test_engine_reads_image_labels_and_info_through_the_sdk_client() -> None:
    client = FakeDockerClient(runtimes={"nvidia": {}})
    client.add_image("img:1", {"io.llenergymeasure.protocol": "1"})
    engine = DockerEngine(client)
    assert engine.image_labels("img:1") == {"io.llenergymeasure.protocol": "1"}
    assert "nvidia" in engine.info()["Runtimes"]


def test_engine_of_wraps_a_client_once() -> None:
    engine = engine_of(FakeDockerClient())
    assert engine_of(engine) is engine
