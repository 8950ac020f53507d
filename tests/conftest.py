"""Shared pytest configuration for the gpu marker.

Where NVML sees no NVIDIA GPU, tests marked `gpu` are skipped with that reason.
With ``LLEM_SIMULATE_GPUS=spec.json`` the simulated devices count: the `gpu`
tests run against them, except those also marked `cuda` (they compute on the
GPU), which skip saying the GPUs are simulated. Under ``LLEM_REQUIRE_GPU=1`` (set by the GPU workflow and ``make gpu-check``) a
skipped GPU test is a failure instead: a GPU run that skipped its tests must not
pass.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_GPU_ENV = "LLEM_REQUIRE_GPU"


def _nvidia_gpu_count() -> int:
    if os.environ.get("LLEM_SIMULATE_GPUS", "").strip():
        from llenergymeasure.simgpu import simulated_nvml

        simulated = simulated_nvml(os.environ)
        return int(simulated.nvmlDeviceGetCount()) if simulated is not None else 0
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return 0


def _gpu_required() -> bool:
    return os.environ.get(REQUIRE_GPU_ENV, "").strip().lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    if _nvidia_gpu_count() == 0:
        reason = pytest.mark.skip(reason="needs an NVIDIA GPU: NVML finds no device on this host")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(reason)
    elif os.environ.get("LLEM_SIMULATE_GPUS", "").strip():
        simulated = pytest.mark.skip(reason="computes on a real NVIDIA GPU with CUDA; the GPUs here are simulated")
        for item in items:
            if item.get_closest_marker("cuda"):
                item.add_marker(simulated)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under LLEM_REQUIRE_GPU=1 a skipped `gpu` test (marker or pytest.skip inside it) is reported as failed."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and _gpu_required() and item.get_closest_marker("gpu") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_GPU_ENV}=1: a GPU test may not skip ({reason})"
