"""vLLM and TensorRT-LLM on a real GPU, in this process (run inside the backend's image).

Each test needs an NVIDIA GPU (the `gpu` marker skips it elsewhere) and the
framework installed (skipped with that reason otherwise, e.g. running the vLLM
tests in the TensorRT image). Tensor parallel 2 needs two GPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gpu_models import make_tiny_llama, nvidia_gpu_count, prompt_text

from llenergymeasure.harness.backends import create_backend
from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.backends.engine_cache import EngineCache
from llenergymeasure.harness.backends.tensorrt import TensorRTBackend
from llenergymeasure.schemas.config.experiment import ExperimentConfig

pytestmark = [pytest.mark.gpu, pytest.mark.cuda]

N_PROMPTS = 8
OUTPUT_TOKENS = 16
INPUT_TOKENS = 24


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers", reason="the tiny model is written with transformers")
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def _two_gpus() -> None:
    if nvidia_gpu_count() < 2:
        pytest.skip("tensor parallel 2 needs two NVIDIA GPUs; NVML sees fewer")


def _prompts() -> list[Prompt]:
    return [
        Prompt(
            prompt_text(i, INPUT_TOKENS + 8), OUTPUT_TOKENS, min_new_tokens=OUTPUT_TOKENS, max_input_tokens=INPUT_TOKENS
        )
        for i in range(N_PROMPTS)
    ]


def _config(model: Path, backend: str, section: dict[str, Any]) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"model": str(model), "backend": backend, "precision": "bf16", "n": N_PROMPTS, "max_input_tokens": INPUT_TOKENS,
         "max_output_tokens": OUTPUT_TOKENS, backend: section}
    )  # fmt: skip


def _check_batch(backend: Any) -> None:
    prompts = backend.prepare(_prompts())
    assert all(p.token_ids is not None and len(p.token_ids) == INPUT_TOKENS for p in prompts)
    backend.generate(prompts[:2])  # warm
    backend.reseed(42)
    batch = backend.generate(prompts)
    assert [o.output_tokens for o in batch.outputs] == [OUTPUT_TOKENS] * N_PROMPTS  # min = max: exact
    assert [o.input_tokens for o in batch.outputs] == [INPUT_TOKENS] * N_PROMPTS
    assert batch.granularity == "request", "per-request metrics were expected from the framework"
    for o in batch.outputs:
        assert o.ttft_s is not None
        assert 0 < o.ttft_s <= o.latency_s
        assert o.itl_s is not None
        assert o.itl_s > 0


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_vllm_tiny_model(tiny_model: Path, tp: int) -> None:
    pytest.importorskip("vllm", reason="vLLM is not installed here (run inside the vllm image)")
    if tp == 2:
        _two_gpus()
    cfg = _config(
        tiny_model,
        "vllm",
        {"engine": {"tensor_parallel_size": tp, "gpu_memory_utilization": 0.3, "max_model_len": 128}},
    )
    backend = create_backend(cfg, list(range(tp)))
    backend.load()
    try:
        _check_batch(backend)
        assert backend.versions()["vllm"]
    finally:
        backend.close()


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_tensorrt_tiny_model_builds_then_reuses_the_cached_engine(tiny_model: Path, tmp_path: Path, tp: int) -> None:
    pytest.importorskip("tensorrt_llm", reason="TensorRT-LLM is not installed here (run inside the tensorrt image)")
    if tp == 2:
        _two_gpus()
    cfg = _config(
        tiny_model, "tensorrt", {"tp_size": tp, "max_batch_size": N_PROMPTS, "kv_cache_free_gpu_memory_fraction": 0.3}
    )
    cache = EngineCache(tmp_path / "engines")
    first = TensorRTBackend(cfg, cfg.tensorrt, list(range(tp)), cache=cache)
    first.load()
    try:
        assert first.engine_info is not None
        assert first.engine_info.source == "built"
        _check_batch(first)
    finally:
        first.close()
    second = TensorRTBackend(cfg, cfg.tensorrt, list(range(tp)), cache=cache)
    second.load()
    try:
        assert second.engine_info is not None
        assert second.engine_info.source == "cache"
        _check_batch(second)
    finally:
        second.close()
