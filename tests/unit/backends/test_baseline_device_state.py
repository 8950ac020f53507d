"""Every backend brings every device of its set into the window's CUDA state before the idle baseline."""

from __future__ import annotations

from typing import Any

import pytest
from backend_fakes import FakeSpawner, FakeVLLM, eos_after, trt_api, vllm_api

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.backends.context import CudaContextHolder
from llenergymeasure.harness.backends.tensorrt import TensorRTBackend
from llenergymeasure.harness.backends.vllm import VLLMBackend
from llenergymeasure.schemas.config.experiment import ExperimentConfig


def _vllm(devices: list[int], spawner: FakeSpawner) -> VLLMBackend:
    cfg = ExperimentConfig.model_validate({"model": "org/tiny", "backend": "vllm"})
    created: list[FakeVLLM] = []
    return VLLMBackend(cfg, cfg.vllm, devices, api_loader=vllm_api(eos_after(3), created), spawner=spawner)


def _trt(devices: list[int], spawner: FakeSpawner) -> TensorRTBackend:
    cfg = ExperimentConfig.model_validate({"model": "org/tiny", "backend": "tensorrt"})
    return TensorRTBackend(cfg, cfg.tensorrt, devices, api_loader=trt_api(lambda ids, kw: None, []), spawner=spawner)


@pytest.mark.parametrize("make", [_vllm, _trt])
def test_engine_backends_hold_a_cuda_context_on_every_device_during_the_baseline(make: Any) -> None:
    spawner = FakeSpawner()
    backend = make([0, 1, 2], spawner)
    assert backend.device_state == "no_cuda_context"
    backend.prepare_device()
    (proc,) = spawner.started
    # the helper gets the CUDA ordinal of every device of the set (0..n-1 once CUDA_VISIBLE_DEVICES lists the set)
    assert proc.argv[-3:] == ["0", "1", "2"]
    assert "torch.zeros(1, device=f'cuda:{i}')" in proc.argv[2]
    assert backend.device_state == "cuda_context"
    assert not proc.stdin.closed  # still held while the baseline runs
    backend.release_device()
    assert proc.stdin.closed and proc.waited  # released before the engine starts
    backend.release_device()  # idempotent
    assert len(spawner.started) == 1


@pytest.mark.parametrize("make", [_vllm, _trt])
def test_a_failed_context_is_recorded_as_no_cuda_context(make: Any) -> None:
    spawner = FakeSpawner(first_line="")  # the helper died before saying ready
    backend = make([0], spawner)
    backend.prepare_device()
    assert backend.device_state == "no_cuda_context"
    assert spawner.started[0].killed


def test_the_real_helper_holds_contexts_or_says_why_it_cannot() -> None:
    import torch

    holder = CudaContextHolder([0])  # the real subprocess: this interpreter, torch, the constant script
    if torch.cuda.is_available():
        holder.acquire()
        assert holder.held
        holder.release()
        assert not holder.held
    else:  # a host without CUDA: the helper dies before "ready" and the reason reaches the message
        with pytest.raises(BackendError) as err:
            holder.acquire()
        message = err.value.message
        assert message.startswith("could not create a CUDA context on devices [0] for the idle baseline: ")
        assert not holder.held


def test_without_gpus_nothing_is_spawned() -> None:
    spawner = FakeSpawner()
    holder = CudaContextHolder([], spawner)
    holder.acquire()
    assert spawner.started == [] and not holder.held
