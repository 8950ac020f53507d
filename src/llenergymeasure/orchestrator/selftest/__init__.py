"""Validation of a GPU host: ``llem self-test --gpu`` and ``make gpu-check``.

The first step of every GPU check is `require_visible_gpu`: on a host where NVML
sees no NVIDIA GPU the check stops with one line saying so and a non-zero exit,
never a pass made of skipped tests.
"""

from __future__ import annotations

from llenergymeasure.errors import LLEMError
from llenergymeasure.orchestrator.runners.gpus import GpuProbe, probe_gpus


class NoGpuVisible(LLEMError):
    """The GPU check was asked for on a host where NVML sees no NVIDIA GPU."""


def require_visible_gpu(probe: GpuProbe | None = None) -> int:
    """The number of GPUs NVML sees; raises `NoGpuVisible` (one line) when there is none."""
    probe = probe if probe is not None else probe_gpus()
    count = probe.device_count()
    if count > 0:
        return count
    why = getattr(probe, "nvml_error", None)
    detail = f": NVML failed to initialise ({why})" if why else ""
    raise NoGpuVisible(f"no NVIDIA GPU is visible to NVML on this host{detail}; the GPU check needs one")
