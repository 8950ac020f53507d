"""llenergymeasure: measure the energy efficiency of LLM inference.

The public API is exactly `__all__`. Names are resolved lazily (PEP 562), so
``import llenergymeasure`` and ``llem --version`` stay fast and never load an ML
framework or the Docker SDK; ``llenergymeasure.ExperimentConfig`` loads the
schema models on first use, ``llenergymeasure.run_experiment`` / ``run_study``
the host orchestrator (`llenergymeasure.orchestrator.api`, never the harness).

    from llenergymeasure import run_experiment, run_study

    result = run_experiment(model="gpt2", n=20)          # fields over the defaults
    result = run_experiment("experiment.yaml", n=5)      # fields over a file
    study = run_study("study.yaml", n_cycles=5)          # same defaults as `llem run`
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from llenergymeasure._version import __version__

if TYPE_CHECKING:
    from llenergymeasure.orchestrator.api import run_experiment, run_study
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
    "run_experiment": "llenergymeasure.orchestrator.api",
    "run_study": "llenergymeasure.orchestrator.api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llenergymeasure' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
