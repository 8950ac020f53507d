"""The vLLM and TensorRT-LLM example studies resolve to the expected grids (schema level, no CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llenergymeasure.errors import ConfigError
from llenergymeasure.schemas.sweep import resolve_study

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _load(name: str) -> dict[str, Any]:
    raw = yaml.safe_load((EXAMPLES / name).read_text())
    assert isinstance(raw, dict)
    return raw


def test_vllm_study_grid() -> None:
    study = resolve_study(_load("vllm-study.yaml"), source="vllm-study.yaml")
    # 3 max_num_seqs × 2 prefix-caching values = 6 grid points, + 2 valid explicit entries; 1 entry skipped
    assert len(study.experiments) == 8
    assert all(e.backend == "vllm" and e.precision == "bf16" for e in study.experiments)
    grid = [(e.vllm.engine.max_num_seqs, e.vllm.engine.enable_prefix_caching) for e in study.experiments[:6] if e.vllm]
    assert grid == [(16, True), (16, False), (64, True), (64, False), (256, True), (256, False)]
    assert all(e.vllm and e.vllm.engine.gpu_memory_utilization == 0.85 for e in study.experiments)  # shared section
    tp2 = study.experiments[6]
    assert tp2.device_count() == 2
    assert study.experiments[7].decoding_mode == "sampling"
    (skipped,) = study.skipped
    assert "temperature=2.5" in skipped.reason
    assert "[0.0, 2.0]" in skipped.reason
    assert study.execution.n_cycles == 3
    assert len(study.run_order()) == 24


def test_tensorrt_study_grid() -> None:
    study = resolve_study(_load("tensorrt-study.yaml"), source="tensorrt-study.yaml")
    # 3 precisions × 3 quantisations = 9, minus fp32 × {w8a16, w4a16} = 7, + 1 explicit tp=2 entry
    assert len(study.experiments) == 8
    points = [(e.precision, e.tensorrt.quantization) for e in study.experiments[:7] if e.tensorrt]
    assert points == [
        ("fp32", None), ("fp16", None), ("fp16", "w8a16"), ("fp16", "w4a16"),
        ("bf16", None), ("bf16", "w8a16"), ("bf16", "w4a16"),
    ]  # fmt: skip
    assert sorted(s.overrides["tensorrt.quantization"] for s in study.skipped) == ["w4a16", "w8a16"]
    assert all(s.overrides["precision"] == "fp32" for s in study.skipped)
    assert study.experiments[7].device_count() == 2
    assert all(e.tensorrt and e.tensorrt.max_batch_size == 64 for e in study.experiments)


def test_the_design_hash_separates_engine_settings() -> None:
    study = resolve_study(_load("tensorrt-study.yaml"))
    assert len({e.measurement_config_hash() for e in study.experiments}) == len(study.experiments)


def test_a_study_with_only_impossible_points_is_an_error() -> None:
    raw = {
        "model": "m",
        "backend": "tensorrt",
        "precision": "fp32",
        "sweep": {"tensorrt.quantization": ["w8a16", "int4_awq"]},
    }
    with pytest.raises(ConfigError) as err:
        resolve_study(raw)
    assert "no valid experiment" in err.value.message
    assert all("fp16/bf16 engines" in i.message for i in err.value.issues)


def test_a_non_incompatible_error_is_fatal_not_skipped() -> None:
    raw = {"model": "m", "backend": "vllm", "sweep": {"vllm.engine.quantization": ["awq", "nope"]}}
    with pytest.raises(ConfigError) as err:
        resolve_study(raw)
    # named as the file spells it, with the value that failed
    assert any(i.field == "sweep.vllm.engine.quantization" and "'nope'" in i.message for i in err.value.issues)


def test_vllm_points_of_a_mixed_sweep_are_skipped_by_vllm_rules_only() -> None:
    raw = {
        "model": "m",
        "sweep": {"backend": ["pytorch", "vllm"], "decoder.temperature": [1.0, 3.0]},
        "decoder": {"do_sample": True},
    }
    study = resolve_study(raw)
    kept = sorted((e.backend, e.decoder.temperature) for e in study.experiments)
    assert kept == [("pytorch", 1.0), ("pytorch", 3.0), ("vllm", 1.0)]
    (skipped,) = study.skipped
    assert skipped.overrides == {"backend": "vllm", "decoder.temperature": 3.0}
