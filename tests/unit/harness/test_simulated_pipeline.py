"""The harness pipeline on simulated GPUs: the real adapter and meter over the simulated driver, a fake backend.

The driver runs on the fake clock: a ramp of 100 W + 10 W/s from t = 0. The baseline spans 0 → 30 s, the
window (20 batches × 0.5 s) opens at 32 s after 2 s of warmup (see test_pipeline for the fake timeline).
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from harness_fakes import FakeBackend, FakeClock
from test_pipeline import T0, config

from llenergymeasure.errors import PreFlightError
from llenergymeasure.harness.energy.device import PynvmlProvider
from llenergymeasure.harness.events import EventEmitter
from llenergymeasure.harness.pipeline import HarnessDeps, run_job
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.simulated_gpus import SimulatedGpuSpec
from llenergymeasure.simgpu import SimulatedNvml

SPEC = {"devices": [{"name": "Sim A", "power": {"kind": "ramp", "start_w": 100, "w_per_s": 10}}]}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def deps(clock: FakeClock, backends: list[list[int]], backend: FakeBackend) -> HarnessDeps:
    nvml = SimulatedNvml(SimulatedGpuSpec.model_validate(SPEC), clock=clock)

    def factory(cfg: object, ids: list[int]) -> FakeBackend:
        backends.append(list(ids))
        return backend

    return HarnessDeps(
        nvml=PynvmlProvider(nvml),
        backend_factory=factory,
        clock=clock,
        sleep=clock.sleep,
        now=lambda: T0 + timedelta(seconds=clock.t),
        apply_cuda_env=lambda env: pytest.fail(f"no CUDA environment on simulated GPUs: {env}"),
        simulated_gpus=True,
    )


def test_simulated_run_is_labelled_and_measured_from_the_traces(
    tmp_path: Path, model_dir: Path, clock: FakeClock
) -> None:
    cfg = config(model_dir, precision="bf16")
    backend = FakeBackend(cfg, None, [], clock=clock, seconds_per_batch=0.5)
    given: list[list[int]] = []
    job = ExperimentJob(config=cfg, context=RunContext(device_ids=[0], host_device_ids=[0]))
    result = run_job(job, tmp_path, EventEmitter(io.StringIO()), deps(clock, given, backend))

    assert given == [[]]  # the backend was given no CUDA device: it computes on CPU
    assert result.energy.source == "simulated"
    assert "simulated_gpu" in [w.code for w in result.measurement_warnings]
    # by hand: window 32 → 42 s on 100 + 10 t W → 10 s × (100 + 10 × 37) W = 4,700 J (counter: ±1 update of 20 ms)
    assert result.window_duration_s == pytest.approx(10.0)
    assert result.energy_total_j == pytest.approx(4700.0, abs=0.02 * 520)
    # baseline 0 → 30 s: mean 100 + 10 × 15 = 250 W; adjusted = 4,700 − 250 × 10 = 2,200 J
    assert result.baseline_power_w == pytest.approx(250.0, abs=0.02 * 400 / 30)
    assert result.energy_adjusted_j == pytest.approx(2200.0, abs=20.0)
    assert [d.method for d in result.energy.per_device] == ["counter"]
    assert result.environment_snapshot.gpus[0].name == "Sim A"


@pytest.mark.parametrize(
    ("overrides", "check"),
    [({"energy": {"backend": "zeus"}}, "energy"), ({"backend": "vllm"}, "backend")],
)
def test_what_cannot_run_on_simulated_gpus_fails_preflight(
    tmp_path: Path, model_dir: Path, clock: FakeClock, overrides: dict[str, object], check: str
) -> None:
    cfg = config(model_dir, **overrides)
    backend = FakeBackend(cfg, None, [], clock=clock)
    job = ExperimentJob(config=cfg, context=RunContext(device_ids=[0], host_device_ids=[0]))
    with pytest.raises(PreFlightError) as err:
        run_job(job, tmp_path, EventEmitter(io.StringIO()), deps(clock, [], backend))
    assert check in [f.check for f in err.value.failures]
    assert "simulated" in err.value.render()
