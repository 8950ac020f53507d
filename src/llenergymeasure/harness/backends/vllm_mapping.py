"""Pure translation between an `ExperimentConfig` and vLLM's offline API (no vLLM import).

Targeted API: **vLLM 0.33.0** (the vLLM image's base), read from the wheel's source, and checked
against **0.12.0** where they differ:

- ``vllm/entrypoints/llm.py`` — ``LLM(model, *, tensor_parallel_size, dtype, quantization, seed,
  gpu_memory_utilization, enforce_eager, ..., **kwargs)``; other ``EngineArgs`` fields
  (``vllm/engine/arg_utils.py``: pipeline_parallel_size, max_num_seqs, max_num_batched_tokens,
  max_model_len, kv_cache_dtype, block_size, enable_prefix_caching, enable_chunked_prefill,
  speculative_config, enable_lora, max_lora_rank, disable_log_stats) pass through ``**kwargs``.
  ``swap_space`` exists up to 0.16 and was removed by 0.22: it is passed only when set.
  ``LLM`` defaults ``disable_log_stats=True`` (both versions).
- ``vllm/sampling_params.py`` — ``SamplingParams(temperature, top_p, top_k, min_p, repetition_penalty,
  presence_penalty, frequency_penalty, seed, ignore_eos, max_tokens, min_tokens, ...)``; temperature 0
  is greedy (top_p/top_k/min_p are then reset by vLLM); ``top_k=0`` disables top-k in 0.12 and 0.33
  (-1 is still accepted; much older versions needed -1, see `TOP_K_DISABLED`).
- ``vllm/outputs.py`` — ``RequestOutput.prompt_token_ids``, ``.outputs[i].token_ids`` (the EOS token
  is included when generation stopped on it: ``v1/core/sched/utils.py:check_stop`` keeps it),
  ``.num_cached_tokens``, ``.metrics``.
- ``vllm/v1/metrics/stats.py`` — ``RequestOutput.metrics`` is a ``RequestStateStats`` (V1 engine)
  *only when stats logging is on*, else None: ``arrival_time`` (wall clock), ``first_token_latency``
  (s, measured by the front end from arrival), ``first_token_ts`` / ``last_token_ts`` (engine-core
  monotonic clock), ``num_generation_tokens`` — the same fields in 0.12. The V0 engine (< 0.10) carried a ``RequestMetrics``
  with wall-clock ``arrival_time`` / ``first_token_time`` / ``last_token_time``; both shapes are read.

Decisions:

- Stats logging is switched on (``disable_log_stats=False``) so every request carries its timings;
  the cost is host-side bookkeeping per engine step. ``passthrough_kwargs`` may switch it off again,
  and then latency falls back to batch granularity (every prompt gets the window's duration).
- Per-request latency = ``first_token_latency + (last_token_ts − first_token_ts)``: the TTFT is
  measured on the front end's clock from the request's arrival, the decode span on the engine's
  clock; each difference stays on one clock. Because the whole prompt set is submitted at once,
  TTFT includes the time a request queued behind the others (what a client would see).
- ITL = decode span / (generated tokens − 1); None for a single-token output.
- ``input_tokens`` = ``len(prompt_token_ids)`` even when the prefix cache served some of them
  (``num_cached_tokens``): every prompt token is part of the request; the cache changes the energy,
  not the work asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llenergymeasure.harness.backends.base import GenerationBatch, Prompt, RequestTiming, batch_from_counts
from llenergymeasure.schemas.config.backends import VLLMConfig
from llenergymeasure.schemas.config.capabilities import FRAMEWORK_DTYPE
from llenergymeasure.schemas.config.experiment import ExperimentConfig

#: the top_k value that disables top-k in the targeted vLLM (0 since ~0.9; -1 before)
TOP_K_DISABLED = 0

#: our id for the one LoRA adapter an experiment may carry (vLLM needs an int id > 0)
LORA_INT_ID = 1
LORA_NAME = "llem-adapter"

#: engine fields copied as they are from the `vllm.engine` section when set
_ENGINE_PASSTHROUGH_FIELDS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "gpu_memory_utilization",
    "max_num_seqs",
    "max_num_batched_tokens",
    "max_model_len",
    "enforce_eager",
    "kv_cache_dtype",
    "block_size",
    "enable_prefix_caching",
    "enable_chunked_prefill",
    "quantization",
    "swap_space",
    "max_lora_rank",
)


def section_of(config: ExperimentConfig) -> VLLMConfig:
    """The `vllm:` section, or its defaults when left out."""
    return config.vllm if config.vllm is not None else VLLMConfig()


def engine_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM(**kwargs)``: model, dtype, seed, the engine section, passthrough last."""
    engine = section_of(config).engine
    kwargs: dict[str, Any] = {
        "model": config.model,
        "dtype": FRAMEWORK_DTYPE[config.precision],
        "seed": config.random_seed,
        "disable_log_stats": False,
    }
    if config.model_revision is not None:  # the snapshot the host fetched; the tokenizer from the same commit
        kwargs["revision"] = config.model_revision
        kwargs["tokenizer_revision"] = config.model_revision
    for name in _ENGINE_PASSTHROUGH_FIELDS:
        value = getattr(engine, name)
        if value is not None:
            kwargs[name] = value
    speculative = speculative_config(config)
    if speculative is not None:
        kwargs["speculative_config"] = speculative
    if config.lora is not None:
        kwargs["enable_lora"] = True
    kwargs.update(config.passthrough_kwargs or {})
    return kwargs


