"""The final summary printed on stdout after a study: mean ± 95 % CI half-width across cycles."""

from __future__ import annotations

import typer

from llenergymeasure.orchestrator.cli.table import render_table
from llenergymeasure.schemas.study_result import MetricStats, StudyResult


def mean_ci(stats: MetricStats, fmt: str = ".4g") -> str:
    """``mean ± half-width`` of the 95 % CI; the mean alone with one cycle; ``n/a`` when unavailable."""
    if stats.mean is None:
        return "n/a"
    if stats.ci95_high is None:
        return format(stats.mean, fmt)
    return f"{format(stats.mean, fmt)} ± {format(stats.ci95_high - stats.mean, fmt)}"


def _energy_cell(method: str | None, source: str | None) -> str:
    """How the energy was obtained; rows made on simulated GPUs say so, so they cannot pass for measurements."""
    cell = method or "n/a"
    return f"{cell} [SIMULATED]" if source and "simulated" in source else cell


def print_study_summary(result: StudyResult) -> None:
    rows = [
        [
            s.label,
            s.measurement_config_hash[:8],
            str(s.cycles_completed),
            mean_ci(s.energy_per_output_token_j),
            mean_ci(s.energy_per_output_token_adjusted_j),
            mean_ci(s.output_tokens_per_s),
            _energy_cell(s.energy_method, s.energy_source),
        ]
        for s in result.summary.configurations
    ]
    headers = [
        "configuration",
        "hash",
        "cycles",
        "J/output token (mean ± 95% CI)",
        "adjusted J/output token",
        "output tokens/s",
        "energy",
    ]
    typer.echo(render_table(headers, rows, right=frozenset({2})))
    warnings = result.summary.warnings
    for warning in warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(
        f"\nstudy {result.status}: {result.runs_completed}/{result.runs_total} runs completed, "
        f"{result.runs_failed} failed\nresults: {result.study_dir}"
    )
