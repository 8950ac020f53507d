"""The GPU check's report (``gpu-check/report.json``), its thresholds and its human-readable summary.

Thresholds (stated here, printed in the summary and kept in the report):

- J per output token of one (backend, model, TP) across its cycles: coefficient
  of variation ≤ `MAX_CV_PCT` (2 %);
- the power timeline's integral against the energy counter, on every measured
  window of at least `MIN_WINDOW_S` (10 s): |deviation| ≤ `MAX_TIMELINE_PCT` (5 %).
  Shorter windows are listed but not judged (the counter's update period and
  the sampler's start-up weigh too much on them).

The counter phase test is reported per frequency and not judged: at frequencies
the sampler aliases (its period a multiple of the wave's) a large deviation is
the expected, published behaviour of sampled power, and the point of the table is
to show it on this hardware.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import Field

from llenergymeasure.orchestrator.selftest.phase import PhaseResult
from llenergymeasure.schemas._base import StrictModel
from llenergymeasure.schemas.results import ExperimentResult

MAX_CV_PCT = 2.0
MAX_TIMELINE_PCT = 5.0
MIN_WINDOW_S = 10.0


class RunSummary(StrictModel):
    """Every cycle of one (backend, model, tensor-parallel size)."""

    backend: str = Field(description="Inference backend.")
    model: str = Field(description="Model id or path.")
    tensor_parallel: int = Field(description="GPUs the model is sharded over (count).")
    cycles: int = Field(description="Cycles completed (count).")
    energy_per_output_token_j: list[float] = Field(description="J per output token of each cycle (measured).")
    mean_energy_per_output_token_j: float | None = Field(description="Mean over the cycles, J per output token.")
    cv_pct: float | None = Field(description="Coefficient of variation of J/output token across cycles, percent.")
    window_s: list[float] = Field(description="Measured window of each cycle, seconds.")
    timeline_vs_counter_pct: list[float | None] = Field(description="(timeline − counter)/counter of each cycle, %.")
    baseline_power_w: float | None = Field(description="Idle power of the device set, watts (latest cycle).")
    baseline_method: str | None = Field(description="How the baseline was obtained (measured, cached, ...).")
    energy_source: str | None = Field(description="Meter behind the energy figures (nvml, zeus, simulated, ...).")
    warnings: list[str] = Field(description="Measurement warnings of every cycle, 'code: message'.")


class Verdict(StrictModel):
    """One pass/fail check against a stated threshold."""

    check: str = Field(description="What was checked.")
    passed: bool = Field(description="Whether it met the threshold.")
    value: float | None = Field(description="The measured value (unit in `check`).")
    threshold: float = Field(description="The limit it was held to (same unit).")


class GpuCheckReport(StrictModel):
    """``gpu-check/report.json``: everything the GPU host validation measured and concluded."""

    created_at: datetime = Field(description="When the check finished (UTC).")
    host_gpus: list[str] = Field(description="GPU names as NVML reports them, by index.")
    driver_version: str | None = Field(description="NVIDIA driver version.")
    cuda_version: str | None = Field(description="CUDA runtime version inside the images (from the results).")
    simulated: bool = Field(description="True when the GPUs were simulated (LLEM_SIMULATE_GPUS).")
    images: dict[str, str] = Field(description="backend → image reference used.")
    gpu_tests: dict[str, int] | None = Field(description="GPU test tier outcome counts (passed/failed/skipped).")
    phase_test: list[PhaseResult] = Field(description="Counter phase test, one row per frequency.")
    runs: list[RunSummary] = Field(description="Model runs per (backend, model, TP).")
    verdicts: list[Verdict] = Field(description="Every threshold check.")
    warnings: list[str] = Field(description="Every warning met, in order.")
    passed: bool = Field(description="True when every verdict passed and the GPU tests did not fail.")


def cv_pct(values: Sequence[float]) -> float | None:
    """Sample standard deviation / mean × 100; None for fewer than two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean * 100 if mean else None


def summarize(results: Iterable[ExperimentResult]) -> list[RunSummary]:
    """Group results by (backend, model, TP) in first-seen order."""
    groups: dict[tuple[str, str, int], list[ExperimentResult]] = {}
    for r in results:
        groups.setdefault((r.config.backend, r.config.model, max(1, r.config.device_count())), []).append(r)
    out = []
    for (backend, model, tp), rs in groups.items():
        rs.sort(key=lambda r: r.cycle)
        per_token = [r.energy_per_output_token_j for r in rs if r.energy_per_output_token_j is not None]
        last = rs[-1]
        out.append(
            RunSummary(
                backend=backend,
                model=model,
                tensor_parallel=tp,
                cycles=len(rs),
                energy_per_output_token_j=per_token,
                mean_energy_per_output_token_j=statistics.fmean(per_token) if per_token else None,
                cv_pct=cv_pct(per_token),
                window_s=[r.window_duration_s for r in rs],
                timeline_vs_counter_pct=[r.energy.timeline_vs_counter_pct for r in rs],
                baseline_power_w=last.baseline_power_w,
                baseline_method=last.energy.baseline.method,
                energy_source=last.energy.source,
                warnings=[f"{w.code}: {w.message}" for r in rs for w in r.measurement_warnings],
            )
        )
    return out


