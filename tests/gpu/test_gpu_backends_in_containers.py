"""`llem run` end to end on a GPU host: a tiny model through the vLLM and TensorRT-LLM images.

Needs an NVIDIA GPU, a Docker engine with the NVIDIA runtime, and the backend
images built (``make images``); each missing piece skips with its reason. The
result must carry counter-measured energy for every GPU of the device set (two
with tensor parallel 2), and J/output-token and tokens/s are printed for reports.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from gpu_models import make_tiny_llama, nvidia_gpu_count

from llenergymeasure.orchestrator.cli import main
from llenergymeasure.orchestrator.runners import resolve_runner

pytestmark = [pytest.mark.gpu, pytest.mark.cuda, pytest.mark.docker, pytest.mark.slow]

N_PROMPTS = 16
OUTPUT_TOKENS = 32


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers", reason="the tiny model is written with transformers")
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def _require_image(backend: str) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this host")
    image = resolve_runner(backend, gpu_count=nvidia_gpu_count()).image
    probe = subprocess.run(["docker", "image", "inspect", str(image)], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"image {image} is not built here (make images) or the Docker engine is unreachable")


def _run(tmp_path: Path, model: Path, backend: str, section: dict[str, Any]) -> dict[str, Any]:
    experiment = {
        "name": f"gpu-{backend}",
        "model": str(model),
        "backend": backend,
        "precision": "bf16",
        "n": N_PROMPTS,
        "dataset": {"synthetic": True, "input_tokens": 64, "output_tokens": OUTPUT_TOKENS},
        "warmup": {"n_warmup": 1, "thermal_floor_seconds": 5},
        "baseline": {"duration_seconds": 5},
        backend: section,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    out = tmp_path / "results"
    assert main(["run", str(path), "--cycles", "1", "--no-gaps", "-o", str(out)]) == 0
    (result_file,) = out.glob("**/result.json")
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


def _check(result: dict[str, Any], gpus: int) -> None:
    assert result["device"] == "cuda"
    assert len(result["device_ids"]) == gpus
    assert result["output_tokens"] == N_PROMPTS * OUTPUT_TOKENS
    energy = result["energy"]
    assert energy["method"] == "counter"
    assert len(energy["per_device"]) == gpus
    assert result["energy_total_j"] == pytest.approx(sum(d["energy_j"] for d in energy["per_device"]), rel=1e-6)
    assert result["energy_per_output_token_j"] > 0
    assert result["output_tokens_per_s"] > 0
    print(
        f"\n{result['config']['backend']} tp={gpus}: {result['energy_per_output_token_j']:.4f} J/output token, "
        f"{result['output_tokens_per_s']:.1f} output tokens/s, window {result['window_duration_s']:.2f} s"
    )


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_vllm_in_its_container(tiny_model: Path, tmp_path: Path, tp: int) -> None:
    _require_image("vllm")
    if tp == 2 and nvidia_gpu_count() < 2:
        pytest.skip("tensor parallel 2 needs two NVIDIA GPUs; NVML sees fewer")
    result = _run(
        tmp_path,
        tiny_model,
        "vllm",
        {"engine": {"tensor_parallel_size": tp, "gpu_memory_utilization": 0.3, "max_model_len": 256}},
    )
    _check(result, tp)


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_tensorrt_in_its_container(tiny_model: Path, tmp_path: Path, tp: int) -> None:
    _require_image("tensorrt")
    if tp == 2 and nvidia_gpu_count() < 2:
        pytest.skip("tensor parallel 2 needs two NVIDIA GPUs; NVML sees fewer")
    result = _run(
        tmp_path,
        tiny_model,
        "tensorrt",
        {"tp_size": tp, "max_batch_size": N_PROMPTS, "kv_cache_free_gpu_memory_fraction": 0.3},
    )
    _check(result, tp)
