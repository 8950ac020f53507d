"""Pure translation between an `ExperimentConfig` and TensorRT-LLM's LLM API (no TensorRT-LLM import).

Targeted API: **TensorRT-LLM 1.2**, TensorRT-engine flow (the image's base is the 1.2.1 release)
(``tensorrt_llm._tensorrt_engine.LLM``;
since 1.0 the top-level ``tensorrt_llm.LLM`` is the PyTorch flow, which builds no engine). Read
from the repository source, as the package index only hosts a stub of the wheel:

- ``tensorrt_llm/llmapi/llm_args.py`` — ``BaseLlmArgs``: model, tokenizer, dtype,
  tensor_parallel_size, pipeline_parallel_size, max_batch_size, max_input_len, max_seq_len,
  max_num_tokens, kv_cache_config (``KvCacheConfig``: free_gpu_memory_fraction, enable_block_reuse,
  dtype must stay "auto" on the TensorRT flow), enable_chunked_prefill, enable_lora, lora_config;
  ``TrtLlmArgs``: quant_config (``QuantConfig``), calib_config (``CalibConfig``), build_config — when
  omitted it is built from the top-level max_* fields, which is how this module sets them. A local
  engine directory as ``model`` loads that engine and ignores any build settings.
- ``tensorrt_llm/quantization/mode.py`` — ``QuantAlgo`` members (FP8, W8A8_SQ_PER_CHANNEL,
  W4A16_AWQ, W4A16, W8A16, NVFP4, INT8, ...), named in `capabilities.TENSORRT_QUANT_ALGO`.
- ``tensorrt_llm/sampling_params.py`` — ``SamplingParams(max_tokens, min_tokens, temperature, top_k,
  top_p, min_p, repetition_penalty, seed, return_perf_metrics, ...)``; top_k 0 = all logits; top_k 1
  is greedy.
- ``tensorrt_llm/executor/result.py`` — ``RequestOutput.prompt_token_ids``; ``outputs[0].token_ids``,
  ``finish_reason`` ('stop' for the end id or a stop word, 'length'), ``stop_reason`` (set only for
  stop words), ``request_perf_metrics.timing_metrics`` (``arrival_time``, ``first_token_time``,
  ``last_token_time`` as ``datetime.timedelta`` on one steady clock) when ``return_perf_metrics``.

Decisions:

- Greedy = ``top_k=1`` (documented as greedy, and the runtime's oldest path); sampling passes
  temperature, top_p, top_k (0 = off) and min_p.
- The executor stops on the end id but leaves it out of ``token_ids`` (maintainers: "expected
  behaviour", NVIDIA/TensorRT-LLM#2190). Our contract counts generated tokens *including* EOS (as
  vLLM and transformers return them), so a request that finished on the end id (finish_reason
  'stop', no stop_reason) counts one more token than ``token_ids`` holds.
- Engine limits left unset follow the experiment: max_input_len = longest prompt + 16 tokens of
  slack for special tokens the tokenizer adds, max_seq_len = max_input_len + output tokens. The
  same values feed the engine-cache hash, so a cached engine always fits the prompts.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from llenergymeasure.harness.backends.base import GenerationBatch, Prompt, RequestTiming, batch_from_counts
from llenergymeasure.schemas.config.backends import TensorRTConfig
from llenergymeasure.schemas.config.capabilities import (
    FRAMEWORK_DTYPE,
    TENSORRT_KV_CACHE_QUANT_ALGO,
    TENSORRT_QUANT_ALGO,
    prompt_token_budget,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig

#: tokens of room left in max_input_len for special tokens (BOS, chat markers) the tokenizer adds
INPUT_SLACK_TOKENS = 16

#: the top_k that makes TensorRT-LLM decode greedily
GREEDY_TOP_K = 1


def section_of(config: ExperimentConfig) -> TensorRTConfig:
    """The `tensorrt:` section, or its defaults when left out."""
    return config.tensorrt if config.tensorrt is not None else TensorRTConfig()


def build_settings(config: ExperimentConfig) -> dict[str, Any]:
    """Everything that shapes the built engine, with defaults resolved (JSON-able; feeds the cache hash)."""
    section = section_of(config)
    input_tokens, output_tokens = prompt_token_budget(config)
    max_input_len = section.max_input_len or input_tokens + INPUT_SLACK_TOKENS
    max_seq_len = section.max_seq_len or max_input_len + output_tokens
    return {
        "dtype": FRAMEWORK_DTYPE[config.precision],
        "tensor_parallel_size": section.tp_size or 1,
        "pipeline_parallel_size": section.pp_size or 1,
        "max_batch_size": section.max_batch_size,
        "max_input_len": max_input_len,
        "max_seq_len": max_seq_len,
        "max_num_tokens": section.max_num_tokens,
        "quant_algo": TENSORRT_QUANT_ALGO[section.quantization] if section.quantization else None,
        "kv_cache_quant_algo": (
            TENSORRT_KV_CACHE_QUANT_ALGO[section.kv_cache_quantization] if section.kv_cache_quantization else None
        ),
        "calibration_dataset": section.calibration_dataset,
        "lora_adapter": config.lora.adapter if config.lora is not None else None,
    }


def runtime_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """LLM arguments that apply whether the engine is built now or loaded (parallelism, KV cache, LoRA)."""
    section = section_of(config)
    kwargs: dict[str, Any] = {
        "dtype": FRAMEWORK_DTYPE[config.precision],
        "tensor_parallel_size": section.tp_size or 1,
        "pipeline_parallel_size": section.pp_size or 1,
    }
    kv_cache: dict[str, Any] = {}
    if section.kv_cache_free_gpu_memory_fraction is not None:
        kv_cache["free_gpu_memory_fraction"] = section.kv_cache_free_gpu_memory_fraction
    if section.enable_kv_cache_reuse is not None:
        kv_cache["enable_block_reuse"] = section.enable_kv_cache_reuse
    if kv_cache:
        kwargs["kv_cache_config"] = kv_cache
    if section.enable_chunked_prefill is not None:
        kwargs["enable_chunked_prefill"] = section.enable_chunked_prefill
    if config.lora is not None:
        kwargs["enable_lora"] = True
        kwargs["lora_config"] = {"lora_dir": [config.lora.adapter]}
    return kwargs


def revision_kwargs(config: ExperimentConfig, *, model: bool) -> dict[str, Any]:
    """``revision`` (of the checkpoint, when `model`) and ``tokenizer_revision``: the config's `model_revision`."""
    if config.model_revision is None:
        return {}
    kwargs = {"tokenizer_revision": config.model_revision}
    if model:
        kwargs["revision"] = config.model_revision
    return kwargs


