"""`ManifestStore`: the study checkpoint, rewritten atomically after every transition.

Run states::

    pending ──mark_running──► running ──mark_completed──► completed
       ▲                         │
       │                         ├──mark_failed──────► failed ──(resume)──► running ...
       ├──mark_retrying──────────┤   (transient failure, tries left: the failure kept in `retried`)
       └──mark_interrupted───────┘   (Ctrl-C: back to pending, the reason kept in `failure`)

Study states: running → completed | failed | interrupted (`set_status`).

Every mutation replaces the entry (pydantic models are treated as values) and
writes ``manifest.json`` through `atomic_write_text`, so a host killed at any
instant leaves the last consistent checkpoint on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from llenergymeasure._version import __version__
from llenergymeasure.errors import StudyError
from llenergymeasure.orchestrator.study.layout import MANIFEST_FILE, experiment_id
from llenergymeasure.schemas.manifest import ManifestEntry, RunFailure, StudyManifest, StudyStatus
from llenergymeasure.schemas.reading import SchemaVersionError, read_json_tolerant
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.util.clock import utc_now
from llenergymeasure.util.files import atomic_write_text

RunKey = tuple[int, int]  # (experiment index, cycle)


class ManifestStore:
    """Holds one `StudyManifest` and its file; every `mark_*` is followed by an atomic write."""

    def __init__(self, path: Path, manifest: StudyManifest, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = path
        self.manifest = manifest
        self._clock = clock

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, study_dir: Path, study_id: str, study: StudyConfig, clock: Callable[[], datetime] = utc_now
    ) -> ManifestStore:
        """A fresh manifest with one pending entry per planned run, written at once."""
        now = clock()
        manifest = StudyManifest(
            study_id=study_id,
            name=study.name,
            study_design_hash=study.study_design_hash,
            status="running",
            created_at=now,
            updated_at=now,
            execution=study.execution,
            llenergymeasure_version=__version__,
            entries=plan_entries(study, []),
        )
        store = cls(study_dir / MANIFEST_FILE, manifest, clock)
        store.write()
        return store

    @classmethod
    def load(cls, path: Path, clock: Callable[[], datetime] = utc_now) -> ManifestStore:
        try:
            manifest = read_json_tolerant(StudyManifest, path)
        except SchemaVersionError as e:
            raise StudyError(e.message, study_dir=path.parent) from e
        except (OSError, ValueError) as e:
            raise StudyError(f"cannot read the manifest {path}: {e}", study_dir=path.parent) from e
        return cls(path, manifest, clock)

    def reconcile(self, study: StudyConfig) -> None:
        """Re-plan for `study` (same design, possibly other execution settings), keeping every known run's state."""
        if study.study_design_hash != self.manifest.study_design_hash:
            raise StudyError(
                f"the study in {self.path.parent} has design hash {self.manifest.study_design_hash}, "
                f"this config has {study.study_design_hash}: they measure different things",
                study_dir=self.path.parent,
            )
        self.manifest = self.manifest.model_copy(
            update={
                "entries": plan_entries(study, self.manifest.entries),
                "execution": study.execution,
                "status": "running",
            }
        )
        self.write()

    # -- queries --------------------------------------------------------------------------------

    def entry(self, index: int, cycle: int) -> ManifestEntry:
        return self.manifest.entries[self._position(index, cycle)]

    def entries(self) -> list[ManifestEntry]:
        return list(self.manifest.entries)

    def count(self, status: str) -> int:
        return sum(1 for e in self.manifest.entries if e.status == status)

    # -- transitions ----------------------------------------------------------------------------

    def mark_running(self, index: int, cycle: int, run_dir: str) -> ManifestEntry:
        e = self.entry(index, cycle)
        return self._replace(
            index,
            cycle,
            status="running",
            run_dir=run_dir,
            started_at=self._clock(),
            finished_at=None,
            attempts=e.attempts + 1,
            failure=None,
        )

    def mark_completed(self, index: int, cycle: int, *, finished_at: datetime | None = None) -> ManifestEntry:
        return self._replace(index, cycle, status="completed", finished_at=finished_at or self._clock(), failure=None)

    def mark_failed(self, index: int, cycle: int, failure: RunFailure) -> ManifestEntry:
        return self._replace(index, cycle, status="failed", finished_at=self._clock(), failure=failure)

    def mark_retrying(self, index: int, cycle: int, failure: RunFailure) -> ManifestEntry:
        """A try failed for a transient reason and the run goes again: back to pending, the failure kept."""
        retried = [*self.entry(index, cycle).retried, failure]
        return self._replace(index, cycle, status="pending", finished_at=self._clock(), failure=None, retried=retried)

    def mark_interrupted(self, index: int, cycle: int) -> ManifestEntry:
        failure = RunFailure(type="Interrupted", message="interrupted by the user (Ctrl-C); rerun with --resume")
        return self._replace(index, cycle, status="pending", finished_at=self._clock(), failure=failure)

    def set_status(self, status: StudyStatus) -> None:
        self.manifest = self.manifest.model_copy(update={"status": status, "updated_at": self._clock()})
        self.write()

    def write(self) -> None:
        atomic_write_text(self.path, self.manifest.model_dump_json(indent=2) + "\n")

    # -- internals ------------------------------------------------------------------------------

    def _position(self, index: int, cycle: int) -> int:
        for i, e in enumerate(self.manifest.entries):
            if e.index == index and e.cycle == cycle:
                return i
        raise KeyError(f"no manifest entry for experiment {index}, cycle {cycle}")

    def _replace(self, index: int, cycle: int, **update: Any) -> ManifestEntry:
        pos = self._position(index, cycle)
        entry = self.manifest.entries[pos].model_copy(update=update)
        entries = list(self.manifest.entries)
        entries[pos] = entry
        self.manifest = self.manifest.model_copy(update={"entries": entries, "updated_at": self._clock()})
        self.write()
        return entry


def plan_entries(study: StudyConfig, known: Sequence[ManifestEntry]) -> list[ManifestEntry]:
    """One entry per (experiment, cycle) of `study.run_order()`; a known run with the same
    (index, measurement hash, cycle) keeps its state, anything else starts pending."""
    by_key = {(e.index, e.measurement_config_hash, e.cycle): e for e in known}
    out: list[ManifestEntry] = []
    for index, cycle in study.run_order():
        config = study.experiments[index]
        h = config.measurement_config_hash()
        out.append(
            by_key.get((index, h, cycle))
            or ManifestEntry(
                index=index, experiment_id=experiment_id(index, config), measurement_config_hash=h, cycle=cycle
            )
        )
    return out
