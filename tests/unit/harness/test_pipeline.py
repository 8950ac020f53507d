"""The whole harness pipeline with fakes of our interfaces: a fake GPU with a known trace, a fake backend, a fake clock."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from harness_fakes import FakeBackend, FakeClock, FakeNvmlDevice, FakeProvider, PowerTrace

from llenergymeasure.errors import PreFlightError
from llenergymeasure.harness.backends.base import GenerationBatch, ProgressCallback, Prompt, RequestOutput
from llenergymeasure.harness.events import EventEmitter
from llenergymeasure.harness.pipeline import HarnessDeps, run_job
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.events import parse_event_line
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.results import ExperimentResult

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
IDLE_W, LOAD_W = 60.0, 250.0


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def config(model_dir: Path, **overrides: object) -> ExperimentConfig:
    data: dict[str, object] = {
        "model": str(model_dir),
        "dataset": {"synthetic": True, "input_tokens": 8, "output_tokens": 16},
        "n": 20,
        "warmup": {"n_warmup": 2, "thermal_floor_seconds": 2.0},
        "baseline": {"duration_seconds": 30.0},
        "energy": {"backend": "nvml"},
    }
    data.update(overrides)
    return ExperimentConfig.model_validate(data)


def run(job: ExperimentJob, results: Path, deps: HarnessDeps) -> tuple[ExperimentResult, list[object]]:
    stream = io.StringIO()
    result = run_job(job, results, EventEmitter(stream), deps)
    events = [parse_event_line(line) for line in stream.getvalue().splitlines()]
    assert all(e is not None for e in events), "every stdout line must be an event"
    return result, events


def test_gpu_run_energy_baseline_and_files(tmp_path: Path, model_dir: Path, clock: FakeClock) -> None:
    # idle 60 W while the baseline is measured (t = 0 … 30 s), 250 W of load from 30.05 s on
    trace = PowerTrace.steps((0.0, IDLE_W), (30.05, LOAD_W))
    device = FakeNvmlDevice(trace, clock, uuid="GPU-3", persistence=False, pids=[4242])
    backend = FakeBackend(config(model_dir), None, [0], clock=clock, seconds_per_batch=0.5)
    deps = HarnessDeps(
        nvml=FakeProvider([device]),
        backend_factory=lambda cfg, ids: backend,
        clock=clock,
        sleep=clock.sleep,
        now=lambda: T0 + timedelta(seconds=clock.t),
    )
    context = RunContext(device_ids=[0], host_device_ids=[3], carbon_intensity_gco2_per_kwh=400.0, datacenter_pue=1.2)
    job = ExperimentJob(config=config(model_dir), context=context)
    result, events = run(job, tmp_path, deps)

    # timeline of the fake clock: baseline 0 → 30 s; warmup 2 × 0.5 s + thermal floor to 2 s → 32 s; window 20 × 0.5 s
    assert result.window_duration_s == pytest.approx(10.0)
    assert result.output_tokens == 20 * 16
    assert result.input_tokens == 20 * 8  # synthetic prompts cut to exactly input_tokens by prepare()
    assert result.output_tokens_per_s == pytest.approx(32.0)
    # by hand: 250 W × 10 s = 2,500 J; baseline 60 W × 10 s = 600 J → 1,900 J adjusted
    assert result.energy_total_j == pytest.approx(2500.0, rel=1e-6)
    assert result.baseline_power_w == pytest.approx(IDLE_W, rel=1e-6)
    assert result.energy_adjusted_j == pytest.approx(1900.0, rel=1e-6)
    assert result.energy_per_output_token_j == pytest.approx(2500.0 / 320)
    assert result.energy_per_output_token_adjusted_j == pytest.approx(1900.0 / 320)
    # CO2 by hand: 2,500 J = 2500 / 3.6e6 kWh = 6.944e-4 kWh × 400 g/kWh × PUE 1.2 = 0.33333 g
    assert result.co2 is not None
    assert result.co2.co2_g == pytest.approx(2500 / 3.6e6 * 400 * 1.2, rel=1e-6)
    assert result.co2.co2_g == pytest.approx(0.333333, rel=1e-5)
    assert (result.co2.method, result.co2.carbon_intensity_gco2_per_kwh, result.co2.datacenter_pue) == (
        "estimated",
        400.0,
        1.2,
    )
    assert result.energy_per_total_token_j == pytest.approx(2500.0 / (320 + 160))
    e = result.energy
    assert (e.method, e.source, e.baseline.method, e.baseline.energy_method) == (
        "counter",
        "nvml",
        "measured",
        "counter",
    )
    assert e.baseline_energy_j == pytest.approx(600.0, rel=1e-6)
    assert [(d.device_index, d.device_uuid, d.method) for d in e.per_device] == [(3, "GPU-3", "counter")]
    assert e.timeline_energy_j == pytest.approx(2500.0, rel=1e-3)
    assert abs(e.timeline_vs_counter_pct or 0.0) < 0.1
    assert result.device_ids == [3]
    assert result.thermal.temperature_start_c == pytest.approx(40.32)
    assert result.thermal.temperature_end_c == pytest.approx(40.42)
    assert result.thermal.throttled is False
    assert result.thermal.thermal_floor_s == pytest.approx(2.0)
    assert result.warmup is not None
    assert result.warmup.iterations_completed == 4
    assert result.flops is not None
    # 2 × body 1e6 × (160 + 320) tokens + 2 × output projection 1e5 × 320 output tokens
    assert result.flops.total_flops == 2 * 1_000_000 * 480 + 2 * 100_000 * 320
    assert result.latency is not None
    assert result.latency.p50_ms == pytest.approx(500.0)
    assert result.measurement_methodology == "total"
    codes = {w.code for w in result.measurement_warnings}
    assert {"persistence_mode_off", "foreign_processes"} <= codes
    # the counter changed between the only two reads (the edges; the fake clock stands still for the sampler):
    # the reads, not the counter, limited the count, so a 10 s window is not flagged as coarse
    assert "short_window" not in codes
    assert "stale_baseline" not in codes
    assert result.environment_snapshot.driver_version == "550.54.15"
    assert [g.uuid for g in result.environment_snapshot.gpus] == ["GPU-3"]
    # the context came up before the baseline, what only the baseline needed was released before the model loaded
    assert backend.events == ["prepare_device", "release_device", "load"]
    b = e.baseline
    # the baseline ran from t = 0 to 30 s: the fake GPU is at 40 + t / 100 °C, so 40.3 °C at its end
    assert (b.meter, b.device_state, b.temperature_c) == ("nvml", "cuda_context", pytest.approx(40.30))
    assert "baseline_without_cuda_context" not in codes

    on_disk = ExperimentResult.model_validate_json((tmp_path / "result.json").read_text())
    assert on_disk == result
    table = pq.read_table(tmp_path / "timeseries.parquet")
    assert set(table.column("device_uuid").to_pylist()) == {"GPU-3"}
    assert result.timeseries_file == "timeseries.parquet"

    kinds = [getattr(ev, "event", None) for ev in events]
    phases = [ev.phase for ev in events if getattr(ev, "event", None) == "phase_started"]  # type: ignore[union-attr]
    assert phases == [
        "preflight",
        "environment",
        "dataset",
        "baseline",
        "load",
        "warmup",
        "measure",
        "metrics",
        "write",
    ]
    assert kinds.index("window_started") < kinds.index("window_finished") < kinds.index("result_written")
    assert "warmup_progress" in kinds
    assert "prompts_progress" in kinds
    assert "warning" in kinds


def test_cpu_run_has_null_energy_and_a_warning(tmp_path: Path, model_dir: Path, clock: FakeClock) -> None:
    cfg = config(model_dir, energy={"backend": "auto"})
    backend = FakeBackend(cfg, None, [], clock=clock)
    deps = HarnessDeps(nvml=None, backend_factory=lambda c, ids: backend, clock=clock, sleep=clock.sleep)
    result, _ = run(ExperimentJob(config=cfg), tmp_path, deps)
    assert result.energy_total_j is None
    assert result.energy_adjusted_j is None
    assert result.energy_per_output_token_j is None
    assert result.co2 is None  # no energy, no intensity: no estimate, never a zero
    assert (result.energy.method, result.energy.source, result.energy.baseline.method) == (
        "unavailable",
        "none",
        "unavailable",
    )
    assert "no_energy_meter" in [w.code for w in result.measurement_warnings]
    assert result.timeseries_file is None
    assert not (tmp_path / "timeseries.parquet").exists()
    assert json.loads((tmp_path / "result.json").read_text())["energy_total_j"] is None


def test_preflight_reports_every_failure_at_once(tmp_path: Path, clock: FakeClock) -> None:
    cfg = ExperimentConfig(model=str(tmp_path / "no-such-model"), dataset=str(tmp_path / "missing.jsonl"))
    backend = FakeBackend(cfg, None, [0, 1], clock=clock)
    device = FakeNvmlDevice(PowerTrace(((0.0, 50.0),)), clock)
    deps = HarnessDeps(nvml=FakeProvider([device]), backend_factory=lambda c, ids: backend, clock=clock)
    stream = io.StringIO()
    emitter = EventEmitter(stream)
    with pytest.raises(PreFlightError) as err:
        run_job(ExperimentJob(config=cfg, context=RunContext(device_ids=[0, 1])), tmp_path, emitter, deps)
    checks = {f.check for f in err.value.failures}
    assert {"device_set", "dataset", "model"} <= checks
    assert emitter.current_phase == "preflight"
    assert backend.events == []  # nothing was touched
    assert not (tmp_path / "result.json").exists()


def test_vram_estimate_against_free_memory(tmp_path: Path, clock: FakeClock) -> None:
    import torch
    from safetensors.torch import save_file  # writes a real safetensors header

    model = tmp_path / "big"
    model.mkdir()
    (model / "config.json").write_text("{}")
    save_file({"w": torch.zeros(1024, 1024)}, str(model / "model.safetensors"))  # 1 Mi params
    cfg = config(model, precision="fp32")
    backend = FakeBackend(cfg, None, [0], clock=clock)
    # 1 Mi params × 4 B × 1.2 = 4.8 MiB needed; the fake GPU has 3 MiB free
    device = FakeNvmlDevice(PowerTrace(((0.0, 50.0),)), clock, memory_total=10.0, memory_used=7.0)
    deps = HarnessDeps(nvml=FakeProvider([device]), backend_factory=lambda c, ids: backend, clock=clock)
    with pytest.raises(PreFlightError) as err:
        run_job(ExperimentJob(config=cfg, context=RunContext(device_ids=[0])), tmp_path, EventEmitter(None), deps)
    assert [f.check for f in err.value.failures] == ["vram"]
    message = err.value.failures[0].message
    assert "about 5 MiB" in message
    assert "3 MiB free" in message


def test_a_backend_missing_from_the_image_is_a_preflight_failure(tmp_path: Path, model_dir: Path) -> None:
    from llenergymeasure.errors import BackendError

    def missing(cfg: object, ids: object) -> FakeBackend:
        raise BackendError("the vllm backend is not available in this installation", fix="use the vllm image")

    deps = HarnessDeps(nvml=None, backend_factory=missing)
    with pytest.raises(PreFlightError) as err:
        run_job(ExperimentJob(config=config(model_dir, energy={"backend": "auto"})), tmp_path, EventEmitter(None), deps)
    assert [(f.check, f.fix) for f in err.value.failures] == [("backend", "use the vllm image")]


def test_only_the_device_set_is_measured_and_cuda_numbers_it(tmp_path: Path, model_dir: Path, clock: FakeClock) -> None:
    trace = PowerTrace(((0.0, 100.0),))
    gpus = [FakeNvmlDevice(trace, clock, uuid=f"GPU-{i}") for i in range(3)]
    given: list[list[int]] = []
    env: dict[str, str] = {}

    def factory(cfg: ExperimentConfig, ids: list[int]) -> FakeBackend:
        given.append(list(ids))
        return FakeBackend(cfg, None, ids, clock=clock)

    cfg = config(model_dir, warmup={"n_warmup": 1, "thermal_floor_seconds": 0}, baseline={"duration_seconds": 1.0})
    deps = HarnessDeps(
        nvml=FakeProvider(gpus), backend_factory=factory, clock=clock, sleep=clock.sleep, apply_cuda_env=env.update
    )
    job = ExperimentJob(config=cfg, context=RunContext(device_ids=[1, 2, 0], host_device_ids=[5, 6, 4]))
    result, _ = run(job, tmp_path, deps)
    # pytorch without device_map uses one GPU: the first of the job's, container index 1 = host index 5
    assert env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}
    assert given == [[0]]  # CUDA ordinal 0 is that GPU once CUDA_VISIBLE_DEVICES lists only it
    assert result.device_ids == [5]
    assert [(d.device_index, d.device_uuid) for d in result.energy.per_device] == [(5, "GPU-1")]
    assert "unused_gpus" in [w.code for w in result.measurement_warnings]


def test_the_result_records_the_config_as_submitted(tmp_path: Path, model_dir: Path, clock: FakeClock) -> None:
    ran = config(model_dir, energy={"backend": "auto"}, warmup={"enabled": False})
    host_copy = tmp_path / "host" / "path" / "to" / "model"
    shutil.copytree(model_dir, host_copy)  # the host's directory: same files, another path
    submitted = ran.model_copy(update={"model": str(host_copy)})
    results_dir = tmp_path / "out"
    results_dir.mkdir()
    deps = HarnessDeps(backend_factory=lambda c, ids: FakeBackend(c, None, ids, clock=clock), clock=clock)
    job = ExperimentJob(config=ran, context=RunContext(submitted_config=submitted))
    result, _ = run(job, results_dir, deps)
    assert result.config == submitted
    assert result.measurement_config_hash == submitted.measurement_config_hash() == ran.measurement_config_hash()


def test_warmup_never_sees_a_window_prompt(tmp_path: Path, model_dir: Path, clock: FakeClock) -> None:
    rows = "".join(json.dumps({"prompt": f"prompt number {i}"}) + "\n" for i in range(50))
    (tmp_path / "d.jsonl").write_text(rows)
    cfg = config(
        model_dir,
        dataset=str(tmp_path / "d.jsonl"),
        n=10,
        warmup={"n_warmup": 3, "thermal_floor_seconds": 0},
        energy={"backend": "auto"},
    )
    backend = FakeBackend(cfg, None, [], clock=clock, batch_size=2)
    deps = HarnessDeps(nvml=None, backend_factory=lambda c, ids: backend, clock=clock, sleep=clock.sleep)
    run(ExperimentJob(config=cfg), tmp_path, deps)
    *warmup_calls, window_call = backend.seen
    assert len(warmup_calls) == 3 and len(window_call) == 10
    warmed = {t for call in warmup_calls for t in call}
    assert warmed and warmed.isdisjoint(window_call)


class _ContinuousBatchingBackend(FakeBackend):
    """One call for all prompts, like vLLM: request i decodes from 0.1·i s to 10 + 0.1·i s, 101 tokens."""

    def generate(self, prompts: Sequence[Prompt], on_progress: ProgressCallback | None = None) -> GenerationBatch:
        self.clock.advance(10.9 if len(prompts) == 10 else 1.0)
        outputs = [
            RequestOutput(8, 101, 10.0, ttft_s=i / 10, itl_s=0.1, first_token_offset_s=i / 10, end_offset_s=10 + i / 10)
            for i in range(len(prompts))
        ]
        return GenerationBatch(outputs, "request")


def test_continuous_batching_run_reports_its_steady_state(tmp_path: Path, model_dir: Path, clock: FakeClock) -> None:
    trace = PowerTrace.steps((0.0, IDLE_W), (30.05, LOAD_W))
    cfg = config(model_dir, n=10)
    backend = _ContinuousBatchingBackend(cfg, None, [0], clock=clock)
    deps = HarnessDeps(
        nvml=FakeProvider([FakeNvmlDevice(trace, clock)]),
        backend_factory=lambda c, ids: backend,
        clock=clock,
        sleep=clock.sleep,
    )
    result, _ = run(ExperimentJob(config=cfg, context=RunContext(device_ids=[0], host_device_ids=[0])), tmp_path, deps)
    assert result.measurement_methodology == "steady_state"
    steady = result.steady_state_window
    assert steady is not None
    # plateau ≥ 9 of 10 in flight from 0.8 s to 10.1 s (see test_steady_state); 250 W flat over it → 2,325 J
    assert (steady.start_s, steady.end_s) == (pytest.approx(0.8), pytest.approx(10.1))
    assert steady.output_tokens == 938  # the energy over it: test_steady_state (needs samples inside the window)
    assert result.energy_total_j == pytest.approx(250.0 * 10.9, rel=1e-3)  # the headline stays the whole window


def test_static_batches_use_the_whole_window(tmp_path: Path, model_dir: Path, clock: FakeClock) -> None:
    backend = FakeBackend(config(model_dir), None, [], clock=clock)
    deps = HarnessDeps(nvml=None, backend_factory=lambda c, ids: backend, clock=clock, sleep=clock.sleep)
    result, _ = run(ExperimentJob(config=config(model_dir, energy={"backend": "auto"})), tmp_path, deps)
    assert (result.measurement_methodology, result.steady_state_window) == ("total", None)
