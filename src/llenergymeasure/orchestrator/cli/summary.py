"""The final summary printed on stdout after a study."""

from __future__ import annotations

import typer

from llenergymeasure.orchestrator.cli.table import render_table
from llenergymeasure.schemas.study_result import StudyResult


def _mean_std(mean: float | None, std: float | None, fmt: str) -> str:
    if mean is None:
        return "n/a"
    return format(mean, fmt) + (f" ± {format(std, fmt)}" if std is not None else "")


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
            _mean_std(s.energy_per_output_token_j_mean, s.energy_per_output_token_j_std, ".4g"),
            _mean_std(s.output_tokens_per_s_mean, s.output_tokens_per_s_std, ".4g"),
            _energy_cell(s.energy_method, s.energy_source),
        ]
        for s in result.summary
    ]
    headers = ["configuration", "hash", "cycles", "J/output token (mean ± sd)", "output tokens/s (mean ± sd)", "energy"]
    typer.echo(render_table(headers, rows, right=frozenset({2})))
    typer.echo(
        f"\nstudy {result.status}: {result.runs_completed}/{result.runs_total} runs completed, "
        f"{result.runs_failed} failed\nresults: {result.study_dir}"
    )
