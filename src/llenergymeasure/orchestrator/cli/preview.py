"""`llem run --dry-run`: validate, show the grid, the run count and a VRAM estimate."""

from __future__ import annotations

from typing import Any

import typer

from llenergymeasure.errors import printable
from llenergymeasure.orchestrator.cli.table import render_table
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.study import StudyConfig

#: rows shown before the preview is shortened (all rows with --verbose)
PREVIEW_ROWS = 40


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _differing_keys(a: dict[str, Any], b: dict[str, Any], prefix: str, out: set[str]) -> None:
    """Add to `out` the dotted leaf keys where `a` and `b` differ; recurses only into sections that differ.

    A section present on one side only adds its own leaves (``pytorch.batch_size``), never the bare
    section name, whose cells would all read ``-``.
    """
    for key in a.keys() | b.keys():
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            _differing_keys(va, vb, f"{prefix}{key}.", out)
        elif isinstance(va, dict) or isinstance(vb, dict):
            side = va if isinstance(va, dict) else vb
            assert isinstance(side, dict)
            out.update(_flatten(side, f"{prefix}{key}."))
            if va is not None and vb is not None:
                out.add(f"{prefix}{key}")  # a plain value on the other side (a dataset name vs a synthetic spec)
        else:
            out.add(f"{prefix}{key}")


def varying_fields(experiments: list[ExperimentConfig]) -> list[str]:
    """Dotted leaf fields whose values differ between experiments (model/backend/precision shown anyway).

    Every experiment is compared with the first: a field that differs anywhere differs from the first
    somewhere, so one pass finds them all.
    """
    if not experiments:
        return []
    dumps = [e.model_dump(exclude_none=True) for e in experiments]
    keys: set[str] = set()
    for d in dumps[1:]:
        if d != dumps[0]:
            _differing_keys(dumps[0], d, "", keys)
    return sorted(keys - {"model", "backend", "precision"})


def _vram_cell(e: ExperimentConfig) -> str:
    """The VRAM estimate, or "unknown" when the model's config.json is missing, unreadable or odd."""
    from llenergymeasure.orchestrator import vram

    try:
        cfg = vram.read_model_config(e.model)
        if cfg is None:
            return "unknown"
        batch = (e.pytorch.batch_size if e.pytorch and e.pytorch.batch_size else 1) if e.backend == "pytorch" else 1
        est = vram.estimate(cfg, e.precision, batch, e.max_input_tokens + e.max_output_tokens)
    except (ArithmeticError, TypeError, ValueError, OSError, RecursionError):
        return "unknown"  # a hand-edited config.json with odd values: the preview never fails on it
    if est is None:
        return "unknown"
    return f"{est.total_gib:.2f} GiB" if est.total_gib >= 0.1 else f"{est.total_gib * 1024:.1f} MiB"


def print_preview(study: StudyConfig, *, verbose: bool = False) -> None:
    exps = study.experiments
    varying = varying_fields(exps)
    headers = ["#", "model", "backend", "precision", *varying, "VRAM est.", "config hash"]
    indices = list(range(len(exps)))
    if not verbose and len(exps) > PREVIEW_ROWS:
        indices = indices[: PREVIEW_ROWS - 5] + indices[-5:]
    rows: list[list[str]] = []
    for pos, i in enumerate(indices):
        if pos > 0 and i != indices[pos - 1] + 1:
            rows.append(["…"] + [""] * (len(headers) - 1))
        e = exps[i]
        flat = _flatten(e.model_dump(mode="json", exclude_none=True))
        cells = [str(i + 1), printable(e.model), e.backend, e.precision]
        cells += [_short(flat.get(k)) for k in varying]
        cells += [_vram_cell(e), e.measurement_config_hash()[:8]]
        rows.append(cells)
    typer.echo(f"study: {printable(study.name)}   design hash: {study.study_design_hash}")
    typer.echo(render_table(headers, rows, right=frozenset({0})))
    if len(indices) < len(exps):
        typer.echo(f"({len(exps) - len(indices)} rows not shown; --verbose lists all)")
    if study.skipped:
        typer.echo(f"\nleft out {len(study.skipped)} point(s) (incompatible combinations or duplicates):")
        for s in study.skipped[: PREVIEW_ROWS if not verbose else None]:
            where = ", ".join(f"{k}={_short(v, 60)}" for k, v in s.overrides.items())
            typer.echo(f"  - {where}: {printable(s.reason)}")
    ex = study.execution
    typer.echo(
        f"\n{len(exps)} experiment{'s' if len(exps) != 1 else ''} × {ex.n_cycles} cycle{'s' if ex.n_cycles != 1 else ''}"
        f" = {study.run_count()} run{'s' if study.run_count() != 1 else ''}"
        f"   (order: {ex.cycle_order}; gaps: {ex.config_gap_seconds:g} s between experiments, "
        f"{ex.cycle_gap_seconds:g} s between cycles)"
    )
    typer.echo("dry run: nothing was executed")


def _short(value: Any, limit: int = 24) -> str:
    text = "-" if value is None else printable(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
