"""The contract shared by host and container: pydantic models only.

Imports pydantic and the standard library, never `orchestrator` or `harness`.
"""

from llenergymeasure.schemas.config import ExperimentConfig
from llenergymeasure.schemas.events import ErrorDocument, ProgressEvent, parse_event_line
from llenergymeasure.schemas.job import PROTOCOL_VERSION, ExperimentJob, RunContext
from llenergymeasure.schemas.manifest import ManifestEntry, StudyManifest
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import ExecutionConfig, StudyConfig
from llenergymeasure.schemas.study_result import StudyResult
from llenergymeasure.schemas.sweep import resolve_study

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
