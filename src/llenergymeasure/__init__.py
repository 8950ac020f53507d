"""llenergymeasure: measure the energy efficiency of LLM inference.

The public API is exactly `__all__`. Names are resolved lazily (PEP 562), so
``import llenergymeasure`` and ``llem --version`` stay fast and never load an ML
framework or the Docker SDK; ``llenergymeasure.ExperimentConfig`` loads the
schema models on first use.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from llenergymeasure._version import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from llenergymeasure.schemas.config.experiment import ExperimentConfig
    from llenergymeasure.schemas.results import ExperimentResult
    from llenergymeasure.schemas.study import StudyConfig
    from llenergymeasure.schemas.study_result import StudyResult

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

_LAZY = {
    "ExperimentConfig": "llenergymeasure.schemas.config.experiment",
    "ExperimentResult": "llenergymeasure.schemas.results",
    "StudyConfig": "llenergymeasure.schemas.study",
    "StudyResult": "llenergymeasure.schemas.study_result",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llenergymeasure' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def run_experiment(
    config: ExperimentConfig | str | Path | dict[str, Any],
    *,
    output_dir: str | Path | None = None,
    **kwargs: Any,
) -> ExperimentResult:
    """Run one experiment and return its `ExperimentResult`.

    `config` is an `ExperimentConfig`, a path to an experiment YAML, or a dict.
    Without `output_dir` nothing is left on disk. Keyword arguments are those of
    `llenergymeasure.orchestrator.api.run_experiment`.
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

    Always writes the study directory (manifest, results, study_result.json).
    Keyword arguments are those of `llenergymeasure.orchestrator.api.run_study`.
    """
    from llenergymeasure.orchestrator.api import run_study as _run

    return _run(config, output_dir=output_dir, **kwargs)
