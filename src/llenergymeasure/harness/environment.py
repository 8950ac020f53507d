"""The environment snapshot, taken inside the harness: software, GPUs, CPU, image.

CUDA version, first source that answers: torch's build (``torch.version.cuda``,
only if torch is already imported or importable) → ``/usr/local/cuda/version.json``
or ``version.txt`` → ``nvcc --version`` → none. ``pip freeze`` is read from
``importlib.metadata`` (no subprocess).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from llenergymeasure._version import __version__
from llenergymeasure.harness.energy.device import MeasuredDevice
from llenergymeasure.schemas.results import EnvironmentSnapshot, GPUInfo

logger = logging.getLogger(__name__)

CudaSource = Literal["torch", "version.txt", "nvcc", "none"]


def pip_freeze() -> list[str]:
    """``name==version`` of every installed distribution, sorted, de-duplicated."""
    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return [seen[k] for k in sorted(seen)]


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's model name from /proc/cpuinfo, else `platform.processor()`."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def torch_cuda_version() -> str | None:
    """``torch.version.cuda`` when torch is installed (None for a CPU build)."""
    torch = sys.modules.get("torch")
    if torch is None and importlib.util.find_spec("torch") is not None:
        import torch
    version = getattr(getattr(torch, "version", None), "cuda", None) if torch is not None else None
    return str(version) if version else None


def cuda_version(
    cuda_home: Path = Path("/usr/local/cuda"), torch_cuda: Callable[[], str | None] = torch_cuda_version
) -> tuple[str | None, CudaSource]:
    """The CUDA version and where it was read (see the module docstring for the order)."""
    version = torch_cuda()
    if version:
        return version, "torch"
    found = _cuda_from_files(cuda_home)
    if found:
        return found, "version.txt"
    nvcc = shutil.which("nvcc") or (str(cuda_home / "bin" / "nvcc") if (cuda_home / "bin" / "nvcc").exists() else None)
    if nvcc:
        try:
            out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        match = re.search(r"release (\d+\.\d+)", out)
        if match:
            return match.group(1), "nvcc"
    return None, "none"


def _cuda_from_files(cuda_home: Path) -> str | None:
    try:
        data = json.loads((cuda_home / "version.json").read_text())
        version = data.get("cuda", {}).get("version")
        if version:
            return str(version)
    except (OSError, ValueError, AttributeError):
        pass
    try:
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)", (cuda_home / "version.txt").read_text())
        return match.group(1) if match else None
    except OSError:
        return None


def gpu_info(devices: Sequence[MeasuredDevice]) -> list[GPUInfo]:
    out = []
    for d in devices:
        dev = d.device
        out.append(
            GPUInfo(
                index=d.host_index,
                name=dev.name,
                uuid=d.uuid,
                total_memory_mb=dev.memory_total_mb(),
                power_limit_w=dev.power_limit_w(),
                persistence_mode=dev.persistence_mode(),
                mig_mode=dev.mig_mode(),
            )
        )
    return out


def snapshot(
    *,
    backend_package: str | None,
    devices: Sequence[MeasuredDevice],
    driver_version: str | None,
    image: str | None,
) -> EnvironmentSnapshot:
    """Everything about the software and hardware this run used."""
    version, source = cuda_version()
    return EnvironmentSnapshot(
        llenergymeasure_version=__version__,
        python_version=platform.python_version(),
        platform=platform.platform(),
        cpu_model=cpu_model(),
        torch_version=package_version("torch"),
        transformers_version=package_version("transformers"),
        backend_version=package_version(backend_package) if backend_package else None,
        cuda_version=version,
        cuda_version_source=source,
        driver_version=driver_version,
        gpus=gpu_info(devices),
        image=image,
        pip_freeze=pip_freeze(),
    )
