"""Without a GPU the GPU targets fail with one line, and under LLEM_REQUIRE_GPU=1 a skipped GPU test fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.orchestrator.selftest import NoGpuVisible, require_visible_gpu

ROOT = Path(__file__).resolve().parents[3]
NO_GPU_LINE = "error: no NVIDIA GPU is visible to NVML on this host"


def _host_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LLEM_SIMULATE_GPUS", "LLEM_REQUIRE_GPU", "MAKEFLAGS")}
    return {**env, **extra}


class _TwoGpus:
    def device_count(self) -> int:
        return 2

    def foreign_processes(self, index: int, own_pids: frozenset[int] = frozenset()) -> list[int]:
        return []


def test_require_visible_gpu() -> None:
    assert require_visible_gpu(_TwoGpus()) == 2
    with pytest.raises(NoGpuVisible, match="no NVIDIA GPU is visible to NVML on this host; the GPU check needs one"):
        require_visible_gpu(NoGpus())
    with pytest.raises(NoGpuVisible, match=r"NVML failed to initialise \(NVMLError_NoPermission"):
        require_visible_gpu(NoGpus(nvml_error="NVMLError_NoPermission: Insufficient Permissions"))


@pytest.mark.parametrize("target", ["test-gpu", "gpu-check"])
def test_gpu_targets_fail_on_this_host_with_one_line(target: str) -> None:
    # this machine has no NVIDIA GPU (ENVIRONMENT.md); -o: never reinstall the venv from a test
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", target],
        cwd=ROOT, capture_output=True, text=True, env=_host_env(), timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("make")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(NO_GPU_LINE)
    assert "passed" not in done.stdout


def _pytest_gpu_tier(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "tests/gpu/test_gpu_nvml.py"],
        cwd=ROOT, capture_output=True, text=True, env=_host_env(**env), timeout=300,
    )  # fmt: skip


def test_gpu_tier_runs_its_nvml_test_on_simulated_gpus(tmp_path: Path) -> None:
    spec = tmp_path / "gpus.json"
    spec.write_text('{"devices": [{"power": {"kind": "constant", "watts": 250}}]}')
    done = _pytest_gpu_tier(LLEM_SIMULATE_GPUS=str(spec))
    assert done.returncode == 0, done.stdout[-2000:]
    # the counter/instant-power test runs on the simulated device; the CUDA run skips with that reason
    assert "1 passed, 1 skipped" in done.stdout
    assert "the GPUs here are simulated" in done.stdout


def test_skipped_gpu_tests_fail_when_a_gpu_is_required() -> None:
    relaxed = _pytest_gpu_tier()
    assert relaxed.returncode == 0, relaxed.stdout[-2000:]
    assert "2 skipped" in relaxed.stdout
    strict = _pytest_gpu_tier(LLEM_REQUIRE_GPU="1")
    assert strict.returncode == 1
    # the marker's skip happens in setup, so pytest counts the two as errors; either way none passes or skips
    assert "2 errors" in strict.stdout or "2 failed" in strict.stdout
    assert "skipped" not in strict.stdout.splitlines()[-1]
    assert "LLEM_REQUIRE_GPU=1: a GPU test may not skip" in strict.stdout
