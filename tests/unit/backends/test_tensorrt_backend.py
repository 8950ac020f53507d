"""TensorRTBackend against a fake of its thin adapter (`TensorRTApi`): build, cache, prebuilt, generate."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from backend_fakes import (
    Clock,
    FakeConfigObject,
    FakeQuantAlgo,
    FakeQuantConfig,
    FakeTrtCompletionOutput,
    FakeTrtLLM,
    timing,
    trt_api,
)

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.backends import create_backend
from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.backends.engine_cache import EngineCache
from llenergymeasure.harness.backends.tensorrt import TensorRTBackend, load_tensorrt_llm
from llenergymeasure.schemas.config.experiment import ExperimentConfig

GPU = "NVIDIA H100 sm90"


def _cfg(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model": "org/tiny", "backend": "tensorrt", "precision": "fp16", **fields})


def eos_after_two(ids: list[int], kw: dict[str, Any]) -> FakeTrtCompletionOutput:
    return FakeTrtCompletionOutput(
        0, token_ids=[30, 31], finish_reason="stop", request_perf_metrics=timing(1.0, 1.4, 1.6)
    )


def _backend(cfg: ExperimentConfig, cache: EngineCache, created: list[FakeTrtLLM], **kw: Any) -> TensorRTBackend:
    return TensorRTBackend(
        cfg, cfg.tensorrt, [0], api_loader=trt_api(kw.pop("responder", eos_after_two), created, **kw),
        gpu_identity=lambda: GPU, cache=cache, clock=Clock(0.0, 42.0, 100.0, 103.0),
    )  # fmt: skip


def test_factory_builds_the_tensorrt_backend_without_importing_it() -> None:
    import sys

    assert isinstance(create_backend(_cfg(), [0]), TensorRTBackend)
    assert "tensorrt_llm" not in sys.modules


def test_import_line_translates_a_missing_tensorrt_llm() -> None:
    if importlib.util.find_spec("tensorrt_llm") is not None:
        pytest.skip("tensorrt_llm is installed here: the missing-package path cannot be exercised")
    with pytest.raises(BackendError) as err:
        load_tensorrt_llm()
    assert err.value.backend == "tensorrt"
    assert err.value.fix


def test_first_run_builds_and_caches_then_the_next_run_loads_the_cache(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    cfg = _cfg(tensorrt={"quantization": "w4a16", "max_batch_size": 16})
    created: list[FakeTrtLLM] = []
    first = _backend(cfg, cache, created)
    first.load()
    (built,) = created
    assert built.kwargs["model"] == "org/tiny"
    assert built.kwargs["max_batch_size"] == 16
    assert built.kwargs["quant_config"] == FakeQuantConfig(quant_algo=FakeQuantAlgo.W4A16)
    info = first.engine_info
    assert info is not None
    assert info.source == "built"
    assert info.build_s == 42.0
    assert info.key is not None
    assert cache.lookup(info.key) == Path(str(info.path))
    assert any("built for this run in 42.0 s" in n for n in first.reproducibility_notes())

    second = _backend(cfg, cache, created)
    second.load()
    loaded = created[1]
    assert loaded.kwargs["model"] == str(cache.entry(info.key))
    assert loaded.kwargs["tokenizer"] == "org/tiny"
    assert "quant_config" not in loaded.kwargs
    assert "max_batch_size" not in loaded.kwargs
    assert second.engine_info is not None
    assert second.engine_info.source == "cache"
    assert loaded.saved_to == []


def test_a_different_build_setting_builds_a_new_engine(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    created: list[FakeTrtLLM] = []
    for quantization in ("w8a16", "w4a16"):
        _backend(_cfg(tensorrt={"quantization": quantization}), cache, created).load()
    assert [llm.kwargs["model"] for llm in created] == ["org/tiny", "org/tiny"]
    assert len([p for p in tmp_path.iterdir()]) == 2


def test_prebuilt_engine_path_skips_the_cache(tmp_path: Path) -> None:
    engine = tmp_path / "prebuilt"
    created: list[FakeTrtLLM] = []
    backend = _backend(_cfg(tensorrt={"engine_path": str(engine), "tp_size": 2}), EngineCache(tmp_path / "c"), created)
    assert any("no config.json" in f.message for f in backend.preflight())
    backend.load()
    assert created[0].kwargs["model"] == str(engine)
    assert created[0].kwargs["tensor_parallel_size"] == 2
    assert backend.engine_info is not None
    assert backend.engine_info.source == "prebuilt"
    assert not (tmp_path / "c").exists()


def test_a_failing_build_is_a_backend_error_and_caches_nothing(tmp_path: Path) -> None:
    backend = _backend(_cfg(), EngineCache(tmp_path), [], fail=RuntimeError("calibration needs the dataset hub"))
    with pytest.raises(BackendError) as err:
        backend.load()
    assert "could not build the engine" in err.value.message
    assert "dataset hub" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_sub_configs_become_framework_objects(tmp_path: Path) -> None:
    cfg = _cfg(
        tensorrt={"quantization": "int8_sq", "calibration_dataset": "/calib", "kv_cache_free_gpu_memory_fraction": 0.7},
        lora={"adapter": "/a"},
    )
    created: list[FakeTrtLLM] = []
    backend = _backend(cfg, EngineCache(tmp_path), created)
    backend.load()
    kwargs = created[0].kwargs
    assert kwargs["quant_config"] == FakeQuantConfig(quant_algo=FakeQuantAlgo.W8A8_SQ_PER_CHANNEL)
    assert kwargs["calib_config"] == FakeConfigObject({"calib_dataset": "/calib"})
    assert kwargs["kv_cache_config"] == FakeConfigObject({"free_gpu_memory_fraction": 0.7})
    assert kwargs["lora_config"] == FakeConfigObject({"lora_dir": ["/a"]})
    assert kwargs["enable_lora"] is True


def test_generate_counts_eos_and_reads_perf_metrics(tmp_path: Path) -> None:
    created: list[FakeTrtLLM] = []
    backend = _backend(_cfg(lora={"adapter": "/a"}), EngineCache(tmp_path), created)
    backend.load()
    prompts = backend.prepare([Prompt("a b c", 16, max_input_tokens=3), Prompt("a", 16)])
    batch = backend.generate(prompts)
    (call,) = created[0].generate_calls
    assert call["inputs"] == [[1, 10, 11], [1, 10]]  # token ids, BOS included, cut to 3
    assert [p.kwargs["max_tokens"] for p in call["sampling_params"]] == [16, 16]
    assert (call["lora_request"].lora_path, call["use_tqdm"]) == ("/a", False)
    assert [(o.input_tokens, o.output_tokens) for o in batch.outputs] == [(3, 3), (2, 3)]  # 2 tokens + dropped EOS
    assert batch.granularity == "request"
    out = batch.outputs[0]
    assert (out.latency_s, out.ttft_s, out.itl_s) == (pytest.approx(0.6), pytest.approx(0.4), pytest.approx(0.1))


def test_without_perf_metrics_latency_is_the_window(tmp_path: Path) -> None:
    created: list[FakeTrtLLM] = []
    no_metrics = lambda ids, kw: FakeTrtCompletionOutput(0, token_ids=[5] * 4, finish_reason="length")  # noqa: E731
    backend = _backend(_cfg(), EngineCache(tmp_path), created, responder=no_metrics)
    backend.load()  # clock readings 0 → 42 for the build
    batch = backend.generate([Prompt("x", 4)])  # 100 → 103
    assert batch.granularity == "batch"
    assert batch.outputs[0].latency_s == 3.0
    assert batch.outputs[0].output_tokens == 4


def test_tokenizer_helpers_close_and_batch_size(tmp_path: Path) -> None:
    created: list[FakeTrtLLM] = []
    backend = _backend(_cfg(n=100, tensorrt={"max_batch_size": 32}), EngineCache(tmp_path), created)
    with pytest.raises(BackendError):
        backend.count_tokens("a")
    backend.load()
    assert backend.count_tokens("a b c") == 3
    assert backend.truncate("a b c", 2) == "a b"
    assert backend.preferred_batch_size == 32
    assert backend.versions() == {"tensorrt_llm": "1.2.1"}
    backend.close()
    assert created[0].shut_down


def test_no_gpu_is_refused(tmp_path: Path) -> None:
    cfg = _cfg()
    backend = TensorRTBackend(cfg, None, [], api_loader=trt_api(eos_after_two, []), cache=EngineCache(tmp_path))
    with pytest.raises(BackendError, match="needs an NVIDIA GPU"):
        backend.load()


def test_an_unwritable_cache_is_a_backend_error_and_the_built_engine_is_shut_down(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    created: list[FakeTrtLLM] = []
    backend = _backend(_cfg(), EngineCache(blocker / "engines"), created)
    with pytest.raises(BackendError) as err:
        backend.load()
    assert "could not save the built engine" in err.value.message
    assert created[0].shut_down
