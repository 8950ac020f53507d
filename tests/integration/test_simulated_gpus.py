"""The whole energy chain on simulated GPUs (``LLEM_SIMULATE_GPUS``), checked against analytic power traces.

`llem run` on a study, in a container of the CPU image (and, cheaper, with the local runner): host probe,
pre-flight, device assignment, spec mount, harness, meter, sampler, baseline, result, timeseries, summary.

The four simulated devices, each chosen for what it proves:
- 0: constant 200 W, energy counter updated every 20 ms, its 2nd energy read fails with NVML_ERROR_UNKNOWN
  → a transient error must not move it off the counter; the failed read is reported.
- 1: a ramp 100 W + 5 W/s × t → the idle baseline (taken seconds before the window) draws less than the
  window, so adjusted energy is far from 0 and pins the baseline subtraction.
- 2: a 10 Hz square wave 100/300 W; the sampler ticks every 100 ms, i.e. phase-locked to it, so every
  sample sees the same half-period: only the counter gives the right energy.
- 3: constant 50 W with no energy counter (pre-Volta) → the integrated-power path, labelled and warned.

Analytic values: the driver's clock starts when the harness process opens it, which the test cannot see;
the ramp device reveals it (its instant power in ``timeseries.parquet`` is 100 + 5 t at each sample's unix
timestamp). With that origin, every device's energy over the window and the baseline interval is integrated
here in closed form (square wave: numerically on a 10 µs grid), independently of the code under test.
Tolerances: a counter that updates every `period` lags by less than one period at each edge, so the counter
path is within P_max × period (+ clock-origin slack), ≤ 1 % on windows ≥ 2 s (asserted when the window is
that long); the integrated path within 5 %.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from docker_helpers import llem_command, llem_env, only_study_dir, write_study_yaml

from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study_result import StudyResult

pytestmark = [pytest.mark.slow]

PERIOD_S = 0.02
RAMP_START_W, RAMP_W_PER_S = 100.0, 5.0
SPEC = {
    "devices": [
        {
            "name": "Sim H100",
            "memory_mib": 81559,
            "power": {"kind": "constant", "watts": 200},
            "energy_counter": {"update_period_s": PERIOD_S},
            "faults": [{"call": "energy", "nth": 2, "error": "unknown"}],
        },
        {"name": "Sim ramp", "power": {"kind": "ramp", "start_w": RAMP_START_W, "w_per_s": RAMP_W_PER_S}},
        {"name": "Sim square", "power": {"kind": "square", "low_w": 100, "high_w": 300, "hz": 10, "phase_s": 0}},
        {"name": "Sim pre-Volta", "power": {"kind": "constant", "watts": 50}, "energy_counter": False},
    ]
}
P_MAX_W = [200.0, None, 300.0, 50.0]  # the ramp's maximum depends on the window: computed below


def power_w(device: int, t: np.ndarray) -> np.ndarray:
    """The spec's traces, written out here: W at driver time t (s)."""
    if device == 0:
        return np.full_like(t, 200.0)
    if device == 1:
        return RAMP_START_W + RAMP_W_PER_S * t
    if device == 2:
        return np.where(np.mod(t * 10.0, 1.0) < 0.5, 300.0, 100.0)
    return np.full_like(t, 50.0)


def energy_j(device: int, a: float, b: float) -> float:
    """∫ power over [a, b] (driver time): closed form, the square wave on a 10 µs midpoint grid."""
    if device == 1:
        return RAMP_START_W * (b - a) + RAMP_W_PER_S * (b * b - a * a) / 2.0
    if device == 2:
        dt = 1e-5
        mids = np.arange(a + dt / 2, b, dt)
        return float(power_w(2, mids).sum() * dt)
    return float(power_w(device, np.array([0.0]))[0] * (b - a))


def driver_origin_unix(rows: list[dict[str, Any]]) -> float:
    """Unix time of the driver's t = 0, from the ramp device's samples (power = 100 + 5 t)."""
    ramp = [r for r in rows if r["device_index"] == 1 and r["power_w"] is not None]
    return statistics.median(r["timestamp"] - (r["power_w"] - RAMP_START_W) / RAMP_W_PER_S for r in ramp)


