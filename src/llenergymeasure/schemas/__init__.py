"""The contract shared by host and container: pydantic models only.

Imports pydantic and the standard library, never `orchestrator` or `harness`.
Names below are resolved lazily (PEP 562): importing one model does not build
every other model's validators, which keeps the CLI's start-up short.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llenergymeasure.schemas.config.experiment import ExperimentConfig
    from llenergymeasure.schemas.events import ErrorDocument, ProgressEvent, parse_event_line
    from llenergymeasure.schemas.job import PROTOCOL_VERSION, ExperimentJob, RunContext
    from llenergymeasure.schemas.manifest import ManifestEntry, StudyManifest
    from llenergymeasure.schemas.results import ExperimentResult
    from llenergymeasure.schemas.study import ExecutionConfig, StudyConfig
    from llenergymeasure.schemas.study_result import StudyResult
    from llenergymeasure.schemas.sweep import resolve_study

_LAZY = {
    "PROTOCOL_VERSION": "llenergymeasure.schemas.job",
    "ErrorDocument": "llenergymeasure.schemas.events",
    "ExecutionConfig": "llenergymeasure.schemas.study",
    "ExperimentConfig": "llenergymeasure.schemas.config.experiment",
    "ExperimentJob": "llenergymeasure.schemas.job",
    "ExperimentResult": "llenergymeasure.schemas.results",
    "ManifestEntry": "llenergymeasure.schemas.manifest",
    "ProgressEvent": "llenergymeasure.schemas.events",
    "RunContext": "llenergymeasure.schemas.job",
    "StudyConfig": "llenergymeasure.schemas.study",
    "StudyManifest": "llenergymeasure.schemas.manifest",
    "StudyResult": "llenergymeasure.schemas.study_result",
    "parse_event_line": "llenergymeasure.schemas.events",
    "resolve_study": "llenergymeasure.schemas.sweep",
}

__all__ = [
    "PROTOCOL_VERSION",
    "ErrorDocument",
    "ExecutionConfig",
    "ExperimentConfig",
    "ExperimentJob",
    "ExperimentResult",
    "ManifestEntry",
    "ProgressEvent",
    "RunContext",
    "StudyConfig",
    "StudyManifest",
    "StudyResult",
    "parse_event_line",
    "resolve_study",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llenergymeasure.schemas' has no attribute {name!r}")
