"""What a report shows, computed once from one or more loaded studies (no plotting here).

Rows are configurations keyed by ``measurement_config_hash``: the same configuration measured in
two study directories is one row with a cell per study, which is what makes studies comparable
side by side.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llenergymeasure.results.loading import LoadedRun, LoadedStudy
from llenergymeasure.schemas.config.experiment import OPERATIONAL_FIELDS
from llenergymeasure.schemas.flatten import Scalar, flatten
from llenergymeasure.schemas.study_result import ConfigSummary

#: energy methods that are not a measurement of this run's GPU energy
NOT_MEASURED = ("estimated", "unavailable")


@dataclass
class Cell:
    """One configuration in one study: its summary across cycles and its runs."""

    summary: ConfigSummary
    runs: list[LoadedRun]

    def mean_of(self, get: Callable[[LoadedRun], float | None]) -> float | None:
        values = [v for v in (get(r) for r in self.runs) if v is not None]
        return statistics.fmean(values) if values else None

    @property
    def warning_count(self) -> int:
        return sum(len(r.result.measurement_warnings) for r in self.runs) + len(self.summary.warnings)


@dataclass
class Row:
    """One configuration (measurement hash) across the compared studies."""

    config_hash: str
    label: str
    knobs: dict[str, Scalar]
    cells: dict[str, Cell] = field(default_factory=dict)  # study_id → cell


@dataclass
class ReportData:
    studies: list[LoadedStudy]
    rows: list[Row]
    swept: list[str]  # flattened config keys whose value differs between rows

    @property
    def study_ids(self) -> list[str]:
        return [s.manifest.study_id for s in self.studies]

    def runs(self) -> list[LoadedRun]:
        return [run for s in self.studies for run in s.runs]


def config_knobs(run: LoadedRun) -> dict[str, Scalar]:
    """The measurement-defining config of a run, flattened (``pytorch.batch_size`` ...)."""
    dumped = run.result.config.model_dump(mode="json", exclude=set(OPERATIONAL_FIELDS))
    return flatten(dumped)


def build_report_data(studies: Sequence[LoadedStudy]) -> ReportData:
    rows: dict[str, Row] = {}
    for study in studies:
        by_hash: dict[str, list[LoadedRun]] = {}
        for run in study.runs:
            by_hash.setdefault(run.result.measurement_config_hash, []).append(run)
        summaries = {s.measurement_config_hash: s for s in study.summaries()}
        for config_hash, runs in by_hash.items():
            row = rows.get(config_hash)
            if row is None:
                row = rows[config_hash] = Row(config_hash, summaries[config_hash].label, config_knobs(runs[0]))
            row.cells[study.manifest.study_id] = Cell(summaries[config_hash], runs)
    ordered = list(rows.values())
    keys = sorted({k for r in ordered for k in r.knobs})
    swept = [k for k in keys if len({repr(r.knobs.get(k)) for r in ordered}) > 1]
    return ReportData(list(studies), ordered, swept)


def pareto_front(points: Sequence[tuple[float, float]], *, maximize_y: bool) -> list[int]:
    """Indices of the non-dominated points, x always minimised (J/token), y maximised (throughput) or
    minimised (latency). A point is dominated when another is at least as good on both axes and
    strictly better on one. Sorted by x."""
    sign = -1.0 if maximize_y else 1.0
    front = []
    for i, (x, y) in enumerate(points):
        dominated = False
        for j, (x2, y2) in enumerate(points):
            if j == i:
                continue
            better_or_equal = x2 <= x and sign * y2 <= sign * y
            strictly = x2 < x or sign * y2 < sign * y
            if better_or_equal and strictly:
                dominated = True
                break
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])
