"""Shared pytest configuration: the gpu marker skips with a stated reason where no NVIDIA GPU is visible."""

from __future__ import annotations

import pytest


def _nvidia_gpu_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    if _nvidia_gpu_count() > 0:
        return
    reason = pytest.mark.skip(reason="needs an NVIDIA GPU: NVML finds no device on this host")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(reason)
