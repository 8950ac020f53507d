"""Config → vLLM engine/sampling arguments, and token/latency accounting on canned request outputs."""

from __future__ import annotations

from typing import Any

import pytest
from backend_fakes import (
    EOS,
    FakeCompletionOutput,
    FakeRequestStateStats,
    FakeV0RequestMetrics,
    FakeVLLMRequestOutput,
)

from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.backends.vllm_mapping import (
    TOP_K_DISABLED,
    batch_from_vllm,
    cached_prompt_tokens,
    engine_kwargs,
    lora_request_kwargs,
    sampling_kwargs,
    speculative_config,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def _cfg(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model": "org/tiny", "backend": "vllm", **fields})


def _out(
    prompt_ids: list[int], out_ids: list[int], metrics: Any = None, cached: int | None = None
) -> FakeVLLMRequestOutput:
    return FakeVLLMRequestOutput(
        "r", None, prompt_ids, None, [FakeCompletionOutput(0, "t", out_ids)], True, metrics, None, cached
    )


# ------------------------------------------------------------------ engine arguments


def test_engine_kwargs_defaults_leave_vllm_defaults_alone() -> None:
    kwargs = engine_kwargs(_cfg(precision="fp16", random_seed=7))
    assert kwargs == {"model": "org/tiny", "dtype": "float16", "seed": 7, "disable_log_stats": False}


def test_engine_kwargs_carry_every_section_field() -> None:
    engine = {
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "gpu_memory_utilization": 0.8,
        "max_num_seqs": 64,
        "max_num_batched_tokens": 4096,
        "max_model_len": 2048,
        "enforce_eager": True,
        "kv_cache_dtype": "fp8",
        "block_size": 32,
        "enable_prefix_caching": False,
        "enable_chunked_prefill": True,
        "quantization": "awq",
        "max_lora_rank": 32,
    }
    kwargs = engine_kwargs(_cfg(vllm={"engine": engine}))
    assert {k: kwargs[k] for k in engine} == engine
    assert kwargs["dtype"] == "bfloat16"  # the default precision
    assert "speculative_config" not in kwargs
    assert "enable_lora" not in kwargs


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", "float32"), ("fp16", "float16"), ("bf16", "bfloat16")])
def test_precision_maps_to_vllm_dtype(precision: str, dtype: str) -> None:
    assert engine_kwargs(_cfg(precision=precision))["dtype"] == dtype


def test_passthrough_kwargs_win_over_everything() -> None:
    cfg = _cfg(
        vllm={"engine": {"max_num_seqs": 8}},
        passthrough_kwargs={"max_num_seqs": 4, "disable_log_stats": True, "trust_remote_code": True},
    )
    kwargs = engine_kwargs(cfg)
    assert (kwargs["max_num_seqs"], kwargs["disable_log_stats"], kwargs["trust_remote_code"]) == (4, True, True)


def test_speculative_config_uses_the_dict_form_of_current_vllm() -> None:
    draft = _cfg(vllm={"engine": {"speculative_model": "org/draft", "num_speculative_tokens": 4}})
    assert engine_kwargs(draft)["speculative_config"] == {"model": "org/draft", "num_speculative_tokens": 4}
    ngram = _cfg(vllm={"engine": {"speculative_method": "ngram", "num_speculative_tokens": 3}})
    assert speculative_config(ngram) == {"method": "ngram", "num_speculative_tokens": 3}
    eagle = _cfg(
        vllm={"engine": {"speculative_method": "eagle", "speculative_model": "org/eagle", "num_speculative_tokens": 2}}
    )
    assert speculative_config(eagle) == {"method": "eagle", "model": "org/eagle", "num_speculative_tokens": 2}


def test_lora_enables_the_engine_and_builds_one_request() -> None:
    cfg = _cfg(lora={"adapter": "/adapters/a"}, vllm={"engine": {"max_lora_rank": 64}})
    kwargs = engine_kwargs(cfg)
    assert kwargs["enable_lora"] is True
    assert kwargs["max_lora_rank"] == 64
    assert lora_request_kwargs(cfg) == {"lora_name": "llem-adapter", "lora_int_id": 1, "lora_path": "/adapters/a"}
    assert lora_request_kwargs(_cfg()) is None


# ------------------------------------------------------------------ sampling arguments


def test_greedy_is_temperature_zero_with_no_sampling_knobs() -> None:
    cfg = _cfg(random_seed=3, decoder={"repetition_penalty": 1.1})
    kwargs = sampling_kwargs(cfg, Prompt("p", max_new_tokens=128))
    assert kwargs == {"max_tokens": 128, "min_tokens": 0, "repetition_penalty": 1.1, "seed": 3, "temperature": 0.0}


def test_sampling_maps_every_decoder_field() -> None:
    cfg = _cfg(
        decoder={"do_sample": True, "temperature": 0.7, "top_k": 40, "top_p": 0.9, "min_p": 0.05, "min_new_tokens": 4}
    )
    kwargs = sampling_kwargs(cfg, Prompt("p", max_new_tokens=64))
    assert kwargs == {
        "max_tokens": 64, "min_tokens": 4, "repetition_penalty": 1.0, "seed": 42,
        "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
    }  # fmt: skip


def test_top_k_zero_and_no_min_p_mean_disabled() -> None:
    cfg = _cfg(decoder={"preset": "creative"})  # top_k 0
    kwargs = sampling_kwargs(cfg, Prompt("p", max_new_tokens=8))
    assert (kwargs["top_k"], kwargs["min_p"], kwargs["temperature"]) == (TOP_K_DISABLED, 0.0, 1.2)


def test_prompt_length_limits_win_and_section_overrides_apply() -> None:
    cfg = _cfg(
        decoder={"min_new_tokens": 2},
        vllm={"sampling": {"presence_penalty": 0.5, "frequency_penalty": -0.5, "ignore_eos": True}},
    )
    synthetic = sampling_kwargs(cfg, Prompt("p", max_new_tokens=32, min_new_tokens=32))
    assert (synthetic["max_tokens"], synthetic["min_tokens"]) == (32, 32)
    assert (synthetic["presence_penalty"], synthetic["frequency_penalty"], synthetic["ignore_eos"]) == (0.5, -0.5, True)
    assert sampling_kwargs(cfg, Prompt("p", max_new_tokens=32))["min_tokens"] == 2


# ------------------------------------------------------------------ accounting


def test_token_counts_are_exact_with_early_eos_and_ragged_prompts() -> None:
    outputs = [
        _out([1, 11, 12], [20, 21, 22, 23, EOS]),  # stopped on EOS after 4 words: vLLM keeps EOS → 5 tokens
        _out([1, 11, 12, 13, 14, 15, 16], [20] * 16),  # ran to max_tokens
        _out([1], [EOS]),  # EOS first
    ]
    batch = batch_from_vllm(outputs, window_s=2.0)
    assert [(o.input_tokens, o.output_tokens) for o in batch.outputs] == [(3, 5), (7, 16), (1, 1)]


def test_v1_request_metrics_give_per_request_latency_ttft_itl() -> None:
    # TTFT 0.25 s from arrival (front-end clock); decode 100.0 → 100.9 on the engine clock over 10 tokens
    stats = FakeRequestStateStats(num_generation_tokens=10, arrival_time=1_700_000_000.0, first_token_ts=100.0,
                                  last_token_ts=100.9, first_token_latency=0.25)  # fmt: skip
    single = FakeRequestStateStats(num_generation_tokens=1, arrival_time=1.0, first_token_ts=50.0, last_token_ts=50.0,
                                   first_token_latency=0.5)  # fmt: skip
    batch = batch_from_vllm([_out([1, 2], list(range(10)), stats), _out([1], [EOS], single)], window_s=9.0)
    assert batch.granularity == "request"
    first, second = batch.outputs
    assert first.latency_s == pytest.approx(1.15)  # 0.25 + 0.9
    assert first.ttft_s == pytest.approx(0.25)
    assert first.itl_s == pytest.approx(0.1)  # 0.9 s / 9 gaps
    assert (second.latency_s, second.ttft_s, second.itl_s) == (pytest.approx(0.5), pytest.approx(0.5), None)


def test_v0_request_metrics_are_read_too() -> None:
    metrics = FakeV0RequestMetrics(arrival_time=10.0, last_token_time=13.0, first_scheduled_time=10.1,
                                   first_token_time=10.5, time_in_queue=0.1)  # fmt: skip
    (out,) = batch_from_vllm([_out([1, 2, 3], list(range(6)), metrics)], window_s=9.0).outputs
    assert (out.latency_s, out.ttft_s, out.itl_s) == (pytest.approx(3.0), pytest.approx(0.5), pytest.approx(0.5))


def test_missing_metrics_fall_back_to_batch_granularity() -> None:
    stats = FakeRequestStateStats(first_token_ts=1.0, last_token_ts=2.0, first_token_latency=0.1)
    unfilled = FakeRequestStateStats()  # logging off inside the engine: all zeros
    for outputs in ([_out([1], [5, 6])], [_out([1], [5, 6], stats), _out([1], [5], None)], [_out([1], [5], unfilled)]):
        batch = batch_from_vllm(outputs, window_s=2.5)
        assert batch.granularity == "batch"
        assert all(o.latency_s == 2.5 and o.ttft_s is None and o.itl_s is None for o in batch.outputs)


def test_prefix_cached_tokens_still_count_as_input_and_are_summed_separately() -> None:
    outputs = [_out(list(range(12)), [5, EOS], cached=8), _out(list(range(12)), [5, EOS], cached=None)]
    batch = batch_from_vllm(outputs, window_s=1.0)
    assert [o.input_tokens for o in batch.outputs] == [12, 12]
    assert cached_prompt_tokens(outputs) == 8


def test_a_model_revision_reaches_the_engine_and_its_tokenizer() -> None:
    kwargs = engine_kwargs(_cfg(model_revision="v1.0"))
    assert (kwargs["revision"], kwargs["tokenizer_revision"]) == ("v1.0", "v1.0")
    assert "revision" not in engine_kwargs(_cfg())
