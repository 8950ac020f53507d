"""On a real NVIDIA GPU: NVML readings and a measured run of the tiny model (skipped where NVML sees no GPU)."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llenergymeasure.harness.energy.device import MeasuredDevice, open_nvml
from llenergymeasure.harness.energy.nvml import NvmlMeter
from llenergymeasure.harness.energy.sampler import PowerSampler
from llenergymeasure.harness.energy.sampler_process import ChildDevices

pytestmark = pytest.mark.gpu


def test_real_counter_and_instant_power() -> None:
    provider = open_nvml()
    assert provider is not None
    try:
        dev = provider.device(0)
        devices = [MeasuredDevice(0, dev.uuid, dev)]
        driver = provider.sampler_driver()  # {"kind": "nvml"} on a GPU host
        assert driver is not None
        child = ChildDevices(driver=driver, device_ids=[0], host_ids=[0])
        sampler = PowerSampler(devices, 0.05, child=child)  # ticks in the sampler process, as in a run
        meter = NvmlMeter(devices, sampler)
        sampler.start()
        meter.start_window()
        time.sleep(2.0)
        window = meter.stop_window()
        sampler.stop()
        assert dev.energy_mj() is not None, "Volta or newer exposes the total energy counter"
        assert window.method == "counter"
        assert window.energy_j is not None
        idle_w = window.energy_j / window.duration_s
        assert 5.0 < idle_w < 1500.0
        # distinct counter values seen in the 2 s window (the set-level `counter_updates` is only set when the
        # counter, not the 50 ms reads, limited the count)
        (device_window,) = window.per_device
        assert (device_window.counter_updates or 0) >= 5
        assert sampler.background == "process"
        powers = [s.power_w for s in sampler.samples() if s.power_w is not None]
        assert len(powers) >= 30, "NVML_FI_DEV_POWER_INSTANT is readable from the sampler process, every 50 ms"
    finally:
        provider.close()


@pytest.mark.cuda
def test_measured_run_of_the_tiny_model(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llenergymeasure import run_experiment

    monkeypatch.setenv("LLEM_RUNNER_PYTORCH", "local")
    (tmp_path / "none.yaml").write_text("")  # an empty user config: the defaults
    monkeypatch.setenv("LLEM_CONFIG", str(tmp_path / "none.yaml"))
    result = run_experiment(
        {
            "model": str(tiny_model_dir),
            "dataset": {"synthetic": True, "input_tokens": 64, "output_tokens": 64},
            "n": 64,
            "precision": "fp16",
            "pytorch": {"batch_size": 8},
            "warmup": {"n_warmup": 2, "thermal_floor_seconds": 2},
            "baseline": {"duration_seconds": 3},
        },
        output_dir=tmp_path / "out",
    )
    assert (result.device, result.effective_precision) == ("cuda", "fp16")
    assert result.energy.method == "counter"
    assert result.energy_total_j is not None
    assert result.energy_total_j > 0
    assert result.baseline_power_w is not None
    assert result.energy_adjusted_j is not None
    assert result.energy_per_output_token_j == pytest.approx(result.energy_total_j / result.output_tokens)
    assert result.memory is not None
    assert result.memory.peak_allocated_mb is not None
    assert result.environment_snapshot.gpus
    assert result.thermal.temperature_start_c is not None
    (run_dir,) = (tmp_path / "out").iterdir()
    table = pq.read_table(run_dir / "timeseries.parquet")
    assert table.num_rows > 0
    assert table.schema.metadata[b"llem.sampler"] == b"process"
    print(
        f"tiny model on {result.environment_snapshot.gpus[0].name}: {result.energy_per_output_token_j:.4g} J/output token"
    )
