"""`load_study` and `load_result`: a finished (or interrupted) study as Python objects and DataFrames.

Every file is read with the tolerant readers (`llenergymeasure.schemas.reading`): any 2.x
schema, unknown fields ignored with a warning, 3.x refused. Only completed runs are loaded; a
completed run whose ``result.json`` is missing or invalid is left out with a warning.

DataFrames need pandas, from the ``[report]`` extra; without it the error says what to install.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from llenergymeasure.errors import LLEMError
from llenergymeasure.orchestrator.study.layout import MANIFEST_FILE, STUDY_RESULT_FILE
from llenergymeasure.results.deps import require
from llenergymeasure.schemas.flatten import ID_COLUMNS, Scalar, flatten, result_row
from llenergymeasure.schemas.job import RESULT_FILE
from llenergymeasure.schemas.manifest import ManifestEntry, StudyManifest
from llenergymeasure.schemas.reading import read_json_tolerant, validate_tolerant
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study_result import ConfigSummary, StudyResult

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

RESULTS_CSV = "results.csv"
SUMMARY_CSV = "summary.csv"


class StudyLoadError(LLEMError):
    """A directory is not a readable study directory. Exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class LoadedRun:
    """One completed run: its manifest entry, its result and its directory."""

    entry: ManifestEntry
    result: ExperimentResult
    run_dir: Path


@dataclass
class LoadedStudy:
    """A study directory read back: manifest, study result (if written) and every completed run."""

    study_dir: Path
    manifest: StudyManifest
    study_result: StudyResult | None
    runs: list[LoadedRun] = field(default_factory=list)

    @property
    def results(self) -> list[ExperimentResult]:
        """Every completed run's result, in manifest (execution) order."""
        return [r.result for r in self.runs]

    def summaries(self) -> list[ConfigSummary]:
        """One `ConfigSummary` per configuration (first appearance order), computed from the runs."""
        from llenergymeasure.results.summary import summarise

        groups: dict[str, list[ExperimentResult]] = {}
        for run in sorted(self.runs, key=lambda r: (r.entry.index, r.entry.cycle)):
            groups.setdefault(run.result.measurement_config_hash, []).append(run.result)
        return [summarise(results[0].config, results) for results in groups.values()]

    def rows(self) -> list[dict[str, Scalar]]:
        """One flat row per completed run (the DataFrame and ``results.csv`` columns)."""
        out = []
        for run in self.runs:
            row = result_row(run.result.model_dump(mode="json"))
            row["run_dir"] = run.run_dir.name
            out.append(row)
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """One row per completed run: identifiers, the flattened config (``config.pytorch.batch_size``)
        and every scalar metric, with dotted column names (needs pandas: the ``[report]`` extra)."""
        pandas: Any = require("pandas", "DataFrames")
        return pandas.DataFrame.from_records(self.rows())

    def summary_dataframe(self) -> pd.DataFrame:
        """One row per configuration: label, hash, cycles and mean/std/n/CI/CV of each headline metric."""
        pandas: Any = require("pandas", "DataFrames")
        return pandas.DataFrame.from_records(summary_rows(self.summaries(), self.manifest.study_id))

    def timeseries(self) -> pd.DataFrame:
        """Every run's power timeline in one frame, each sample with study_id, experiment_id, cycle and
        measurement_config_hash (runs without a ``timeseries.parquet`` are left out)."""
        pandas: Any = require("pandas", "DataFrames")
        frames = [self.run_timeseries(run) for run in self.runs]
        present = [f for f in frames if f is not None]
        if not present:
            return pandas.DataFrame(columns=[*ID_COLUMNS, "elapsed_s", "device_index", "power_w", "in_window"])
        return pandas.concat(present, ignore_index=True)

    def run_timeseries(self, run: LoadedRun) -> pd.DataFrame | None:
        """One run's timeline with its identifiers, or None when it has none."""
        if not run.result.timeseries_file:
            return None
        path = run.run_dir / run.result.timeseries_file
        if not path.is_file():
            return None
        require("pandas", "DataFrames")
        import pyarrow.parquet as pq

        frame = pq.read_table(path).to_pandas()
        r = run.result
        for name, value in zip(
            ID_COLUMNS, (r.study_id, r.experiment_id, r.cycle, r.measurement_config_hash), strict=True
        ):
            frame[name] = value  # older timelines lack the columns; the result is the authority
        return frame

    def write_csv(self, directory: Path | None = None) -> tuple[Path, Path]:
        """Write ``results.csv`` (one row per run) and ``summary.csv`` (one per configuration)."""
        target = Path(directory) if directory is not None else self.study_dir
        results_path, summary_path = target / RESULTS_CSV, target / SUMMARY_CSV
        self.to_dataframe().to_csv(results_path, index=False)
        self.summary_dataframe().to_csv(summary_path, index=False)
        return results_path, summary_path


def summary_rows(summaries: Sequence[ConfigSummary], study_id: str | None = None) -> list[dict[str, Scalar]]:
    """Flat rows of `summaries` (``energy_per_output_token_j.mean`` ...)."""
    rows = []
    for s in summaries:
        row: dict[str, Scalar] = {"study_id": study_id}
        data = s.model_dump(mode="json")
        warnings = data.pop("warnings")
        row.update(flatten(data))
        row["warnings"] = "; ".join(warnings)
        rows.append(row)
    return rows


def load_result(path: str | Path) -> ExperimentResult:
    """One result from a ``result.json`` path or a run directory (tolerant reader)."""
    target = Path(path)
    if target.is_dir():
        target = target / RESULT_FILE
    return read_json_tolerant(ExperimentResult, target)


def load_study(study_dir: str | Path) -> LoadedStudy:
    """The study in `study_dir`: manifest, study result (if written) and every completed run."""
    root = Path(study_dir)
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise StudyLoadError(
            f"{root} is not a study directory: no {MANIFEST_FILE} "
            "(fix: pass the directory `llem run` created, <results>/<name>_<timestamp>)"
        )
    try:
        manifest = read_json_tolerant(StudyManifest, manifest_path)
    except (OSError, ValueError) as e:
        raise StudyLoadError(f"cannot read {manifest_path}: {e}") from e
    study_result = None
    if (root / STUDY_RESULT_FILE).is_file():
        try:
            study_result = read_json_tolerant(StudyResult, root / STUDY_RESULT_FILE)
        except (OSError, ValueError) as e:
            logger.warning("ignoring unreadable %s: %s", root / STUDY_RESULT_FILE, e)
    runs = []
    for entry in manifest.entries:
        if entry.status != "completed" or not entry.run_dir:
            continue
        run_dir = root / entry.run_dir
        try:
            data = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
            result = validate_tolerant(ExperimentResult, data, str(run_dir / RESULT_FILE))
        except (OSError, ValueError, ValidationError) as e:
            logger.warning("completed run %s has no readable %s: %s", entry.run_dir, RESULT_FILE, e)
            continue
        runs.append(LoadedRun(entry, result, run_dir))
    return LoadedStudy(root, manifest, study_result, runs)