def speculative_config(config: ExperimentConfig) -> dict[str, Any] | None:
    """vLLM's ``speculative_config`` dict, or None when speculative decoding is off."""
    engine = section_of(config).engine
    if engine.speculative_model is None and engine.speculative_method is None:
        return None
    spec: dict[str, Any] = {"num_speculative_tokens": engine.num_speculative_tokens}
    if engine.speculative_model is not None:
        spec["model"] = engine.speculative_model
    if engine.speculative_method is not None:
        spec["method"] = engine.speculative_method
    return spec


def sampling_kwargs(config: ExperimentConfig, prompt: Prompt) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` for one prompt: `decoder`, token limits, section overrides."""
    decoder = config.decoder
    min_tokens = prompt.min_new_tokens if prompt.min_new_tokens is not None else decoder.min_new_tokens
    kwargs: dict[str, Any] = {
        "max_tokens": prompt.max_new_tokens,
        "min_tokens": min_tokens or 0,
        "repetition_penalty": decoder.repetition_penalty,
        "seed": config.random_seed,
    }
    if decoder.decoding_mode == "greedy":
        kwargs["temperature"] = 0.0
    else:
        kwargs.update(
            temperature=decoder.temperature,
            top_p=decoder.top_p,
            top_k=decoder.top_k if decoder.top_k > 0 else TOP_K_DISABLED,
            min_p=decoder.min_p if decoder.min_p is not None else 0.0,
        )
    overrides = section_of(config).sampling
    for name in ("presence_penalty", "frequency_penalty", "ignore_eos"):
        value = getattr(overrides, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def lora_request_kwargs(config: ExperimentConfig) -> dict[str, Any] | None:
    """Keyword arguments for ``vllm.lora.request.LoRARequest``, or None without an adapter."""
    if config.lora is None:
        return None
    return {"lora_name": LORA_NAME, "lora_int_id": LORA_INT_ID, "lora_path": config.lora.adapter}


# ---------------------------------------------------------------- accounting


def _request_timing(metrics: Any, output_tokens: int) -> RequestTiming | None:
    """``(latency_s, ttft_s, itl_s, arrival_s)`` from a request's metrics, or None when missing or unusable.

    ``arrival_s`` is the front end's wall-clock arrival time (both engine versions): the requests' offsets from
    one another are differences on that one clock.
    """
    if metrics is None:
        return None
    itl_divisor = output_tokens - 1
    if hasattr(metrics, "first_token_latency") and hasattr(metrics, "last_token_ts"):  # V1 RequestStateStats
        ttft = float(metrics.first_token_latency)
        decode = float(metrics.last_token_ts) - float(metrics.first_token_ts)
        if ttft <= 0.0 or decode < 0.0 or float(metrics.first_token_ts) <= 0.0:
            return None  # stats were not filled in (logging off inside the engine)
    elif all(hasattr(metrics, a) for a in ("arrival_time", "first_token_time", "last_token_time")):  # V0
        if metrics.first_token_time is None or metrics.last_token_time is None:
            return None
        ttft = float(metrics.first_token_time) - float(metrics.arrival_time)
        decode = float(metrics.last_token_time) - float(metrics.first_token_time)
        if ttft < 0.0 or decode < 0.0:
            return None
    else:
        return None
    itl = decode / itl_divisor if itl_divisor > 0 else None
    return ttft + decode, ttft, itl, float(metrics.arrival_time)


def batch_from_vllm(outputs: Sequence[Any], window_s: float) -> GenerationBatch:
    """Our `GenerationBatch` from vLLM ``RequestOutput``s (one per prompt, in prompt order).

    Token counts are exact: ``len(prompt_token_ids)`` and ``len(outputs[0].token_ids)``.
    Latency is per request when every request carries usable metrics, else every
    prompt gets `window_s` (the duration of the one ``generate`` call) and the
    granularity is ``batch``.
    """
    counted: list[tuple[int, int, str | None]] = []
    timings: list[RequestTiming | None] = []
    for out in outputs:
        completion = out.outputs[0]
        n_out = len(completion.token_ids)
        counted.append((len(out.prompt_token_ids or ()), n_out, completion.text))
        timings.append(_request_timing(getattr(out, "metrics", None), n_out))
    return batch_from_counts(counted, timings, window_s)


def cached_prompt_tokens(outputs: Sequence[Any]) -> int:
    """Prompt tokens served from the prefix cache over `outputs` (0 where vLLM does not say)."""
    return sum(int(getattr(out, "num_cached_tokens", None) or 0) for out in outputs)
