"""The TensorRT engine cache: a pure hash over what shapes the engine, and atomic publication."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.harness.backends.engine_cache import (
    MARKER_FILE,
    EngineCache,
    engine_cache_root,
    engine_hash,
    engine_key_inputs,
)
from llenergymeasure.schemas._base import sha256_16
from llenergymeasure.schemas.config.experiment import ExperimentConfig

BASE: dict[str, Any] = {"model": "org/tiny", "backend": "tensorrt", "precision": "fp16"}


def _key(overrides: dict[str, Any], version: str = "1.2.1", gpu: str = "NVIDIA H100 sm90") -> str:
    cfg = ExperimentConfig.model_validate({**BASE, **overrides})
    return engine_hash(engine_key_inputs(cfg, tensorrt_llm_version=version, gpu=gpu))


def test_hash_is_sha256_16_of_the_documented_inputs() -> None:
    cfg = ExperimentConfig.model_validate(BASE)
    inputs = engine_key_inputs(cfg, tensorrt_llm_version="1.2.1", gpu="g")
    assert set(inputs) == {"model", "build", "passthrough_kwargs", "tensorrt_llm_version", "gpu"}
    assert engine_hash(inputs) == sha256_16(inputs)
    assert len(engine_hash(inputs)) == 16
    assert _key({}) == _key({})  # pure: same inputs, same key


@pytest.mark.parametrize(
    "change",
    [
        {"model": "org/other"},
        {"precision": "bf16"},
        {"tensorrt": {"quantization": "w8a16"}},
        {"tensorrt": {"kv_cache_quantization": "fp8"}},
        {"tensorrt": {"tp_size": 2}},
        {"tensorrt": {"pp_size": 2}},
        {"tensorrt": {"max_batch_size": 8}},
        {"tensorrt": {"max_input_len": 1000}},
        {"tensorrt": {"max_seq_len": 4000}},
        {"tensorrt": {"max_num_tokens": 2048}},
        {"max_input_tokens": 1024},  # changes the default max_input_len
        {"max_output_tokens": 256},  # changes the default max_seq_len
        {"lora": {"adapter": "/a"}},
        {"passthrough_kwargs": {"max_beam_width": 2}},
    ],
)
def test_build_affecting_fields_change_the_hash(change: dict[str, Any]) -> None:
    assert _key(change) != _key({})


def test_framework_version_and_gpu_change_the_hash() -> None:
    assert _key({}, version="1.2.0") != _key({})
    assert _key({}, gpu="NVIDIA A100 sm80") != _key({})


@pytest.mark.parametrize(
    "change",
    [
        {"n": 10},
        {"random_seed": 1},
        {"decoder": {"do_sample": True, "temperature": 0.5}},
        {"warmup": {"n_warmup": 1}},
        {"dataset": "prompts.jsonl"},
        {"tensorrt": {"kv_cache_free_gpu_memory_fraction": 0.5}},
        {"tensorrt": {"enable_kv_cache_reuse": False}},
        {"tensorrt": {"enable_chunked_prefill": True}},
        {"gpus": [3]},
    ],
)
def test_runtime_only_fields_keep_the_hash(change: dict[str, Any]) -> None:
    assert _key(change) == _key({})


def test_cache_root_comes_from_the_environment_else_home(tmp_path: Path) -> None:
    assert engine_cache_root({"LLEM_TRT_ENGINE_CACHE": "/mnt/engines"}, tmp_path) == Path("/mnt/engines")
    assert engine_cache_root({}, tmp_path) == tmp_path / ".llenergymeasure" / "trt-engines"


def _write_engine(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "rank0.engine").write_bytes(b"x")


def test_publish_then_lookup(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    assert cache.lookup("abc") is None
    path = cache.publish("abc", {"model": "m"}, _write_engine)
    assert path == tmp_path / "engines" / "abc"
    assert cache.lookup("abc") == path
    assert json.loads((path / MARKER_FILE).read_text())["inputs"] == {"model": "m"}
    assert cache.read_inputs("abc") == {"model": "m"}
    assert [p.name for p in (tmp_path / "engines").iterdir()] == ["abc"]  # no staging left


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)

    def crash(path: Path) -> None:
        path.mkdir()
        (path / "rank0.engine").write_bytes(b"half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cache.publish("abc", {}, crash)
    with pytest.raises(FileNotFoundError):
        cache.publish("abc", {}, lambda p: p.mkdir())  # wrote no config.json
    assert cache.lookup("abc") is None
    assert list(tmp_path.iterdir()) == []


def test_an_incomplete_entry_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "abc").mkdir()
    (tmp_path / "abc" / "config.json").write_text("{}")  # no marker: a copy interrupted by hand, say
    cache = EngineCache(tmp_path)
    assert cache.lookup("abc") is None
    assert cache.publish("abc", {"v": 1}, _write_engine) == tmp_path / "abc"
    assert cache.read_inputs("abc") == {"v": 1}
