"""VLLMBackend against a fake of its thin adapter (`VLLMApi`): the backend protocol end to end."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from backend_fakes import EOS, Clock, FakeRequestStateStats, FakeVLLM, eos_after, vllm_api

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.backends import create_backend
from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.backends.vllm import VLLMBackend, load_vllm
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def _cfg(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model": "org/tiny", "backend": "vllm", **fields})


def _backend(
    cfg: ExperimentConfig, created: list[FakeVLLM], responder: Any = None, clock: Clock | None = None
) -> VLLMBackend:
    return VLLMBackend(
        cfg, cfg.vllm, [0], api_loader=vllm_api(responder or eos_after(3), created), clock=clock or Clock(0.0, 1.0)
    )


def test_factory_builds_the_vllm_backend_without_importing_vllm() -> None:
    import sys

    backend = create_backend(_cfg(), [0])
    assert isinstance(backend, VLLMBackend)
    assert backend.name == "vllm"
    assert "vllm" not in sys.modules


def test_import_line_translates_a_missing_vllm() -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here: the missing-package path cannot be exercised")
    with pytest.raises(BackendError) as err:
        load_vllm()
    assert err.value.backend == "vllm"
    assert "not installed" in err.value.message
    assert err.value.fix


def test_load_starts_the_engine_with_the_mapped_arguments() -> None:
    created: list[FakeVLLM] = []
    backend = _backend(
        _cfg(precision="fp16", vllm={"engine": {"tensor_parallel_size": 1, "max_num_seqs": 32}}), created
    )
    backend.load()
    (llm,) = created
    assert llm.kwargs["dtype"] == "float16"
    assert llm.kwargs["max_num_seqs"] == 32
    assert llm.kwargs["disable_log_stats"] is False
    assert backend.versions() == {"vllm": "0.33.0"}
    assert any("max_num_seqs=32" in note for note in backend.reproducibility_notes())


def test_a_failing_engine_start_becomes_a_backend_error() -> None:
    cfg = _cfg()
    backend = VLLMBackend(
        cfg, None, [0], api_loader=vllm_api(eos_after(2), [], fail=ValueError("max_model_len too large"))
    )
    with pytest.raises(BackendError) as err:
        backend.load()
    assert "max_model_len too large" in err.value.message
    assert isinstance(err.value.__cause__, ValueError)


def test_no_gpu_is_refused_at_load_and_in_preflight() -> None:
    cfg = _cfg()
    backend = VLLMBackend(cfg, None, [], api_loader=vllm_api(eos_after(2), []))
    with pytest.raises(BackendError):
        backend.load()
    checks = [f.message for f in backend.preflight()]
    assert any("not installed" in m for m in checks)
    assert any("needs an NVIDIA GPU" in m for m in checks)


def test_prepare_tokenises_and_truncates_before_the_window() -> None:
    created: list[FakeVLLM] = []
    backend = _backend(_cfg(), created)
    backend.load()
    (short, cut) = backend.prepare([Prompt("a b", 8, max_input_tokens=4), Prompt("a b c d e f", 8, max_input_tokens=4)])
    # BOS + word ids, cut to 4 tokens (special tokens included)
    assert short.token_ids == (1, 10, 11)
    assert cut.token_ids is not None
    assert len(cut.token_ids) == 4
    assert backend.count_tokens("a b c") == 3
    assert backend.truncate("a b c d", 2) == "a b"
    assert backend.truncate("a b", 5) == "a b"


def test_generate_submits_every_prompt_in_one_call_and_counts_exactly() -> None:
    created: list[FakeVLLM] = []
    lengths = {4: [20, 21, EOS], 5: [20] * 8}  # keyed by prompt length: an early EOS and a full-length output
    backend = _backend(
        _cfg(), created, responder=lambda ids, kw: (lengths[len(ids)], None, None), clock=Clock(10.0, 12.5)
    )
    backend.load()
    prompts = backend.prepare([Prompt("a b c", 8), Prompt("a b c d", 8)])
    progress: list[tuple[int, int]] = []
    batch = backend.generate(prompts, on_progress=lambda done, total: progress.append((done, total)))
    (llm,) = created
    (call,) = llm.generate_calls
    assert call["prompts"] == [{"prompt_token_ids": [1, 10, 11, 12]}, {"prompt_token_ids": [1, 10, 11, 12, 13]}]
    assert [p.kwargs["max_tokens"] for p in call["sampling_params"]] == [8, 8]
    assert call["use_tqdm"] is False
    assert call["lora_request"] is None
    assert [(o.input_tokens, o.output_tokens) for o in batch.outputs] == [(4, 3), (5, 8)]
    assert batch.granularity == "batch"
    assert {o.latency_s for o in batch.outputs} == {2.5}
    assert progress == [(2, 2)]


def test_per_request_metrics_reach_the_batch() -> None:
    stats = FakeRequestStateStats(
        num_generation_tokens=3, first_token_ts=5.0, last_token_ts=5.2, first_token_latency=0.3
    )
    created: list[FakeVLLM] = []
    backend = _backend(_cfg(), created, responder=lambda ids, kw: ([7, 8, EOS], stats, 2))
    backend.load()
    batch = backend.generate([Prompt("x y", 4)])
    (out,) = batch.outputs
    assert batch.granularity == "request"
    assert (out.latency_s, out.ttft_s, out.itl_s) == (pytest.approx(0.5), pytest.approx(0.3), pytest.approx(0.1))
    assert backend.last_cached_prompt_tokens == 2


def test_lora_request_goes_with_the_generate_call() -> None:
    created: list[FakeVLLM] = []
    backend = _backend(_cfg(lora={"adapter": "/adapters/a"}), created)
    backend.load()
    backend.generate([Prompt("x", 2)])
    request = created[0].generate_calls[0]["lora_request"]
    assert (request.lora_name, request.lora_int_id, request.lora_path) == ("llem-adapter", 1, "/adapters/a")
    assert created[0].kwargs["enable_lora"] is True


def test_output_count_mismatch_is_an_error() -> None:
    created: list[FakeVLLM] = []
    backend = _backend(_cfg(), created)
    backend.load()
    created[0].generate = lambda prompts, params, **kw: []  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="0 outputs for 1 prompts"):
        backend.generate([Prompt("x", 2)])


def test_generate_before_load_is_an_error() -> None:
    with pytest.raises(BackendError):
        _backend(_cfg(), []).generate([Prompt("x", 2)])


def test_reseed_empties_the_prefix_cache_and_close_shuts_the_engine_down() -> None:
    created: list[FakeVLLM] = []
    backend = _backend(_cfg(), created)
    backend.load()
    backend.reseed(42)
    llm = created[0]
    assert llm.prefix_cache_resets == 1
    assert any("prefix cache emptied" in n for n in backend.reproducibility_notes())
    backend.close()
    assert llm.llm_engine.engine_core.shut_down


def test_preferred_batch_size_is_the_window_concurrency() -> None:
    assert _backend(_cfg(n=50), []).preferred_batch_size == 50
    assert _backend(_cfg(n=50, vllm={"engine": {"max_num_seqs": 16}}), []).preferred_batch_size == 16


def test_vllm_request_offsets_come_from_arrival_and_engine_timestamps() -> None:
    stats = iter(
        [  # arrival on the wall clock; first-token latency from arrival; decode span on the engine clock
            FakeRequestStateStats(
                arrival_time=1000.0, first_token_latency=0.5, first_token_ts=50.0, last_token_ts=52.0
            ),
            FakeRequestStateStats(
                arrival_time=1000.2, first_token_latency=0.4, first_token_ts=50.1, last_token_ts=51.1
            ),
        ]
    )
    cfg = ExperimentConfig.model_validate({"model": "org/tiny", "backend": "vllm"})
    created: list[FakeVLLM] = []
    backend = VLLMBackend(
        cfg, cfg.vllm, [0], api_loader=vllm_api(lambda ids, kw: ([7, 8, EOS], next(stats), 0), created)
    )
    backend.load()
    a, b = backend.generate([Prompt("x", 4), Prompt("y", 4)]).outputs
    # request a: first token 0.5 s after the first arrival, last 2 s later; b arrived 0.2 s later: 0.6 and 1.6
    assert (a.first_token_offset_s, a.end_offset_s) == (pytest.approx(0.5), pytest.approx(2.5))
    assert (b.first_token_offset_s, b.end_offset_s) == (pytest.approx(0.6), pytest.approx(1.6))
