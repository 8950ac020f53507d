"""load_study / load_result, the DataFrame columns, the timeline frame and the CSV files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from fixtures.synthetic_study import write_study
from llenergymeasure.results import load_result, load_study
from llenergymeasure.results.loading import StudyLoadError
from llenergymeasure.schemas.reading import SchemaVersionError
from llenergymeasure.schemas.results import ExperimentResult

# The default synthetic study: precisions fp16/bf16 × batch sizes 1/4, 3 cycles = 12 runs.
# Energy (b, c) = (200 + 400/b)·(1 + 0.01·(c − 2)) J over 100 output tokens in a (4 + 4/b) s window,
# idle baseline 30 W. So for b = 1: 594, 600, 606 J → 5.94, 6.00, 6.06 J/token; window 8 s,
# adjusted = E − 30·8 = 354, 360, 366 J → 3.54, 3.60, 3.66 J/token.


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_study(tmp_path_factory.mktemp("s"))


def test_load_study_returns_manifest_study_result_and_runs(study_dir: Path) -> None:
    study = load_study(study_dir)
    assert study.manifest.study_id == study_dir.name
    assert study.study_result is not None
    assert study.study_result.runs_completed == 12
    assert len(study.results) == 12
    assert all(isinstance(r, ExperimentResult) for r in study.results)


def test_dataframe_has_one_row_per_run_with_ids_config_and_metrics(study_dir: Path) -> None:
    df = load_study(study_dir).to_dataframe()
    assert len(df) == 12
    assert list(df.columns[:4]) == ["study_id", "experiment_id", "cycle", "measurement_config_hash"]
    for column in (
        "config.pytorch.batch_size",
        "config.precision",
        "energy_per_output_token_j",
        "energy_per_output_token_adjusted_j",
        "output_tokens_per_s",
        "energy.method",
        "latency.p50_ms",
        "run_dir",
    ):
        assert column in df.columns, column
    b1_fp16 = df[(df["config.pytorch.batch_size"] == 1) & (df["config.precision"] == "fp16")].sort_values("cycle")
    assert list(b1_fp16["energy_per_output_token_j"]) == pytest.approx([5.94, 6.00, 6.06])
    assert list(b1_fp16["energy_per_output_token_adjusted_j"]) == pytest.approx([3.54, 3.60, 3.66])
    assert list(b1_fp16["output_tokens_per_s"]) == pytest.approx([100 / 8] * 3)
    assert set(df["study_id"]) == {study_dir.name}


def test_summary_dataframe_has_ci_by_hand(study_dir: Path) -> None:
    summary = load_study(study_dir).summary_dataframe()
    assert len(summary) == 4
    row = summary[summary["label"] == "tiny · pytorch · fp16 · bs1"].iloc[0]
    # 5.94, 6.00, 6.06: mean 6, sample std 0.06, half width 4.302653 · 0.06 / √3 = 0.149048
    assert row["energy_per_output_token_j.mean"] == pytest.approx(6.0)
    assert row["energy_per_output_token_j.std"] == pytest.approx(0.06)
    assert row["energy_per_output_token_j.ci95_high"] == pytest.approx(6.149048, abs=1e-6)
    assert row["energy_per_output_token_j.cv"] == pytest.approx(0.01)
    assert row["energy_per_output_token_j.n"] == 3


def test_timeseries_frame_carries_identifiers(study_dir: Path) -> None:
    ts = load_study(study_dir).timeseries()
    # (window + 2 s) × 10 samples/s: b = 1 → 100 samples, b = 4 → 70; six runs of each
    assert len(ts) == 6 * 100 + 6 * 70
    assert {"study_id", "experiment_id", "cycle", "measurement_config_hash", "power_w"} <= set(ts.columns)
    assert ts.groupby(["experiment_id", "cycle"]).ngroups == 12


def test_csv_files_match_the_dataframe(study_dir: Path, tmp_path: Path) -> None:
    study = load_study(study_dir)
    results_csv, summary_csv = study.write_csv(tmp_path)
    with results_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert list(rows[0]) == list(study.to_dataframe().columns)
    with summary_csv.open() as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 4
    by_label = {r["label"]: r for r in summary}
    # b = 4: 297, 300, 303 J / 100 tokens → mean 3.0 J/token
    assert math.isclose(float(by_label["tiny · pytorch · bf16 · bs4"]["energy_per_output_token_j.mean"]), 3.0)


def test_load_result_from_dir_or_file(study_dir: Path) -> None:
    run = load_study(study_dir).runs[0]
    assert load_result(run.run_dir).experiment_id == run.result.experiment_id
    assert load_result(run.run_dir / "result.json").cycle == run.result.cycle


def test_result_json_and_parquet_round_trip(study_dir: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    result = load_study(study_dir).results[0]
    text = result.to_json(tmp_path / "r.json")
    assert ExperimentResult.from_json(text) == result
    assert ExperimentResult.from_json(tmp_path / "r.json") == result
    table = pq.read_table(result.to_parquet(tmp_path / "r.parquet"))
    assert table.num_rows == 1
    assert table.column("energy_per_output_token_j").to_pylist() == [result.energy_per_output_token_j]
    assert table.column("config.pytorch.batch_size").to_pylist() == [result.config.pytorch.batch_size]  # type: ignore[union-attr]


def test_not_a_study_dir_and_3_x_result(tmp_path: Path, study_dir: Path) -> None:
    with pytest.raises(StudyLoadError, match="not a study directory"):
        load_study(tmp_path)
    run = load_study(study_dir).runs[0]
    data = json.loads((run.run_dir / "result.json").read_text())
    data["schema_version"] = "3.0"
    with pytest.raises(SchemaVersionError):
        ExperimentResult.from_json(json.dumps(data))
