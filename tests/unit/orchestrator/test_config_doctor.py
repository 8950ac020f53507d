"""``llem config`` runs pre-flight's own probes: Docker (one NVIDIA-runtime rule, one image check) and GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_fake_docker import FakeDockerClient

from llenergymeasure.images import gpu_variant, image_ref
from llenergymeasure.orchestrator.cli import main
from llenergymeasure.orchestrator.cli.config_cmd import _docker_checks, _docker_images, _gpu_checks
from llenergymeasure.orchestrator.preflight import nvidia_runtime
from llenergymeasure.orchestrator.runners.gpus import NoGpus, NvmlGpus, probe_gpus
from llenergymeasure.orchestrator.user_config import load_user_config
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR


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


class _FakeNvml:
    """Two devices, the driver answering as pynvml does (names as bytes on old bindings)."""

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes | str:
        return b"NVIDIA H100" if handle == 0 else "NVIDIA A100"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> object:
        return type("Mem", (), {"total": (80 if handle == 0 else 40) * 1024**3})()

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.65"


def test_config_gpu_section_reads_preflights_probe() -> None:
    checks, cuda_gpus = _gpu_checks(NvmlGpus(_FakeNvml()))
    assert [(c.name, c.ok, c.detail) for c in checks] == [
        ("NVIDIA driver", True, "580.65"),
        ("GPU 0", True, "NVIDIA H100 (80 GiB)"),
        ("GPU 1", True, "NVIDIA A100 (40 GiB)"),
    ]
    assert cuda_gpus == 2


def test_config_reports_nvml_that_fails_to_initialise_with_preflights_fix() -> None:
    checks, cuda_gpus = _gpu_checks(NoGpus(nvml_error="NVMLError_DriverNotLoaded: Driver Not Loaded"))
    assert cuda_gpus == 0
    (check,) = checks
    assert not check.ok and "NVML fails to initialise (NVMLError_DriverNotLoaded" in check.detail
    assert check.fix is not None and "nvidia-smi" in check.fix


def test_config_on_simulated_gpus_names_them_and_shows_the_cpu_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "gpus.json"
    spec.write_text('{"devices": [{"name": "Sim H100", "power": {"kind": "constant", "watts": 250}}]}')
    checks, cuda_gpus = _gpu_checks(probe_gpus({SIMULATE_GPUS_ENV_VAR: str(spec)}))
    assert cuda_gpus == 0  # simulated devices are not CUDA devices: the model runs on CPU
    assert checks[0].name == "simulated GPUs" and "0: Sim H100" in checks[0].detail

    user = load_user_config(env={}, path=tmp_path / "no-user-config.yaml")
    assert _docker_images(user, cuda_gpus)["pytorch"] == image_ref("pytorch", "cpu")
    assert _docker_images(user, 1)["pytorch"] == image_ref("pytorch", gpu_variant("pytorch"))

    monkeypatch.setenv(SIMULATE_GPUS_ENV_VAR, str(spec))
    monkeypatch.delenv("LLEM_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["config"]) == 0
    assert "simulated GPUs: LLEM_SIMULATE_GPUS: results are labelled simulated — 0: Sim H100" in capsys.readouterr().out
