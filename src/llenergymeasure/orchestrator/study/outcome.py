"""``study_result.json``: what the study produced, built from the manifest and the result files."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from llenergymeasure.orchestrator.study.layout import STUDY_RESULT_FILE
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.orchestrator.study.resume import load_valid_result
from llenergymeasure.results.summary import summarise
from llenergymeasure.schemas.job import PROTOCOL_VERSION, RESULT_FILE
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.schemas.study_result import MeasurementProtocol, StudyResult, StudySummary
from llenergymeasure.util.clock import utc_now
from llenergymeasure.util.files import atomic_write_text

logger = logging.getLogger(__name__)


def runner_label(kinds: Collection[str]) -> Literal["docker", "local", "mixed"] | None:
    distinct = set(kinds)
    if not distinct:
        return None
    if len(distinct) > 1:
        return "mixed"
    kind = distinct.pop()
    return kind if kind in ("docker", "local") else "mixed"  # type: ignore[return-value]


def build_study_result(
    study: StudyConfig, store: ManifestStore, study_dir: Path, runner_kinds: Collection[str]
) -> StudyResult:
    """Collect every completed run's result (in plan order) and summarise each configuration."""
    manifest = store.manifest
    per_experiment: dict[int, list[ExperimentResult]] = {i: [] for i in range(len(study.experiments))}
    result_files: list[str] = []
    for entry in manifest.entries:
        if entry.status != "completed" or not entry.run_dir:
            continue
        rel = f"{entry.run_dir}/{RESULT_FILE}"
        result = load_valid_result(study_dir / rel, entry)
        if result is None:
            logger.warning("completed run %s has no valid %s", entry.run_dir, RESULT_FILE)
            continue
        result_files.append(rel)
        per_experiment.setdefault(entry.index, []).append(result)
    configurations = [summarise(study.experiments[i], results) for i, results in sorted(per_experiment.items())]
    summary = StudySummary(configurations=configurations, warnings=[w for c in configurations for w in c.warnings])
    for warning in summary.warnings:
        logger.warning("%s", warning)
    return StudyResult(
        study_id=manifest.study_id,
        name=manifest.name,
        study_design_hash=manifest.study_design_hash,
        protocol_version=PROTOCOL_VERSION,
        status=manifest.status if manifest.status != "running" else "interrupted",
        study_dir=str(study_dir.resolve()),
        started_at=manifest.created_at,
        finished_at=utc_now(),
        runs_total=len(manifest.entries),
        runs_completed=store.count("completed"),
        runs_failed=store.count("failed"),
        result_files=result_files,
        skipped=study.skipped,
        measurement_protocol=measurement_protocol(study),
        summary=summary,
        runner=runner_label(runner_kinds),
    )


def measurement_protocol(study: StudyConfig) -> MeasurementProtocol:
    """The settings two studies must share for their numbers to be compared."""
    ex = study.execution
    warmups, baselines = [], []
    for e in study.experiments:
        if e.warmup not in warmups:
            warmups.append(e.warmup)
        if e.baseline not in baselines:
            baselines.append(e.baseline)
    return MeasurementProtocol(
        n_cycles=ex.n_cycles,
        cycle_order=ex.cycle_order,
        config_gap_seconds=ex.config_gap_seconds,
        cycle_gap_seconds=ex.cycle_gap_seconds,
        warmup=warmups,
        baseline=baselines,
    )


def write_study_result(result: StudyResult, study_dir: Path) -> Path:
    path = study_dir / STUDY_RESULT_FILE
    atomic_write_text(path, result.model_dump_json(indent=2) + "\n")
    return path
