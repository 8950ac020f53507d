"""The HTML report: self-contained, every figure inline and exported, labels, comparison, Pareto front."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from fixtures.synthetic_study import write_study
from llenergymeasure.orchestrator.cli import main
from llenergymeasure.results.deps import MissingExtraError, require
from llenergymeasure.results.loading import load_study
from llenergymeasure.results.report import write_report
from llenergymeasure.results.report.data import build_report_data, pareto_front

EXPECTED_FIGURES = {
    "energy-per-config",
    "energy-vs-precision",
    "energy-vs-pytorch-batch-size",
    "pareto-throughput",
    "pareto-latency",
    "power-timelines",
    "cycle-spread",
}


def _figures(page: str) -> dict[str, str]:
    return dict(re.findall(r'<figure id="fig-[^"]+" data-figure="([^"]+)">(.*?)</figure>', page, re.DOTALL))


def test_pareto_front_by_hand() -> None:
    # (J/token, tokens/s): b beats a on both; c is cheapest; d fastest; e dominated by d
    points = [(2.0, 10.0), (1.5, 20.0), (1.0, 5.0), (3.0, 40.0), (3.5, 30.0)]
    assert pareto_front(points, maximize_y=True) == [2, 1, 3]
    # latency minimised: (J, ms): lower is better on both → only (1.0, 5.0) survives
    assert pareto_front(points, maximize_y=False) == [2]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)], maximize_y=True) == [0, 1]  # ties dominate nobody


def test_swept_knobs_are_the_settings_that_vary(tmp_path: Path) -> None:
    data = build_report_data([load_study(write_study(tmp_path))])
    assert data.swept == ["precision", "pytorch.batch_size"]
    assert len(data.rows) == 4


def test_report_is_self_contained_with_every_figure(tmp_path: Path) -> None:
    study_dir = write_study(tmp_path)
    files = write_report([study_dir])
    assert files.html == study_dir / "report.html"
    page = files.html.read_text()
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing fetched from the network
    figures = _figures(page)
    assert set(figures) == EXPECTED_FIGURES
    for name, body in figures.items():
        assert "<svg" in body and "<path" in body, name
        assert (study_dir / "figures" / f"{name}.png").stat().st_size > 1000
        assert (study_dir / "figures" / f"{name}.svg").is_file()
    # the table: b = 1 fp16 → 6.0 ± 0.149 J/token (see test_loading for the arithmetic)
    assert "6.000 ± 0.149" in page
    assert "SIMULATED" not in page and "UNAVAILABLE" not in page
    assert (
        'href="000_c1_tiny_pytorch_' in page
    )  # each cycle links to its run directory  # links to the run files, relative to the report


def test_labels_for_simulated_and_unavailable_energy(tmp_path: Path) -> None:
    simulated = write_study(tmp_path / "a", source="simulated")
    page = write_report([simulated]).html.read_text()
    assert "SIMULATED: 12 of 12 runs" in page
    cpu = write_study(tmp_path / "b", energy=False)
    page = write_report([cpu]).html.read_text()
    assert "UNAVAILABLE: 12 of 12 runs" in page
    assert "No energy was measured" in page  # the energy figures say so instead of drawing empty axes
    assert "energy unavailable: output tokens/s shown" in page  # per-config and spread fall back, labelled
    assert set(_figures(page)) == EXPECTED_FIGURES


def test_two_studies_share_rows_by_config_hash(tmp_path: Path) -> None:
    a = write_study(tmp_path / "a", name="first")
    b = write_study(tmp_path / "b", name="second", batch_sizes=[4, 8])
    out = tmp_path / "compare.html"
    files = write_report([a, b], out)
    assert files.html == out
    data = build_report_data([load_study(a), load_study(b)])
    # a: bs 1, 4; b: bs 4, 8 (× fp16, bf16) → bs4 rows shared: 2 + 2 + 2 = 6 rows
    assert len(data.rows) == 6
    shared = [r for r in data.rows if len(r.cells) == 2]
    assert {r.label for r in shared} == {"tiny · pytorch · fp16 · bs4", "tiny · pytorch · bf16 · bs4"}
    page = out.read_text()
    assert "first vs second" in page


def test_csv_with_the_report(tmp_path: Path) -> None:
    study_dir = write_study(tmp_path)
    files = write_report([study_dir], csv=True)
    assert [p.name for p in files.csv] == ["results.csv", "summary.csv"]


def test_missing_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(MissingExtraError, match=r'pip install "llenergymeasure\[report\]"'):
        require("matplotlib", "llem report")
    study_dir = write_study(tmp_path)
    assert main(["report", str(study_dir)]) == 2
    assert 'pip install "llenergymeasure[report]"' in capsys.readouterr().err


def test_llem_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study_dir = write_study(tmp_path)
    assert main(["report", str(study_dir), "--csv"]) == 0
    out = capsys.readouterr().out
    assert f"report: {study_dir / 'report.html'}" in out
    assert (study_dir / "results.csv").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2


def test_run_links_name_the_machine_each_run_ran_on(tmp_path: Path) -> None:
    import json

    study_dir = write_study(tmp_path)
    result_path = sorted(study_dir.glob("*/result.json"))[0]
    data = json.loads(result_path.read_text())
    data["node"] = {"host_name": "gpu-node-7", "ray_node_id": "6f25", "gpu_uuids": [], "concurrent_runs": []}
    result_path.write_text(json.dumps(data))
    page = write_report([study_dir]).html.read_text()
    assert f'title="{result_path.parent.name} on gpu-node-7"' in page
