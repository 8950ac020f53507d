"""GPU check report: CV and timeline verdicts against the stated thresholds, worked out by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from llenergymeasure.orchestrator.selftest.report import (
    GpuCheckReport,
    RunSummary,
    cv_pct,
    judge,
    render,
)


def _summary(per_token: list[float], windows: list[float], timeline: list[float | None]) -> RunSummary:
    return RunSummary(
        backend="pytorch", model="tiny", tensor_parallel=1, cycles=len(per_token),
        energy_per_output_token_j=per_token, mean_energy_per_output_token_j=sum(per_token) / len(per_token),
        cv_pct=cv_pct(per_token), window_s=windows, timeline_vs_counter_pct=timeline,
        baseline_power_w=60.0, baseline_method="measured", energy_source="nvml", warnings=[],
    )  # fmt: skip


def test_cv_by_hand() -> None:
    # values 1.00, 1.02, 0.98: mean 1.00, sample sd sqrt((0 + 0.0004 + 0.0004) / 2) = 0.02 → 2.0 %
    assert cv_pct([1.00, 1.02, 0.98]) == pytest.approx(2.0)
    assert cv_pct([1.0]) is None


def test_thresholds_pass_and_fail_at_the_stated_limits() -> None:
    good = _summary([1.00, 1.01, 0.99, 1.00, 1.00], [12, 12, 12, 12, 12], [1.0, -4.9, 2.0, 0.5, 0.0])
    (cv, timeline) = judge([good])
    # sd of (0, .01, -.01, 0, 0) around 1.00 = sqrt(0.0002 / 4) = 0.00707 → CV 0.707 %
    assert cv.passed
    assert cv.value == pytest.approx(0.7071, rel=1e-3)
    assert timeline.passed
    assert timeline.value == pytest.approx(4.9)

    # a 6 % disagreement on a 9 s window is not judged; on a 10 s window it fails
    noisy = _summary([1.0, 1.1, 0.9], [9, 10, 30], [6.0, 5.5, 1.0])
    (cv, timeline) = judge([noisy])
    assert not cv.passed  # sd 0.1 on mean 1.0 → 10 %
    assert cv.value == pytest.approx(10.0)
    assert not timeline.passed
    assert timeline.value == pytest.approx(5.5)

    (missing,) = judge([_summary([1.0], [12], [None])])
    assert not missing.passed


def test_summary_names_verdicts_and_simulation() -> None:
    runs = [_summary([1.0, 1.0], [12, 12], [0.0, 0.0])]
    report = GpuCheckReport(
        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc), host_gpus=["H100"], driver_version="550",
        cuda_version="12.6", simulated=True, images={"pytorch": "img"}, gpu_tests={"passed": 3},
        phase_test=[], runs=runs, verdicts=judge(runs), warnings=["w1"], passed=True,
    )  # fmt: skip
    text = render(report)
    assert text.startswith("GPU check (SIMULATED GPUs): PASS")
    assert "✓ pytorch tiny tp1: CV of J/output token (%)" in text
    assert "CV ≤ 2 %" in text
    assert "- w1" in text
