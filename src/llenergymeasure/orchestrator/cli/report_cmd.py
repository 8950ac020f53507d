"""`llem report`: the HTML report (and optionally CSV) of one or more finished studies."""

from __future__ import annotations

from pathlib import Path

import typer


def report_command(
    study_dirs: list[Path] = typer.Argument(..., help="Study directories; several are compared side by side."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write (default: <first study dir>/report.html)."
    ),
    csv: bool = typer.Option(False, "--csv", help="Also write results.csv and summary.csv into each study dir."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Tracebacks for errors."),
) -> None:
    """Write a self-contained HTML report (figures also as PNG and SVG under <study dir>/figures/)."""
    from llenergymeasure.results.report import write_report

    for study_dir in study_dirs:
        if not study_dir.is_dir():
            raise typer.BadParameter(f"{study_dir} is not a directory", param_hint="STUDY_DIRS")
    files = write_report(study_dirs, output, csv=csv)
    typer.echo(f"report: {files.html}")
    typer.echo(f"figures: {files.figures[0].parent} ({len(files.figures)} files)")
    for path in files.csv:
        typer.echo(f"csv: {path}")
