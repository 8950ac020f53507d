"""Simulated GPUs (``LLEM_SIMULATE_GPUS=spec.json``): an NVML driver whose devices draw analytic power.

Standard library, pydantic and pynvml's constants only; imported by both the
host (GPU probe, pre-flight) and the harness (meter, sampler, baseline,
environment), and by neither wing's internals (an import-linter contract).
"""

from __future__ import annotations

from collections.abc import Mapping

from llenergymeasure.simgpu.driver import SimulatedNvml
from llenergymeasure.simgpu.load import load_spec, spec_path

__all__ = ["SimulatedNvml", "load_spec", "simulated_nvml", "spec_path"]


def simulated_nvml(environ: Mapping[str, str]) -> SimulatedNvml | None:
    """The simulated driver when ``LLEM_SIMULATE_GPUS`` is set (raises `ConfigError` on a bad spec), else None."""
    path = spec_path(environ)
    return None if path is None else SimulatedNvml(load_spec(path))
