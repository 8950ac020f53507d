"""How a study runs when the YAML does not say: one policy for `llem run` and `run_study`.

A new study gets, for every execution field its config leaves unset:
- ``n_cycles``: the explicit request (``--cycles`` / ``run_study(n_cycles=...)``), else
  `CLI_DEFAULT_N_CYCLES` (3), so every configuration gets a spread;
- ``cycle_order``: the explicit request (``--order`` / ``cycle_order=``), else the model default;
- ``config_gap_seconds`` / ``cycle_gap_seconds``: the user config's ``execution`` section, else
  the model defaults.
Explicit requests win over the file; the file wins over the user config.

A resumed study runs as it was started: its execution settings are those recorded in
its manifest (cycles, order, gaps, timeouts; a shuffled order is seeded from the design
hash, which a resume shares by definition). An explicit request that contradicts the
record is a `ConfigError` naming both values; a different value in the file is ignored
(logged), since the file may be the one the study was started from with a flag on top.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig
from llenergymeasure.schemas.study import CLI_DEFAULT_N_CYCLES, CycleOrder, ExecutionConfig, StudyConfig

logger = logging.getLogger(__name__)

_GAPS = ("config_gap_seconds", "cycle_gap_seconds")


@dataclass(frozen=True)
class ExecutionRequest:
    """Execution settings asked for explicitly (CLI flags, `run_study` keywords); None = not asked."""

    n_cycles: int | None = None
    cycle_order: CycleOrder | None = None

    def asked(self) -> dict[str, Any]:
        return {k: v for k, v in (("n_cycles", self.n_cycles), ("cycle_order", self.cycle_order)) if v is not None}


_FLAGS = {"n_cycles": "--cycles", "cycle_order": "--order"}


def with_execution_defaults(study: StudyConfig, user: EffectiveUserConfig, request: ExecutionRequest) -> StudyConfig:
    """`study` with the execution a new study runs with (see the module docstring)."""
    explicit = study.execution.model_fields_set
    updates: dict[str, Any] = dict(request.asked())
    if "n_cycles" not in updates and "n_cycles" not in explicit:
        updates["n_cycles"] = CLI_DEFAULT_N_CYCLES
    for gap in _GAPS:
        default = getattr(user.config.execution, gap)
        if gap not in explicit and default is not None:
            updates[gap] = default
    if not updates:
        return study
    try:
        execution = ExecutionConfig.model_validate({**study.execution.model_dump(exclude_unset=True), **updates})
    except ValidationError as e:
        from llenergymeasure.schemas._issues import issues_from_validation

        issues = [
            ConfigIssue(flag, i.message, (i.fix or "").replace(i.field, flag))
            for i in issues_from_validation(e, ExecutionConfig, "execution")
            for flag in [_FLAGS.get(i.field.removeprefix("execution."), i.field)]
        ]
        raise ConfigError("invalid execution settings", source="<command line>", issues=issues) from None
    return study.model_copy(update={"execution": execution})


def with_recorded_execution(
    study: StudyConfig, recorded: ExecutionConfig, request: ExecutionRequest, manifest_path: Path
) -> StudyConfig:
    """`study` with the execution recorded when it was started; `ConfigError` if `request` contradicts it."""
    issues = [
        ConfigIssue(
            f"execution.{key}",
            f"{_FLAGS[key]} {value} asked, but the study being resumed was started with {key} = "
            f"{getattr(recorded, key)}",
            f"drop {_FLAGS[key]} to finish the study as it was started, or run without --resume to start a new one",
        )
        for key, value in request.asked().items()
        if value != getattr(recorded, key)
    ]
    if issues:
        raise ConfigError(
            "--resume continues a study with the execution settings it was started with",
            source=manifest_path,
            issues=issues,
        )
    explicit = study.execution.model_fields_set
    for key in sorted(explicit):
        if getattr(study.execution, key) != getattr(recorded, key):
            logger.info(
                "resume: execution.%s = %s as recorded in %s (the config says %s)",
                key,
                getattr(recorded, key),
                manifest_path,
                getattr(study.execution, key),
            )
    return study.model_copy(update={"execution": recorded})
