"""llenergymeasure: measure the energy efficiency of LLM inference.

The public API is exactly `__all__`. Importing this package loads pydantic and
the schema models only — no ML framework, no Docker SDK.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llenergymeasure._version import __version__
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.schemas.study_result import StudyResult

if TYPE_CHECKING:
    from pathlib import Path

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "StudyConfig",
    "StudyResult",
    "__version__",
    "run_experiment",
    "run_study",
]


def run_experiment(
    config: ExperimentConfig | str | Path | dict[str, Any],
    *,
    output_dir: str | Path | None = None,
    **kwargs: Any,
) -> ExperimentResult:
    """Run one experiment and return its result.

    `config` is an `ExperimentConfig`, a path to an experiment YAML, or a dict.
    Without `output_dir` nothing is left on disk. See
    `llenergymeasure.orchestrator.api.run_experiment` for the keyword arguments.
    """
    from llenergymeasure.orchestrator.api import run_experiment as _run

    return _run(config, output_dir=output_dir, **kwargs)


def run_study(
    config: StudyConfig | str | Path | dict[str, Any],
    *,
    output_dir: str | Path | None = None,
    **kwargs: Any,
) -> StudyResult:
    """Run a study (every experiment × cycle) and return its `StudyResult`.

    Always writes the study directory (manifest, results). See
    `llenergymeasure.orchestrator.api.run_study` for the keyword arguments.
    """
    from llenergymeasure.orchestrator.api import run_study as _run

    return _run(config, output_dir=output_dir, **kwargs)
