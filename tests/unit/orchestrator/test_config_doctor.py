"""``llem config`` runs pre-flight's own Docker probes (one NVIDIA-runtime rule, one image check)."""

from __future__ import annotations

from orch_fake_docker import FakeDockerClient

from llenergymeasure.orchestrator.cli.config_cmd import _docker_checks
from llenergymeasure.orchestrator.preflight import nvidia_runtime
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION


def test_nvidia_runtime_is_found_in_runtimes_default_runtime_or_hook() -> None:
    def no_hook(name: str) -> str | None:
        return None

    assert nvidia_runtime({"Runtimes": {"nvidia": {}}}, no_hook) == "runtime"
    assert nvidia_runtime({"Runtimes": {"runc": {}}, "DefaultRuntime": "nvidia"}, no_hook) == "runtime"
    assert nvidia_runtime({"Runtimes": {"runc": {}}}, lambda name: f"/usr/bin/{name}") == "hook"
    assert nvidia_runtime({"Runtimes": {"runc": {}}}, no_hook) is None


def test_config_reports_daemon_gpu_runtime_and_images_with_preflight_probes() -> None:
    client = FakeDockerClient(runtimes={"nvidia": {}, "runc": {}})
    client.add_image("img/pytorch", {PROTOCOL_LABEL: str(PROTOCOL_VERSION)})
    checks = {c.name: c for c in _docker_checks({"pytorch": "img/pytorch", "vllm": "img/missing"}, client)}
    assert checks["docker daemon"].ok
    assert checks["docker GPU runtime"].ok and checks["docker GPU runtime"].detail == "nvidia runtime registered"
    assert checks["image pytorch"].ok and f"protocol {PROTOCOL_VERSION}" in checks["image pytorch"].detail
    assert not checks["image vllm"].ok and "not present" in checks["image vllm"].detail


def test_config_reports_an_unreachable_daemon_with_the_fix() -> None:
    class Unreachable(FakeDockerClient):
        def info(self) -> dict[str, object]:
            import docker.errors

            raise docker.errors.DockerException("Error while fetching server API version")

    checks = _docker_checks({}, Unreachable())
    assert [(c.name, c.ok) for c in checks] == [("docker daemon", False)]
    assert "Error while fetching server API version" in checks[0].detail
    assert checks[0].fix is not None and "start Docker" in checks[0].fix
