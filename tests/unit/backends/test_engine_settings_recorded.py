"""What the engines ran with is recorded: cross-request cache reuse (emptied before the window where possible), precision."""

from __future__ import annotations

from typing import Any

from backend_fakes import FakeVLLM, eos_after, trt_api, vllm_api

from llenergymeasure.harness.backends.tensorrt import TensorRTBackend
from llenergymeasure.harness.backends.vllm import VLLMBackend
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def _cfg(backend: str, **fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model": "org/tiny", "backend": backend, **fields})


def test_vllm_prefix_caching_is_recorded_and_emptied_between_warmup_and_window() -> None:
    created: list[FakeVLLM] = []
    cfg = _cfg("vllm")
    backend = VLLMBackend(cfg, cfg.vllm, [0], api_loader=vllm_api(eos_after(3), created))
    backend.load()
    before = backend.cache_reuse()
    assert (before.enabled, before.configured, before.emptied_before_window) == (True, False, False)  # vLLM default
    backend.reseed(42)  # right before the window
    assert created[0].prefix_cache_resets == 1
    after = backend.cache_reuse()
    assert (after.mechanism, after.enabled, after.emptied_before_window) == ("vLLM prefix caching", True, True)

    off = _cfg("vllm", vllm={"engine": {"enable_prefix_caching": False}})
    reuse = VLLMBackend(off, off.vllm, [0], api_loader=vllm_api(eos_after(3), [])).cache_reuse()
    assert (reuse.enabled, reuse.configured) == (False, True)


def test_tensorrt_kv_block_reuse_is_recorded() -> None:
    default = _cfg("tensorrt")
    reuse = TensorRTBackend(default, default.tensorrt, [0], api_loader=trt_api(lambda i, k: None, [])).cache_reuse()
    assert (reuse.mechanism, reuse.enabled, reuse.configured) == ("TensorRT-LLM KV-cache block reuse", True, False)
    assert reuse.emptied_before_window is False  # the LLM API cannot empty it: warmup prompts are disjoint instead
    off = _cfg("tensorrt", tensorrt={"enable_kv_cache_reuse": False})
    reuse = TensorRTBackend(off, off.tensorrt, [0], api_loader=trt_api(lambda i, k: None, [])).cache_reuse()
    assert (reuse.enabled, reuse.configured) == (False, True)


def test_engine_precision_follows_a_passthrough_dtype() -> None:
    cfg = _cfg("vllm", precision="bf16", passthrough_kwargs={"dtype": "half"})
    assert VLLMBackend(cfg, cfg.vllm, [0], api_loader=vllm_api(eos_after(3), [])).effective_precision == "fp16"
    plain = _cfg("vllm", precision="bf16")
    assert VLLMBackend(plain, plain.vllm, [0], api_loader=vllm_api(eos_after(3), [])).effective_precision == "bf16"