def build_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """LLM arguments that build an engine from the model checkpoint (runtime arguments + build limits).

    Sub-configs are plain dicts, keyed by the LLM argument they fill: ``quant_config`` (with
    ``QuantAlgo`` member *names*), ``calib_config``, ``kv_cache_config``, ``lora_config``; the backend
    turns them into TensorRT-LLM objects.
    """
    settings = build_settings(config)
    kwargs = {"model": config.model, **revision_kwargs(config, model=True), **runtime_kwargs(config)}
    for name in ("max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens"):
        if settings[name] is not None:
            kwargs[name] = settings[name]
    quant: dict[str, Any] = {}
    if settings["quant_algo"] is not None:
        quant["quant_algo"] = settings["quant_algo"]
    if settings["kv_cache_quant_algo"] is not None:
        quant["kv_cache_quant_algo"] = settings["kv_cache_quant_algo"]
    if quant:
        kwargs["quant_config"] = quant
    if settings["calibration_dataset"] is not None:
        kwargs["calib_config"] = {"calib_dataset": settings["calibration_dataset"]}
    kwargs.update(config.passthrough_kwargs or {})
    return kwargs


def load_kwargs(config: ExperimentConfig, engine_dir: str) -> dict[str, Any]:
    """LLM arguments that load a built engine from `engine_dir`, with the model's tokenizer."""
    kwargs = {"model": engine_dir, "tokenizer": config.model, **revision_kwargs(config, model=False)}
    kwargs.update(runtime_kwargs(config))
    kwargs.update(config.passthrough_kwargs or {})
    return kwargs


def sampling_kwargs(config: ExperimentConfig, prompt: Prompt) -> dict[str, Any]:
    """Keyword arguments for ``tensorrt_llm.SamplingParams`` for one prompt."""
    decoder = config.decoder
    kwargs: dict[str, Any] = {
        "max_tokens": prompt.max_new_tokens,
        "repetition_penalty": decoder.repetition_penalty,
        "seed": config.random_seed,
        "return_perf_metrics": True,
    }
    min_tokens = prompt.min_new_tokens if prompt.min_new_tokens is not None else decoder.min_new_tokens
    if min_tokens is not None:
        kwargs["min_tokens"] = min_tokens
    if decoder.decoding_mode == "greedy":
        kwargs["top_k"] = GREEDY_TOP_K
    else:
        kwargs.update(temperature=decoder.temperature, top_p=decoder.top_p, top_k=decoder.top_k)
        if decoder.min_p is not None:
            kwargs["min_p"] = decoder.min_p
    return kwargs


# ---------------------------------------------------------------- accounting


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def generated_tokens(completion: Any) -> int:
    """Tokens the model generated for one completion, the end token included (see the module docstring)."""
    n = len(completion.token_ids)
    ended_on_eos = completion.finish_reason == "stop" and getattr(completion, "stop_reason", None) is None
    return n + 1 if ended_on_eos else n


def _request_timing(completion: Any, output_tokens: int) -> RequestTiming | None:
    metrics = getattr(completion, "request_perf_metrics", None)
    timing = getattr(metrics, "timing_metrics", None)
    if timing is None:
        return None
    arrival = _seconds(timing.arrival_time)
    first = _seconds(timing.first_token_time)
    last = _seconds(timing.last_token_time)
    if first <= 0.0 or last <= 0.0 or first < arrival or last < first:
        return None  # not filled in (a zero timedelta means "not reached")
    itl = (last - first) / (output_tokens - 1) if output_tokens > 1 else None
    return last - arrival, first - arrival, itl, arrival


def batch_from_trt(outputs: Sequence[Any], window_s: float) -> GenerationBatch:
    """Our `GenerationBatch` from TensorRT-LLM ``RequestOutput``s (one per prompt, in prompt order)."""
    counted: list[tuple[int, int, str | None]] = []
    timings: list[RequestTiming | None] = []
    for out in outputs:
        completion = out.outputs[0]
        n_out = generated_tokens(completion)
        counted.append((len(out.prompt_token_ids or ()), n_out, getattr(completion, "text", None)))
        timings.append(_request_timing(completion, n_out))
    return batch_from_counts(counted, timings, window_s)
