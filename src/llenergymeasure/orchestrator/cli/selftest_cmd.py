"""`llem self-test --gpu`: validate this GPU host (images, counter phase test, model runs) into a report."""

from __future__ import annotations

from pathlib import Path

import typer


def selftest_command(
    gpu: bool = typer.Option(False, "--gpu", help="Validate the GPU measurement chain of this host (required)."),
    output: Path = typer.Option(Path("gpu-check"), "--output", "-o", help="Folder for report.json, summary.txt, runs."),
    backend: list[str] | None = typer.Option(None, "--backend", help="Backends to run (default: all three)."),
    model: list[str] | None = typer.Option(
        None, "--model", help="Models to run: hub ids, paths, or 'tiny' (default: tiny and a ~0.5 B instruct model)."
    ),
    cycles: int = typer.Option(5, "--cycles", min=2, help="Cycles per configuration (the CV needs at least 2)."),
    prompts: int = typer.Option(200, "--prompts", min=1, help="Prompts per run (count)."),
    phase_window: float = typer.Option(12.0, "--phase-window", min=0.5, help="Phase test window per frequency, s."),
    baseline: float = typer.Option(15.0, "--baseline", min=0.0, help="Idle baseline length, seconds."),
    tests_junit: Path | None = typer.Option(None, "--tests-junit", help="JUnit XML of the GPU test tier to include."),
    no_pull: bool = typer.Option(False, "--no-pull", help="Use the images present; never pull or build."),
    project_wheel: bool = typer.Option(
        False, "--project-wheel", help="When an image must be built, install this source checkout's wheel."
    ),
) -> None:
    """Validate this GPU host; exit 0 when every threshold passes, 1 otherwise."""
    import tempfile

    from llenergymeasure.orchestrator.selftest.report import render
    from llenergymeasure.orchestrator.selftest.run import SMALL_INSTRUCT_MODEL, TINY, SelfTestOptions, run_gpu_check

    if not gpu:
        raise typer.BadParameter("only the GPU self-test exists: pass --gpu")
    with tempfile.TemporaryDirectory(prefix="llem-wheel-") as tmp:
        wheel = None
        if project_wheel:
            from llenergymeasure.orchestrator.image_ops import checkout_wheel

            wheel = checkout_wheel(Path(tmp))
        opts = SelfTestOptions(
            output_dir=output,
            backends=tuple(backend or ("pytorch", "vllm", "tensorrt")),
            models=tuple(model or (TINY, SMALL_INSTRUCT_MODEL)),
            cycles=cycles,
            n_prompts=prompts,
            phase_window_s=phase_window,
            baseline_s=baseline,
            tests_junit=tests_junit,
            pull=not no_pull,
            project_wheel=wheel,
        )
        report = run_gpu_check(opts, on_line=lambda line: typer.echo(line, err=True))
    typer.echo(render(report), nl=False)
    typer.echo(f"report: {output / 'report.json'}")
    if not report.passed:
        raise typer.Exit(1)
