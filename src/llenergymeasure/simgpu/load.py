"""Read and validate a simulated-GPU spec file; every problem is a `ConfigError` naming file, field and fix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR, SimulatedGpuSpec

_FIXES = {
    "union_tag_invalid": "power.kind is one of constant {watts}, square {low_w, high_w, hz, phase_s}, "
    "ramp {start_w, w_per_s}",
    "union_tag_not_found": "give power a kind: constant, square or ramp",
    "extra_forbidden": "remove the field (see the spec format in docs/user-guide.md, 'Simulated GPUs')",
    "missing": "add the field",
    "finite_number": "use a finite number",
}


def spec_path(environ: Mapping[str, str]) -> Path | None:
    """The spec file named by ``LLEM_SIMULATE_GPUS``, or None when GPUs are not simulated."""
    value = environ.get(SIMULATE_GPUS_ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def load_spec(path: Path) -> SimulatedGpuSpec:
    """The validated spec in `path`; raises `ConfigError` (exit 2) when it is missing or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"cannot read the simulated-GPU spec ({e.strerror or e})",
            source=path,
            issues=[ConfigIssue(SIMULATE_GPUS_ENV_VAR, f"no readable file at {path}", "point it at a spec file")],
        ) from e
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            "the simulated-GPU spec is not valid JSON",
            source=path,
            issues=[ConfigIssue("<json>", e.msg, "fix the JSON syntax", line=e.lineno)],
        ) from e
    try:
        return SimulatedGpuSpec.model_validate(raw)
    except ValidationError as e:
        issues = [
            ConfigIssue(_location(err["loc"]), err["msg"], _fix(err["type"], err.get("ctx") or {}))
            for err in e.errors(include_url=False)
        ]
        raise ConfigError("invalid simulated-GPU spec", source=path, issues=issues) from e


def _fix(kind: str, ctx: Mapping[str, object]) -> str | None:
    if kind == "greater_than_equal":
        return f"use a number ≥ {ctx.get('ge')} (watts are never negative)"
    if kind == "greater_than":
        return f"use a number > {ctx.get('gt')}"
    if kind in ("literal_error", "model_type", "dict_type"):
        return "see the spec format in docs/user-guide.md, 'Simulated GPUs'"
    return _FIXES.get(kind)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("constant", "square", "ramp", "EnergyCounter", "literal[False]"):
            continue  # pydantic's name of the union member, not a field of the file
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"
