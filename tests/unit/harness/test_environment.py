"""The environment snapshot's sources: CUDA version files, /proc/cpuinfo, installed packages, GPUs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from harness_fakes import FakeClock, FakeNvmlDevice, PowerTrace, measured

from llenergymeasure.harness import environment
from llenergymeasure.harness.environment import cpu_model, gpu_info, pip_freeze, snapshot


def no_torch_cuda() -> str | None:
    return None


def test_cuda_version_from_torch_first(tmp_path: Path) -> None:
    (tmp_path / "version.txt").write_text("CUDA Version 11.8.89\n")
    assert environment.cuda_version(tmp_path, torch_cuda=lambda: "12.8") == ("12.8", "torch")


def test_cuda_version_from_version_json_then_txt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvcc on PATH
    (tmp_path / "version.json").write_text('{"cuda": {"name": "CUDA SDK", "version": "12.4.1"}}')
    assert environment.cuda_version(tmp_path, torch_cuda=no_torch_cuda) == ("12.4.1", "version.txt")
    (tmp_path / "version.json").unlink()
    (tmp_path / "version.txt").write_text("CUDA Version 11.8.89\n")
    assert environment.cuda_version(tmp_path, torch_cuda=no_torch_cuda) == ("11.8.89", "version.txt")
    (tmp_path / "version.txt").unlink()
    assert environment.cuda_version(tmp_path, torch_cuda=no_torch_cuda) == (None, "none")


def test_cuda_version_from_nvcc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nvcc = tmp_path / "bin" / "nvcc"
    nvcc.parent.mkdir()
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.6, V12.6.77'\n")
    nvcc.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert environment.cuda_version(tmp_path, torch_cuda=no_torch_cuda) == ("12.6", "nvcc")


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n")
    assert cpu_model(info) == "Intel(R) Xeon(R) Platinum 8480+"


def test_pip_freeze_lists_installed_distributions() -> None:
    frozen = pip_freeze()
    names = {line.split("==")[0].lower() for line in frozen}
    assert {"pydantic", "torch", "transformers", "llenergymeasure"} <= names
    assert frozen == sorted(frozen, key=lambda line: line.split("==")[0].lower())


def test_gpu_info_and_snapshot(clock: FakeClock) -> None:
    devices = measured([FakeNvmlDevice(PowerTrace(((0.0, 1.0),)), clock, uuid="GPU-x", persistence=False)], 2)
    (gpu,) = gpu_info(devices)
    assert (gpu.index, gpu.uuid, gpu.name, gpu.power_limit_w, gpu.persistence_mode, gpu.mig_mode) == (
        2,
        "GPU-x",
        "Fake GPU",
        700.0,
        False,
        False,
    )
    snap = snapshot(backend_package="torch", devices=devices, driver_version="550.1", image="llenergymeasure/pytorch:x")
    assert snap.python_version == ".".join(map(str, sys.version_info[:3]))
    assert (snap.image, snap.driver_version, snap.backend_version) == (
        "llenergymeasure/pytorch:x",
        "550.1",
        snap.torch_version,
    )