def write_inputs(tmp_path: Path, model: Path, *, n: int, tokens: int, baseline_s: float) -> tuple[Path, Path]:
    spec = tmp_path / "gpus.json"
    spec.write_text(json.dumps(SPEC))
    study = {
        "name": "simulated rehearsal",
        "model": str(model),
        "backend": "pytorch",
        "precision": "bf16",  # the simulated devices are not CUDA: the model must run on CPU in fp32
        "gpus": [0, 1, 2, 3],
        "n": n,
        "max_output_tokens": tokens,
        "dataset": {"synthetic": True, "input_tokens": 8, "output_tokens": tokens},
        "warmup": {"n_warmup": 1, "thermal_floor_seconds": 0},
        "baseline": {"duration_seconds": baseline_s},
        "execution": {"n_cycles": 1},
    }
    return spec, write_study_yaml(tmp_path / "study.yaml", study)


def run_llem(tmp_path: Path, config: Path, spec: Path, **env: str) -> tuple[Path, str]:
    output = tmp_path / "results"
    proc = subprocess.run(
        [*llem_command(), "run", str(config), "-o", str(output)],
        env=llem_env(tmp_path, LLEM_SIMULATE_GPUS=str(spec), **env),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"llem run failed ({proc.returncode})\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return only_study_dir(output), proc.stdout


def check_simulated_study(study_dir: Path, stdout: str) -> ExperimentResult:
    """Every assertion on one simulated run; returns the result for runner-specific checks."""
    (run_dir,) = [p for p in study_dir.iterdir() if p.is_dir()]
    result = ExperimentResult.model_validate_json((run_dir / "result.json").read_text())
    e = result.energy

    # labels: simulated, on CPU in fp32, never passed off as a measurement
    assert e.source == "simulated"
    assert (result.device, result.effective_precision) == ("cpu", "fp32")
    codes = [w.code for w in result.measurement_warnings]
    assert "simulated_gpu" in codes
    assert [(d.device_index, d.method) for d in e.per_device] == [
        (0, "counter"),  # the transient error did not move it off the counter
        (1, "counter"),
        (2, "counter"),
        (3, "integrated_power"),
    ]
    assert e.method == "integrated_power"  # the weakest method of the set
    (read_errors,) = [w for w in result.measurement_warnings if w.code == "nvml_read_errors"]
    assert read_errors.message.startswith("GPU 0: 1 NVML read(s) failed")
    (integrated,) = [w for w in result.measurement_warnings if w.code == "integrated_power"]
    assert integrated.severity == "warning" and integrated.message.startswith("GPU 3 has no total-energy counter")
    assert [d.device_uuid for d in e.per_device] == [d.uuid for d in result.environment_snapshot.gpus]
    assert [g.name for g in result.environment_snapshot.gpus] == [d["name"] for d in SPEC["devices"]]
    summary = StudyResult.model_validate_json((study_dir / "study_result.json").read_text()).summary
    assert [s.energy_source for s in summary.configurations] == ["simulated"]
    assert "[SIMULATED]" in stdout

    # the timeline: every row is the trace at its own time; counters climb; device 3 has none
    rows = pq.read_table(run_dir / "timeseries.parquet").to_pylist()
    # ticks from the sampler's own process: same driver time origin as the harness (the ramp below pins it)
    assert pq.read_schema(run_dir / "timeseries.parquet").metadata[b"llem.sampler"] == b"process"
    origin = driver_origin_unix(rows)
    for device in range(4):
        own = [r for r in rows if r["device_index"] == device]
        assert own, f"no samples of device {device}"
        times = np.array([r["timestamp"] - origin for r in own])
        measured = np.array([r["power_w"] for r in own])
        # a sample's timestamp is taken just before its driver call, which can come tens of ms later on a busy
        # host: the ramp is compared with 100 ms of slack, the square wave's levels away from its edges
        if device == 2:
            assert set(measured) <= {100.0, 300.0}
            away = np.abs(np.mod(times * 10.0 + 0.25, 0.5) - 0.25) > 0.02
            assert np.mean(measured[away] == power_w(2, times)[away]) >= 0.9
        else:
            assert np.allclose(measured, power_w(device, times), atol=RAMP_W_PER_S * 0.1 if device == 1 else 0.0)
        counters = [r["energy_counter_mj"] for r in own if r["energy_counter_mj"] is not None]
        if device == 3:
            assert counters == []
        else:
            assert counters == sorted(counters) and len(counters) >= len(own) - 1  # one failed read on device 0
    assert any(r["in_window"] for r in rows) and not all(r["in_window"] for r in rows)

    # energy against the analytic integrals
    a = result.window_started_at.timestamp() - origin
    b = a + result.window_duration_s
    duration = result.window_duration_s
    slack_s = 0.03  # clock origin from samples + edge reads a few ms from the recorded window edges
    expected = [energy_j(d, a, b) for d in range(4)]
    p_max = [P_MAX_W[0], RAMP_START_W + RAMP_W_PER_S * b, P_MAX_W[2], P_MAX_W[3]]
    for d, dev in enumerate(e.per_device):
        assert dev.energy_j is not None
        if dev.method == "counter":
            bound = p_max[d] * (PERIOD_S + slack_s)
            assert abs(dev.energy_j - expected[d]) <= bound, (d, dev.energy_j, expected[d], bound)
            if duration >= 2.0:
                assert dev.energy_j == pytest.approx(expected[d], rel=0.01)
        else:
            assert dev.energy_j == pytest.approx(expected[d], rel=0.05)
    total = sum(expected)
    assert result.energy_total_j == pytest.approx(sum(d.energy_j or 0.0 for d in e.per_device))
    assert result.energy_total_j is not None
    assert abs(result.energy_total_j - total) <= sum(p * (PERIOD_S + slack_s) for p in p_max) + 0.05 * expected[3]

    # baseline: idle power of the set over [measured_at − duration, measured_at]
    baseline = e.baseline
    assert baseline.method == "measured" and baseline.duration_s and baseline.measured_at
    bb = baseline.measured_at.timestamp() - origin
    ba = bb - baseline.duration_s
    baseline_w = sum(energy_j(d, ba, bb) for d in range(4)) / baseline.duration_s
    baseline_bound_w = sum(p * (PERIOD_S + slack_s) for p in p_max) / baseline.duration_s + 0.05 * 50.0
    assert result.baseline_power_w is not None
    assert abs(result.baseline_power_w - baseline_w) <= baseline_bound_w
    # adjusted = total − baseline × duration (its sign is not fixed: on a window shorter than the square wave's
    # 100 ms period the wave's share can be anywhere between its low and high power)
    adjusted = total - baseline_w * duration
    assert result.energy_adjusted_j is not None
    assert abs(result.energy_adjusted_j - adjusted) <= (
        abs(result.energy_total_j - total) + baseline_bound_w * duration + 1e-6
    )
    return result


@pytest.mark.docker
def test_simulated_gpu_study_in_containers(cpu_image: str, tiny_model: Path, tmp_path: Path) -> None:
    # 64 tokens per prompt: a window of several 100 ms sampler ticks on an idle host (16 tokens took ~90 ms,
    # which can fall between two ticks and leave no in-window row)
    spec, config = write_inputs(tmp_path, tiny_model, n=6, tokens=64, baseline_s=3.0)
    spec.chmod(0o644)
    study_dir, stdout = run_llem(tmp_path, config, spec)
    result = check_simulated_study(study_dir, stdout)
    assert result.environment_snapshot.image == cpu_image


def test_simulated_gpu_study_with_the_local_runner(tiny_model: Path, tmp_path: Path) -> None:
    # a window long enough for sampler ticks inside and outside it (2 × 4 tokens can finish between two ticks)
    spec, config = write_inputs(tmp_path, tiny_model, n=6, tokens=64, baseline_s=0.5)
    study_dir, stdout = run_llem(tmp_path, config, spec, LLEM_RUNNER_PYTORCH="local")
    check_simulated_study(study_dir, stdout)


def test_a_bad_spec_stops_llem_run_with_exit_2_before_anything_runs(tiny_model: Path, tmp_path: Path) -> None:
    spec, config = write_inputs(tmp_path, tiny_model, n=2, tokens=4, baseline_s=0.5)
    spec.write_text('{"devices": [{"power": {"kind": "constant", "watts": -3}}]}')
    output = tmp_path / "results"
    proc = subprocess.run(
        [*llem_command(), "run", str(config), "-o", str(output)],
        env=llem_env(tmp_path, LLEM_SIMULATE_GPUS=str(spec), LLEM_RUNNER_PYTORCH="local"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert str(spec) in proc.stderr and "devices[0].power.watts" in proc.stderr and "fix:" in proc.stderr
    assert not output.exists() or not any(output.iterdir())
