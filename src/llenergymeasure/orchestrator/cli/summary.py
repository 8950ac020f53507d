"""The final summary printed on stdout after a study: mean ± 95 % CI half-width across cycles."""

from __future__ import annotations

import typer

from llenergymeasure.orchestrator.cli.table import render_table
from llenergymeasure.schemas.study_result import StudyResult
from llenergymeasure.util.numbers import mean_ci


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
