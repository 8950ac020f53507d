"""Config → TensorRT-LLM LLM/sampling arguments, and token/latency accounting on canned outputs."""

from __future__ import annotations

from typing import Any

import pytest
from backend_fakes import FakeTrtCompletionOutput, FakeTrtRequestOutput, timing

from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.backends.tensorrt_mapping import (
    INPUT_SLACK_TOKENS,
    batch_from_trt,
    build_kwargs,
    build_settings,
    generated_tokens,
    load_kwargs,
    sampling_kwargs,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def _cfg(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model": "org/tiny", "backend": "tensorrt", **fields})


def test_unset_engine_limits_follow_the_experiment() -> None:
    settings = build_settings(_cfg(max_input_tokens=512, max_output_tokens=128))
    assert INPUT_SLACK_TOKENS == 16
    assert (settings["max_input_len"], settings["max_seq_len"]) == (528, 656)  # 512 + 16, then + 128
    synthetic = build_settings(_cfg(dataset={"synthetic": True, "input_tokens": 1000, "output_tokens": 50}))
    assert (synthetic["max_input_len"], synthetic["max_seq_len"]) == (1016, 1066)
    explicit = build_settings(_cfg(tensorrt={"max_input_len": 600, "max_seq_len": 900}))
    assert (explicit["max_input_len"], explicit["max_seq_len"]) == (600, 900)


def test_build_kwargs_map_the_section() -> None:
    cfg = _cfg(
        precision="fp16",
        tensorrt={
            "tp_size": 2, "pp_size": 1, "max_batch_size": 64, "max_num_tokens": 4096, "quantization": "int4_awq",
            "kv_cache_quantization": "fp8", "calibration_dataset": "/data/calib", "kv_cache_free_gpu_memory_fraction": 0.8,
            "enable_kv_cache_reuse": False, "enable_chunked_prefill": True,
        },
    )  # fmt: skip
    assert build_kwargs(cfg) == {
        "model": "org/tiny",
        "dtype": "float16",
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 1,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.8, "enable_block_reuse": False},
        "enable_chunked_prefill": True,
        "max_batch_size": 64,
        "max_input_len": 528,
        "max_seq_len": 656,
        "max_num_tokens": 4096,
        "quant_config": {"quant_algo": "W4A16_AWQ", "kv_cache_quant_algo": "FP8"},
        "calib_config": {"calib_dataset": "/data/calib"},
    }


@pytest.mark.parametrize(
    ("ours", "quant_algo"),
    [
        ("fp8", "FP8"),
        ("int8_sq", "W8A8_SQ_PER_CHANNEL"),
        ("int4_awq", "W4A16_AWQ"),
        ("w4a16", "W4A16"),
        ("w8a16", "W8A16"),
        ("nvfp4", "NVFP4"),
    ],
)
def test_quantisation_names_map_to_quant_algo_members(ours: str, quant_algo: str) -> None:
    assert build_kwargs(_cfg(tensorrt={"quantization": ours}))["quant_config"] == {"quant_algo": quant_algo}


def test_loading_a_built_engine_passes_runtime_arguments_only() -> None:
    cfg = _cfg(tensorrt={"tp_size": 2, "max_batch_size": 8, "quantization": "w8a16"}, lora={"adapter": "/a"})
    assert load_kwargs(cfg, "/cache/abc") == {
        "model": "/cache/abc",
        "tokenizer": "org/tiny",
        "dtype": "bfloat16",
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 1,
        "enable_lora": True,
        "lora_config": {"lora_dir": ["/a"]},
    }


def test_passthrough_kwargs_reach_the_constructor() -> None:
    cfg = _cfg(passthrough_kwargs={"max_beam_width": 1, "trust_remote_code": True})
    assert build_kwargs(cfg)["trust_remote_code"] is True
    assert load_kwargs(cfg, "/e")["max_beam_width"] == 1


def test_greedy_is_top_k_one_and_perf_metrics_are_requested() -> None:
    kwargs = sampling_kwargs(_cfg(random_seed=9), Prompt("p", max_new_tokens=100))
    assert kwargs == {"max_tokens": 100, "repetition_penalty": 1.0, "seed": 9, "return_perf_metrics": True, "top_k": 1}


def test_sampling_maps_the_decoder() -> None:
    cfg = _cfg(
        decoder={"do_sample": True, "temperature": 0.8, "top_k": 0, "top_p": 0.95, "min_p": 0.1, "min_new_tokens": 3}
    )
    kwargs = sampling_kwargs(cfg, Prompt("p", max_new_tokens=50))
    assert {k: kwargs[k] for k in ("temperature", "top_k", "top_p", "min_p", "min_tokens")} == {
        "temperature": 0.8, "top_k": 0, "top_p": 0.95, "min_p": 0.1, "min_tokens": 3,
    }  # fmt: skip
    assert sampling_kwargs(cfg, Prompt("p", max_new_tokens=50, min_new_tokens=50))["min_tokens"] == 50


def test_end_token_is_counted_though_the_executor_drops_it() -> None:
    eos = FakeTrtCompletionOutput(0, token_ids=[5, 6, 7], finish_reason="stop")
    length = FakeTrtCompletionOutput(0, token_ids=[5] * 16, finish_reason="length")
    stop_word = FakeTrtCompletionOutput(0, token_ids=[5, 6], finish_reason="stop", stop_reason="###")
    assert [generated_tokens(c) for c in (eos, length, stop_word)] == [4, 16, 2]


def test_perf_metrics_give_per_request_latency() -> None:
    completion = FakeTrtCompletionOutput(
        0, token_ids=list(range(10)), finish_reason="length", request_perf_metrics=timing(100.0, 100.2, 101.1)
    )
    batch = batch_from_trt([FakeTrtRequestOutput(0, [1, 2, 3], [completion])], window_s=5.0)
    (out,) = batch.outputs
    assert batch.granularity == "request"
    assert (out.input_tokens, out.output_tokens) == (3, 10)
    assert (out.latency_s, out.ttft_s, out.itl_s) == (pytest.approx(1.1), pytest.approx(0.2), pytest.approx(0.1))


def test_missing_or_unfilled_perf_metrics_fall_back_to_batch() -> None:
    unfilled = FakeTrtCompletionOutput(
        0, token_ids=[1, 2], finish_reason="length", request_perf_metrics=timing(5.0, 0.0, 0.0)
    )
    none = FakeTrtCompletionOutput(0, token_ids=[1, 2], finish_reason="length")
    for completion in (unfilled, none):
        batch = batch_from_trt([FakeTrtRequestOutput(0, [1], [completion])], window_s=3.0)
        assert batch.granularity == "batch"
        assert batch.outputs[0].latency_s == 3.0
        assert batch.outputs[0].ttft_s is None


def test_a_model_revision_reaches_the_checkpoint_and_the_tokenizer() -> None:
    cfg = _cfg(model_revision="abc123")
    built = build_kwargs(cfg)
    assert (built["revision"], built["tokenizer_revision"]) == ("abc123", "abc123")
    loaded = load_kwargs(cfg, "/cache/abc")
    assert loaded["tokenizer_revision"] == "abc123"
    assert "revision" not in loaded  # the engine directory has no revision; its tokenizer does
    assert "revision" not in build_kwargs(_cfg()) and "tokenizer_revision" not in build_kwargs(_cfg())
