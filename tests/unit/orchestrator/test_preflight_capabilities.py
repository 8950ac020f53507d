"""Pre-flight checks a config's needs against the image's capabilities label, and reports a broken NVML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from orch_factories import tiny_config
from orch_fake_docker import FakeDockerClient

from llenergymeasure._version import __version__
from llenergymeasure.errors import PreFlightError
from llenergymeasure.images import CAPABILITIES_LABEL
from llenergymeasure.orchestrator.cli import main
from llenergymeasure.orchestrator.preflight import HostServices, PreflightPlan, run_preflight
from llenergymeasure.orchestrator.runners.gpus import NoGpus, NvmlGpus, probe_nvml
from llenergymeasure.schemas.config.capabilities import required_capabilities
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION

IMAGE = "my/old-pytorch:1"


def _plan(tmp_path: Path, experiments: list[Any]) -> PreflightPlan:
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snap.mkdir(parents=True, exist_ok=True)
    (snap / "config.json").write_text("{}")
    return PreflightPlan(
        experiments=experiments,
        runner_kinds={"pytorch": "docker"},
        images={"pytorch": IMAGE},
        host_device_ids=[[] for _ in experiments],
        output_dir=tmp_path / "results",
        hf_cache_dir=tmp_path / "hub",
        cwd=tmp_path,
    )


def _client(capabilities: str | None) -> FakeDockerClient:
    client = FakeDockerClient()
    labels = {PROTOCOL_LABEL: str(PROTOCOL_VERSION)}
    if capabilities is not None:
        labels[CAPABILITIES_LABEL] = capabilities
    client.add_image(IMAGE, labels)
    return client


def test_required_capabilities_per_config_field() -> None:
    assert required_capabilities(tiny_config()) == {}
    assert required_capabilities(tiny_config(energy={"backend": "zeus"})) == {"zeus": "energy.backend: zeus"}
    assert set(required_capabilities(tiny_config(energy={"backend": "codecarbon"}))) == {"codecarbon"}
    assert set(required_capabilities(tiny_config(lora={"adapter": "org/adapter"}))) == {"peft"}
    quant = tiny_config(precision="fp16", pytorch={"load_in_4bit": True})
    assert required_capabilities(quant) == {"bitsandbytes": "pytorch.load_in_4bit"}
    flash = tiny_config(precision="bf16", pytorch={"attn_implementation": "flash_attention_2"})
    assert set(required_capabilities(flash)) == {"flash_attn"}
    # vLLM applies adapters natively: no peft needed
    assert required_capabilities(tiny_config(backend="vllm", precision="fp16", lora={"adapter": "org/a"})) == {}


def test_image_without_the_package_is_refused_with_the_image_that_has_it(tmp_path: Path) -> None:
    experiments = [
        tiny_config(energy={"backend": "zeus"}),
        tiny_config(precision="fp16", pytorch={"load_in_8bit": True}),
    ]
    with pytest.raises(PreFlightError) as info:
        run_preflight(_plan(tmp_path, experiments), HostServices(gpus=NoGpus(), docker_client=_client("codecarbon")))
    failures = info.value.failures
    assert [f.check for f in failures] == ["image capability", "image capability"]
    bnb, zeus = failures  # sorted by capability name
    assert "pytorch.load_in_8bit needs the bitsandbytes package" in bnb.message
    assert IMAGE in bnb.message
    assert f"llenergymeasure/pytorch:{__version__}-cuda12" in (bnb.fix or "")
    assert "energy.backend: zeus needs the zeus package" in zeus.message
    # every image carries zeus: the fix lists them all, GPU builds and the CPU image
    for ref in ("pytorch:" + __version__ + "-cuda12", "vllm:", "tensorrt:", "pytorch:" + __version__ + "-cpu"):
        assert ref in (zeus.fix or "")


def test_image_with_the_packages_passes_and_no_label_means_none(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [tiny_config(energy={"backend": "zeus"}, lora={"adapter": str(tmp_path)})])
    (tmp_path / "adapter_config.json").write_text("{}")
    run_preflight(plan, HostServices(gpus=NoGpus(), docker_client=_client("codecarbon,peft,zeus")))
    with pytest.raises(PreFlightError) as info:
        run_preflight(plan, HostServices(gpus=NoGpus(), docker_client=_client(None)))
    assert {f.check for f in info.value.failures} == {"image capability"}
    assert "label: none" in info.value.failures[0].message


def test_flash_attention_absent_everywhere_says_how_to_get_it(tmp_path: Path) -> None:
    config = tiny_config(precision="bf16", pytorch={"attn_implementation": "flash_attention_2"})
    with pytest.raises(PreFlightError) as info:
        run_preflight(_plan(tmp_path, [config]), HostServices(gpus=NoGpus(), docker_client=_client("zeus")))
    fix = info.value.failures[0].fix or ""
    assert "no published image carries it" in fix
    assert "llenergymeasure[flash-attn]" in fix


def test_flash_attention_2_refuses_fp32_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "flash.yaml"
    config.write_text("model: gpt2\nprecision: fp32\npytorch:\n  attn_implementation: flash_attention_2\n")
    assert main(["run", str(config), "--dry-run"]) == 2  # a config error, with the file named
    err = capsys.readouterr().err
    assert str(config) in err
    assert "flash_attention_2 runs fp16 or bf16 only, not fp32" in err
    assert "set precision: bf16" in err
    tiny_config(precision="fp32", pytorch={"attn_implementation": "sdpa"})  # other kernels run fp32


# ------------------------------------------------------------------ NVML that fails to initialise


class _NvmlFailing:
    """A pynvml module whose nvmlInit raises an error class of the given name, as the real one does."""

    def __init__(self, error_name: str | None, count: int = 1) -> None:
        self.error = type(error_name, (Exception,), {}) if error_name else None
        self.count = count

    def nvmlInit(self) -> None:
        if self.error is not None:
            raise self.error("Driver/library version mismatch")

    def nvmlDeviceGetCount(self) -> int:
        return self.count


def test_no_driver_library_is_a_cpu_host_but_a_failing_nvml_is_reported(tmp_path: Path) -> None:
    cpu = probe_nvml(_NvmlFailing("NVMLError_LibraryNotFound"))
    assert isinstance(cpu, NoGpus)
    assert cpu.nvml_error is None
    assert isinstance(probe_nvml(_NvmlFailing(None, count=2)), NvmlGpus)

    broken = probe_nvml(_NvmlFailing("NVMLError_LibRmVersionMismatch"))
    assert broken.device_count() == 0
    with pytest.raises(PreFlightError) as info:
        run_preflight(_plan(tmp_path, [tiny_config()]), HostServices(gpus=broken, docker_client=_client("")))
    (failure,) = info.value.failures
    assert failure.check == "gpus"
    assert "NVML fails to initialise (NVMLError_LibRmVersionMismatch: Driver/library version mismatch)" in (
        failure.message
    )
    assert "would run on CPU" in failure.message
    assert "permissions" in (failure.fix or "")
    no_permission = probe_nvml(_NvmlFailing("NVMLError_NoPermission"))
    assert "NoPermission" in (getattr(no_permission, "nvml_error", "") or "")
