"""`--resume`: find the study to continue, and adopt results the host never got to record.

Search: `where` itself when it is a study directory, else its sub-directories;
candidates are manifests with the same ``study_design_hash`` whose status is not
``completed``; the most recently created wins. Nothing found is a `StudyError`
(the user asked to resume; silently starting over could duplicate a campaign).

Adoption: a run whose manifest entry still says ``running`` (the host died after
the container finished, before the checkpoint) but whose ``result.json`` exists
and validates, for the same experiment and cycle, is marked completed instead of
being run again — a result is never duplicated.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from llenergymeasure.errors import StudyError
from llenergymeasure.orchestrator.study.layout import MANIFEST_FILE
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.schemas.job import RESULT_FILE
from llenergymeasure.schemas.manifest import ManifestEntry, StudyManifest
from llenergymeasure.schemas.reading import SchemaVersionError, read_json_tolerant
from llenergymeasure.schemas.results import ExperimentResult

logger = logging.getLogger(__name__)


def _read_manifest(path: Path) -> StudyManifest | None:
    try:
        return read_json_tolerant(StudyManifest, path)
    except (OSError, ValueError, SchemaVersionError) as e:
        logger.debug("ignoring unreadable manifest %s: %s", path, e)
        return None


def find_resumable(where: Path, design_hash: str) -> Path | None:
    """The latest unfinished study directory for `design_hash` at or under `where`, if any."""
    if (where / MANIFEST_FILE).is_file():
        candidates = [where]
    elif where.is_dir():
        candidates = [p for p in where.iterdir() if (p / MANIFEST_FILE).is_file()]
    else:
        return None
    found: list[tuple[datetime, Path]] = []
    for study_dir in candidates:
        m = _read_manifest(study_dir / MANIFEST_FILE)
        if m is not None and m.study_design_hash == design_hash and m.status != "completed":
            found.append((m.created_at, study_dir))
    if not found:
        return None
    return max(found, key=lambda t: (t[0], t[1].name))[1]


def require_resumable(where: Path, design_hash: str) -> Path:
    found = find_resumable(where, design_hash)
    if found is None:
        raise StudyError(
            f"nothing to resume: no unfinished study with design hash {design_hash} in {where} "
            "(fix: run without --resume to start a new study, or pass --output <dir holding the study>)",
            study_dir=where,
        )
    return found


def load_valid_result(path: Path, entry: ManifestEntry) -> ExperimentResult | None:
    """The result at `path` if it validates and belongs to `entry`'s experiment and cycle."""
    try:
        result = read_json_tolerant(ExperimentResult, path)
    except (OSError, ValueError, SchemaVersionError):
        return None
    if result.cycle != entry.cycle or result.experiment_id != entry.experiment_id:
        return None
    return result


def adopt_finished_runs(store: ManifestStore, study_dir: Path) -> list[tuple[int, int]]:
    """Mark ``running`` entries whose valid result.json is on disk as completed; return their keys."""
    adopted: list[tuple[int, int]] = []
    for entry in store.entries():
        if entry.status != "running" or not entry.run_dir:
            continue
        result = load_valid_result(study_dir / entry.run_dir / RESULT_FILE, entry)
        if result is None:
            continue
        store.mark_completed(entry.index, entry.cycle, finished_at=result.finished_at)
        adopted.append((entry.index, entry.cycle))
        logger.info(
            "adopted the result of experiment %s cycle %d written before the host stopped",
            entry.experiment_id,
            entry.cycle,
        )
    return adopted
