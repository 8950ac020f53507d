"""`llem run`: run (or preview with --dry-run) an experiment or a study."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from llenergymeasure.schemas.study import StudyConfig


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        from llenergymeasure.errors import printable
        from llenergymeasure.schemas._issues import suggest_value

        close = suggest_value(value, allowed)
        fix = f"did you mean {name} {close}?" if close else f"use one of {', '.join(allowed)}"
        raise typer.BadParameter(
            f"{printable(repr(value))} is not one of {', '.join(allowed)}\n  fix: {fix}", param_hint=name
        )
    return value


def run_command(
    # a plain string: the loader checks the path (NUL bytes, length, file type) and names the problem
    config: str | None = typer.Argument(None, help="Experiment or study YAML. Optional when --model is given."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model hub id or local path (overrides the YAML)."),
    backend: str | None = typer.Option(None, "--backend", "-b", help="pytorch, vllm or tensorrt."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="'aienergyscore' or a path to a JSONL file."),
    n: int | None = typer.Option(None, "-n", "--n", min=1, help="Prompts per experiment (count)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="pytorch.batch_size (count)."),
    precision: str | None = typer.Option(None, "--precision", "-p", help="fp32, fp16 or bf16."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Directory that receives the study directory."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and preview the grid; run nothing."),
    cycles: int | None = typer.Option(
        None, "--cycles", min=1, help="Cycles (repetitions); default 3 if the YAML sets none."
    ),
    order: str | None = typer.Option(None, "--order", help="sequential, interleaved or shuffled."),
    no_gaps: bool = typer.Option(False, "--no-gaps", help="Skip the cool-down gaps between experiments and cycles."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the latest unfinished study with the same design, with the cycles, order and gaps it was "
        "started with.",
    ),
    skip_preflight: bool = typer.Option(False, "--skip-preflight", help="Do not run the host pre-flight checks."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output; errors and the summary only."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging and tracebacks."),
    export_csv: bool = typer.Option(
        False, "--export-csv", help="Write results.csv and summary.csv into the study directory (needs [report])."
    ),
    report: bool = typer.Option(
        False, "--report", help="Write report.html into the study directory at the end (needs [report])."
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="Run on a Ray cluster: auto, local, ray://host:port or host:port (needs [ray]; docs/campaigns.md).",
    ),
) -> None:
    """Run an experiment or a study."""
    from typing import get_args

    from llenergymeasure.schemas.config.capabilities import BACKENDS, PRECISIONS
    from llenergymeasure.schemas.study import CycleOrder

    _choice("--backend", backend, BACKENDS)  # the schema's Literals: one list of choices
    _choice("--precision", precision, PRECISIONS)
    _choice("--order", order, get_args(CycleOrder))
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose exclude each other", param_hint="--quiet")
    _configure_logging(quiet=quiet, verbose=verbose)

    overrides: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "dataset": dataset,
        "n": n,
        "precision": precision,
        "pytorch.batch_size": batch_size,
    }
    from llenergymeasure.orchestrator.study.policy import ExecutionRequest

    study = build_study(Path(config) if config is not None else None, overrides)
    request = ExecutionRequest(n_cycles=cycles, cycle_order=order)  # type: ignore[arg-type]  # checked by _choice

    if dry_run:
        from llenergymeasure.orchestrator.cli.preview import print_preview
        from llenergymeasure.orchestrator.study.policy import with_execution_defaults
        from llenergymeasure.orchestrator.user_config import load_user_config

        print_preview(with_execution_defaults(study, load_user_config(), request), verbose=verbose)
        return

    from llenergymeasure.orchestrator.api import run_study
    from llenergymeasure.orchestrator.cli.summary import print_study_summary

    if export_csv or report:  # fail before measuring, not after
        from llenergymeasure.results.deps import require

        require("pandas", "--export-csv / --report")
        if report:
            require("matplotlib", "--report")

    result = run_study(
        study,
        output_dir=output,
        n_cycles=request.n_cycles,
        cycle_order=request.cycle_order,
        no_gaps=no_gaps,
        resume=resume,
        quiet=quiet,
        verbose=verbose,
        skip_preflight=skip_preflight,
        ray_address=ray,
    )
    print_study_summary(result)
    _write_outputs(Path(result.study_dir), export_csv=export_csv, report=report)
    if result.status != "completed" or result.runs_failed:
        raise typer.Exit(code=1)


def _write_outputs(study_dir: Path, *, export_csv: bool, report: bool) -> None:
    """CSV and/or the HTML report of the study just run (whatever completed of it)."""
    if report:
        from llenergymeasure.results.report import write_report

        files = write_report([study_dir], csv=export_csv)
        typer.echo(f"report: {files.html}")
        for path in files.csv:
            typer.echo(f"csv: {path}")
    elif export_csv:
        from llenergymeasure.results.loading import load_study

        for path in load_study(study_dir).write_csv():
            typer.echo(f"csv: {path}")


def build_study(config: Path | None, overrides: dict[str, Any]) -> StudyConfig:
    """The study the command runs: YAML (if any) + flag overrides. How it executes (cycles when the
    file sets none, gaps, a resumed study's recorded settings) is the library's policy, `study.policy`."""
    from llenergymeasure.errors import ConfigError, ConfigIssue
    from llenergymeasure.orchestrator.loader import load_study_config, study_from_flags

    if config is not None:
        study = load_study_config(config, overrides, check_inputs=True)
    elif overrides.get("model"):
        study = study_from_flags(overrides)
    else:
        raise ConfigError(
            "nothing to run",
            issues=[
                ConfigIssue("CONFIG", "no YAML file and no --model", "pass a YAML file or --model <hub id or path>")
            ],
        )
    return study


def _configure_logging(*, quiet: bool, verbose: bool) -> None:
    import logging

    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
