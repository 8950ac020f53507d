"""Capability tables and validators: impossible vLLM / TensorRT-LLM combinations fail at config time."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llenergymeasure.schemas._base import INCOMPATIBLE
from llenergymeasure.schemas.config.capabilities import (
    PRECISION_SUPPORT,
    TENSORRT_QUANT_ALGO,
    VLLM_QUANTIZATION_METHODS,
    backend_rule_violations,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def _validate(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model": "m", **fields})


def _error(**fields: Any) -> tuple[str, str]:
    """(error type, message) of the single validation error `fields` cause."""
    with pytest.raises(ValidationError) as err:
        _validate(**fields)
    (e,) = err.value.errors()
    return e["type"], e["msg"]


@pytest.mark.parametrize("backend", ["vllm", "tensorrt"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_every_precision_runs_on_the_gpu_backends(backend: str, precision: str) -> None:
    assert _validate(backend=backend, precision=precision).precision == precision
    assert precision in PRECISION_SUPPORT[backend]


def test_vllm_temperature_above_two_is_incompatible_only_when_sampling() -> None:
    kind, msg = _error(backend="vllm", decoder={"do_sample": True, "temperature": 2.5})
    assert kind == INCOMPATIBLE
    assert "[0.0, 2.0]" in msg
    assert "fix:" in msg
    assert _validate(backend="vllm", decoder={"do_sample": False, "temperature": 2.5}).decoding_mode == "greedy"
    assert _validate(backend="pytorch", decoder={"do_sample": True, "temperature": 2.5}).decoder.temperature == 2.5


def test_unknown_vllm_quantization_suggests_the_closest() -> None:
    kind, msg = _error(backend="vllm", vllm={"engine": {"quantization": "gtpq"}})
    assert kind == "value_error"
    assert "did you mean 'gptq'" in msg
    assert {"awq", "gptq", "fp8", "compressed-tensors", "torchao"} <= VLLM_QUANTIZATION_METHODS


def test_vllm_quantised_kernels_need_half_precision() -> None:
    kind, msg = _error(backend="vllm", precision="fp32", vllm={"engine": {"quantization": "awq"}})
    assert kind == INCOMPATIBLE
    assert "fp16/bf16" in msg
    assert _validate(backend="vllm", precision="fp32", vllm={"engine": {"quantization": "torchao"}})


def test_vllm_lora_rank_must_be_one_vllm_reserves() -> None:
    kind, msg = _error(backend="vllm", vllm={"engine": {"max_lora_rank": 24}})
    assert kind == "value_error"
    assert "320" in msg
    assert _validate(backend="vllm", vllm={"engine": {"max_lora_rank": 320}})


@pytest.mark.parametrize(
    ("engine", "fragment"),
    [
        ({"speculative_model": "d"}, "needs num_speculative_tokens"),
        ({"num_speculative_tokens": 3}, "without speculative_model or speculative_method"),
        ({"speculative_method": "eagle", "num_speculative_tokens": 3}, "needs a draft model"),
        (
            {"speculative_method": "ngram", "speculative_model": "d", "num_speculative_tokens": 3},
            "takes no draft model",
        ),
    ],
)
def test_speculative_decoding_pairing(engine: dict[str, Any], fragment: str) -> None:
    kind, msg = _error(backend="vllm", vllm={"engine": engine})
    assert kind == INCOMPATIBLE
    assert fragment in msg


def test_vllm_context_must_hold_a_prompt_and_its_output() -> None:
    kind, msg = _error(
        backend="vllm", max_input_tokens=512, max_output_tokens=128, vllm={"engine": {"max_model_len": 600}}
    )
    assert kind == INCOMPATIBLE
    assert "at least 640" in msg
    synthetic = {"synthetic": True, "input_tokens": 1000, "output_tokens": 100}
    kind, msg = _error(backend="vllm", dataset=synthetic, vllm={"engine": {"max_model_len": 1024}})
    assert "at least 1100" in msg
    assert _validate(backend="vllm", vllm={"engine": {"max_model_len": 640}})


def test_vllm_rejects_more_minimum_than_maximum_tokens() -> None:
    kind, msg = _error(backend="vllm", max_output_tokens=16, decoder={"min_new_tokens": 32})
    assert kind == INCOMPATIBLE
    assert "min_new_tokens (32)" in msg


def test_lora_merge_is_pytorch_only() -> None:
    for backend in ("vllm", "tensorrt"):
        kind, msg = _error(backend=backend, lora={"adapter": "a", "merge": True})
        assert kind == INCOMPATIBLE
        assert "merge" in msg
    assert _validate(backend="pytorch", lora={"adapter": "a", "merge": True})


def test_tensorrt_quantisation_needs_half_precision_and_maps_to_quant_algo() -> None:
    kind, _ = _error(backend="tensorrt", precision="fp32", tensorrt={"quantization": "w8a16"})
    assert kind == INCOMPATIBLE
    assert set(TENSORRT_QUANT_ALGO) == {"fp8", "int8_sq", "int4_awq", "w4a16", "w8a16", "nvfp4"}


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"max_input_len": 100}, "max_input_len (100) is shorter than prompts of 512"),
        ({"max_seq_len": 600}, "at least 640"),
        ({"max_input_len": 900, "max_seq_len": 800}, "larger than max_seq_len"),
        ({"engine_path": "/e", "max_batch_size": 8}, "fixed by that engine"),
        ({"calibration_dataset": "/c"}, "only used by quantization"),
        ({"calibration_dataset": "/c", "quantization": "w4a16"}, "only used by quantization"),
    ],
)
def test_tensorrt_engine_limits(section: dict[str, Any], fragment: str) -> None:
    kind, msg = _error(backend="tensorrt", precision="fp16", tensorrt=section)
    assert kind == INCOMPATIBLE
    assert fragment in msg


def test_prebuilt_engine_keeps_parallelism_and_runtime_knobs() -> None:
    cfg = _validate(
        backend="tensorrt", tensorrt={"engine_path": "/e", "tp_size": 2, "kv_cache_free_gpu_memory_fraction": 0.5}
    )
    assert cfg.device_count() == 2


def test_tensorrt_gpus_must_cover_tp_times_pp() -> None:
    kind, msg = _error(backend="tensorrt", tensorrt={"tp_size": 2, "pp_size": 2}, gpus=[0, 1])
    assert kind == INCOMPATIBLE
    assert "needs 4 GPU(s)" in msg


def test_valid_configs_break_no_rule() -> None:
    for cfg in (
        _validate(backend="vllm", decoder={"preset": "creative"}),
        _validate(backend="tensorrt", precision="bf16", tensorrt={"quantization": "fp8", "calibration_dataset": "/c"}),
        _validate(backend="pytorch"),
    ):
        assert backend_rule_violations(cfg) == []
