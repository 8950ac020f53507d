"""The device set of an experiment: which GPUs are measured, which are refused, what is flagged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from llenergymeasure.errors import PreFlightError
from llenergymeasure.harness.devices import (
    DeviceSet,
    cuda_environment,
    device_set_warnings,
    mig_warnings,
    required_device_count,
    resolve_device_set,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig


@dataclass
class FakeGPU:
    uuid: str
    mig: bool | None = False

    def mig_mode(self) -> bool | None:
        return self.mig


class FakeProvider:
    """Shaped like energy.device.NvmlProvider: device_count() and device(index)."""

    def __init__(self, *gpus: FakeGPU) -> None:
        self.gpus = list(gpus)
        self.opened: list[int] = []

    def device_count(self) -> int:
        return len(self.gpus)

    def device(self, index: int) -> FakeGPU:
        self.opened.append(index)
        return self.gpus[index]


def _gpus(n: int, mig: dict[int, bool] | None = None) -> FakeProvider:
    return FakeProvider(*(FakeGPU(f"GPU-{i}", (mig or {}).get(i, False)) for i in range(n)))


def _cfg(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model": "m", **fields})


def test_tensor_parallel_two_measures_two_gpus_with_host_indices() -> None:
    cfg = _cfg(backend="vllm", vllm={"engine": {"tensor_parallel_size": 2}})
    devices = resolve_device_set(cfg, [0, 1], _gpus(2), host_device_ids=[4, 6])
    assert devices == DeviceSet((0, 1), (4, 6), ("GPU-0", "GPU-1"), (False, False), ())
    assert devices.host_index(1) == 6
    assert not devices.is_cpu
    assert device_set_warnings(devices) == []


def test_tp_times_pp_sets_the_size_and_extra_gpus_are_not_measured() -> None:
    cfg = _cfg(backend="tensorrt", tensorrt={"tp_size": 2, "pp_size": 2})
    provider = _gpus(6)
    devices = resolve_device_set(cfg, [0, 1, 2, 3, 4, 5], provider)
    assert devices.device_ids == (0, 1, 2, 3)
    assert devices.unused_device_ids == (4, 5)
    assert provider.opened == [0, 1, 2, 3]  # the unused GPUs are never even opened
    (note,) = device_set_warnings(devices)
    assert note.code == "unused_gpus"
    assert note.severity == "info"
    assert "[4, 5]" in note.message


def test_too_few_gpus_is_a_preflight_failure() -> None:
    cfg = _cfg(backend="vllm", vllm={"engine": {"tensor_parallel_size": 4}})
    with pytest.raises(PreFlightError) as err:
        resolve_device_set(cfg, [0, 1], _gpus(2))
    (failure,) = err.value.failures
    assert "needs 4 GPU(s)" in failure.message
    assert "given 2" in failure.message
    assert failure.fix


def test_unknown_and_duplicate_indices_are_refused() -> None:
    with pytest.raises(PreFlightError, match="1 pre-flight check"):
        resolve_device_set(_cfg(), [3], _gpus(2))
    with pytest.raises(PreFlightError):
        resolve_device_set(_cfg(), [0, 0], _gpus(2))
    with pytest.raises(PreFlightError):
        resolve_device_set(_cfg(), [0, 1], _gpus(2), host_device_ids=[5])


def test_gpu_backends_need_a_gpu_and_pytorch_runs_on_cpu() -> None:
    for cfg in (_cfg(backend="vllm"), _cfg(backend="tensorrt")):
        with pytest.raises(PreFlightError) as err:
            resolve_device_set(cfg, [], _gpus(0))
        assert "none were given" in err.value.render()
    cpu = resolve_device_set(_cfg(backend="pytorch", precision="fp32"), [], None)
    assert cpu.is_cpu
    assert cpu.device_ids == ()


def test_gpus_without_nvml_cannot_be_measured() -> None:
    with pytest.raises(PreFlightError) as err:
        resolve_device_set(_cfg(), [0], None)
    assert "NVML is unavailable" in err.value.render()


def test_mig_is_flagged_or_refused() -> None:
    cfg = _cfg(backend="vllm", vllm={"engine": {"tensor_parallel_size": 2}})
    devices = resolve_device_set(cfg, [0, 1], _gpus(2, mig={1: True}), host_device_ids=[2, 3])
    (warning,) = mig_warnings(devices)
    assert warning.code == "mig_enabled"
    assert warning.severity == "warning"
    assert "GPU 3" in warning.message
    with pytest.raises(PreFlightError) as err:
        resolve_device_set(cfg, [0, 1], _gpus(2, mig={1: True}), host_device_ids=[2, 3], refuse_mig=True)
    assert "GPU(s) [3] have MIG enabled" in err.value.render()


def test_unknown_mig_mode_is_not_flagged() -> None:
    devices = resolve_device_set(_cfg(), [0], FakeProvider(FakeGPU("GPU-0", None)))
    assert devices.mig_enabled == (None,)
    assert mig_warnings(devices) == []


def test_pytorch_size_follows_gpus_or_a_spreading_device_map() -> None:
    assert required_device_count(_cfg(), 4) == 1
    assert required_device_count(_cfg(gpus=[0, 1, 2]), 3) == 3
    assert required_device_count(_cfg(pytorch={"device_map": "auto"}), 4) == 4
    assert required_device_count(_cfg(pytorch={"device_map": "cuda:0"}), 4) == 1
    devices = resolve_device_set(_cfg(pytorch={"device_map": "auto"}), [0, 1, 2], _gpus(3))
    assert devices.device_ids == (0, 1, 2)


def test_cuda_environment_numbers_exactly_the_measured_gpus() -> None:
    devices = DeviceSet((0, 2), (5, 7), ("a", "b"), (False, False))
    assert cuda_environment(devices) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,2"}
