"""`llem self-test --gpu` end to end on simulated GPUs: CPU image, tiny model, pytorch, the real Docker engine.

Only the hardware is new on a GPU host: the same steps (gate, images, phase probe in
the image, study through run_study, report) run here against the simulated driver.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.orchestrator.selftest.report import MAX_CV_PCT, GpuCheckReport
from llenergymeasure.orchestrator.selftest.run import SelfTestOptions, run_gpu_check

pytestmark = pytest.mark.docker

CONSTANT_W = 250.0


def test_gpu_check_on_simulated_gpus(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "gpus.json"
    spec.write_text(json.dumps({"devices": [
        {"name": "Sim constant", "power": {"kind": "constant", "watts": CONSTANT_W}},  # device 0: the model runs
        {"name": "Sim 0.5 Hz", "power": {"kind": "square", "low_w": 100, "high_w": 300, "hz": 0.5}},
        {"name": "Sim 10 Hz", "power": {"kind": "square", "low_w": 100, "high_w": 300, "hz": 10}},
    ]}))  # fmt: skip
    spec.chmod(0o644)
    (tmp_path / "no-user-config.yaml").write_text("")  # an empty user config: the defaults
    out = tmp_path / "gpu-check"
    env = {
        "LLEM_SIMULATE_GPUS": str(spec),
        "LLEM_IMAGE_PYTORCH": cpu_image,
        "LLEM_CONFIG": str(tmp_path / "no-user-config.yaml"),
        "HOME": str(tmp_path),
    }
    for key, value in env.items():  # the process environment, as `llem self-test --gpu` sees it
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LLEM_RUNNER_PYTORCH", raising=False)
    opts = SelfTestOptions(
        output_dir=out, backends=("pytorch",), models=(str(tiny_model),), cycles=3, n_prompts=8,
        output_tokens=8, phase_window_s=2.0, baseline_s=0.5, pull=False, env=dict(os.environ),
    )  # fmt: skip
    lines: list[str] = []
    report = run_gpu_check(opts, docker_client=docker_client, on_line=lines.append)

    assert GpuCheckReport.model_validate_json((out / "report.json").read_text()) == report
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("GPU check (SIMULATED GPUs): ")
    assert report.simulated
    assert report.images == {"pytorch": cpu_image}
    assert report.host_gpus[0] == "Sim constant"

    # phase test: the two square waves, 400 J each over 2 s (mean 200 W); 10 Hz aliases to +50 %
    by_hz = {round(p.frequency_hz, 3): p for p in report.phase_test}
    assert set(by_hz) == {0.5, 10.0}
    for p in by_hz.values():
        assert p.counter_energy_j == pytest.approx(400.0, rel=0.03)
    assert abs(by_hz[0.5].deviation_pct or 99) < 3.0
    assert by_hz[10.0].deviation_pct == pytest.approx(50.0, abs=5.0)

    # model runs: 3 cycles on the constant 250 W device; each J/output token is 250 W × window / tokens
    (run,) = report.runs
    assert (run.backend, run.cycles, run.energy_source) == ("pytorch", 3, "simulated")
    results = sorted((out / "runs").rglob("result.json"))
    assert len(results) == 3
    for path in results:
        r = json.loads(path.read_text())
        # the counter is the exact integral cut to 20 ms update ticks (the spec's default): on a window this
        # short one tick is a large fraction, so the bound is one tick (+30 ms for the edge reads), not a ratio
        assert abs(r["energy_total_j"] - CONSTANT_W * r["window_duration_s"]) <= CONSTANT_W * (0.02 + 0.03)
        assert r["energy_per_output_token_j"] == pytest.approx(r["energy_total_j"] / r["output_tokens"])
    cv = next(v for v in report.verdicts if "CV" in v.check)
    assert cv.threshold == MAX_CV_PCT
    assert cv.passed == (cv.value is not None and cv.value <= MAX_CV_PCT)
    assert report.passed == all(v.passed for v in report.verdicts)
    assert any("simulated" in w for w in report.warnings)