def judge(runs: Sequence[RunSummary]) -> list[Verdict]:
    verdicts = []
    for s in runs:
        name = f"{s.backend} {s.model} tp{s.tensor_parallel}"
        if len(s.energy_per_output_token_j) < 2:
            verdicts.append(Verdict(check=f"{name}: cycles with energy (count)", passed=False,
                                    value=float(len(s.energy_per_output_token_j)), threshold=2.0))  # fmt: skip
        else:
            cv = s.cv_pct
            verdicts.append(Verdict(check=f"{name}: CV of J/output token (%)", passed=cv is not None and cv <= MAX_CV_PCT,
                                    value=cv, threshold=MAX_CV_PCT))  # fmt: skip
        judged = [
            abs(p)
            for w, p in zip(s.window_s, s.timeline_vs_counter_pct, strict=True)
            if w >= MIN_WINDOW_S and p is not None
        ]
        if judged:
            worst = max(judged)
            verdicts.append(Verdict(check=f"{name}: |timeline − counter| on windows ≥ {MIN_WINDOW_S:g} s (%)",
                                    passed=worst <= MAX_TIMELINE_PCT, value=worst, threshold=MAX_TIMELINE_PCT))  # fmt: skip
    return verdicts


def render(report: GpuCheckReport) -> str:
    """The human-readable summary (``gpu-check/summary.txt`` and stdout)."""
    sim = " (SIMULATED GPUs)" if report.simulated else ""
    lines = [f"GPU check{sim}: {'PASS' if report.passed else 'FAIL'}  ({report.created_at:%Y-%m-%d %H:%M} UTC)"]
    lines.append(f"  GPUs: {', '.join(report.host_gpus) or 'none'}; driver {report.driver_version or '?'}; "
                 f"CUDA {report.cuda_version or '?'}")  # fmt: skip
    for backend, image in sorted(report.images.items()):
        lines.append(f"  image {backend}: {image}")
    if report.gpu_tests is not None:
        lines.append("  GPU tests: " + ", ".join(f"{v} {k}" for k, v in sorted(report.gpu_tests.items())))
    if report.phase_test:
        lines.append("\nCounter phase test (busy/idle square wave; timeline sampled, counter read at every edge)")
        lines.append(
            f"  {'Hz':>5} {'window s':>8} {'counter J':>10} {'timeline J':>10} {'dev %':>7} {'phases seen':>12}"
        )
        for p in report.phase_test:
            dev = f"{p.deviation_pct:+.1f}" if p.deviation_pct is not None else "n/a"
            tl = f"{p.timeline_energy_j:.1f}" if p.timeline_energy_j is not None else "n/a"
            lines.append(f"  {p.frequency_hz:>5g} {p.window_s:>8.1f} {p.counter_energy_j:>10.1f} {tl:>10} {dev:>7} "
                         f"{p.phases_seen:>5}/{p.phases:<6}")  # fmt: skip
    if report.runs:
        lines.append("\nModel runs (J per output token, measured)")
        for s in report.runs:
            mean = f"{s.mean_energy_per_output_token_j:.4g}" if s.mean_energy_per_output_token_j is not None else "n/a"
            cv = f"{s.cv_pct:.2f} %" if s.cv_pct is not None else "n/a"
            base = f"{s.baseline_power_w:.1f} W ({s.baseline_method})" if s.baseline_power_w is not None else "n/a"
            lines.append(f"  {s.backend:<9} {s.model} tp{s.tensor_parallel}: {mean} J/token, CV {cv} over "
                         f"{s.cycles} cycles; baseline {base}; source {s.energy_source}")  # fmt: skip
    lines.append(f"\nThresholds: CV ≤ {MAX_CV_PCT:g} %, |timeline − counter| ≤ {MAX_TIMELINE_PCT:g} % "
                 f"on windows ≥ {MIN_WINDOW_S:g} s")  # fmt: skip
    for v in report.verdicts:
        value = f"{v.value:.3g}" if v.value is not None else "n/a"
        lines.append(f"  {'✓' if v.passed else '✗'} {v.check}: {value} (limit {v.threshold:g})")
    if report.warnings:
        lines.append("\nWarnings")
        lines += [f"  - {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"
