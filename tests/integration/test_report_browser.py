"""The CPU demo study → `llem report` → the page opened in a real headless Chromium.

Debian's ``chromium`` (installed by ``make browser``) driven by the playwright package: no console
error, no request leaves the file (the page is self-contained), every figure present with a
non-empty SVG, and a screenshot kept under ``build/test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest
from docker_helpers import llem_command, llem_env, only_study_dir

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "report"
DEMO = REPO / "examples" / "demo.yaml"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the demo sweeps pytorch.batch_size only; no GPU here, so the energy figures say "unavailable" in words
DEMO_FIGURES = {
    "energy-per-config",
    "energy-vs-pytorch-batch-size",
    "pareto-throughput",
    "pareto-latency",
    "power-timelines",
    "cycle-spread",
}


@pytest.fixture(scope="module")
def demo_study(cpu_image: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("demo")
    output = tmp / "results"
    proc = subprocess.run(
        [*llem_command(), "run", str(DEMO), "--model", str(tiny_model), "-o", str(output), "--export-csv"],
        env=llem_env(tmp),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"llem run failed ({proc.returncode})\n{proc.stdout}\n{proc.stderr[-4000:]}"
    study_dir = only_study_dir(output)
    assert f"csv: {study_dir / 'results.csv'}" in proc.stdout
    return study_dir


def test_demo_csv_has_one_row_per_run(demo_study: Path) -> None:
    with (demo_study / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4  # 2 batch sizes × 2 cycles
    assert {r["config.pytorch.batch_size"] for r in rows} == {"1", "4"}
    assert all(r["energy_total_j"] == "" for r in rows)  # unavailable on CPU: an empty cell, not 0
    with (demo_study / "summary.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2


def test_report_opens_in_chromium_without_errors(demo_study: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: make browser (apt-get install -y chromium)"
    proc = subprocess.run(
        [*llem_command(), "report", str(demo_study)],
        env=llem_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    page_path = demo_study / "report.html"
    assert f"report: {page_path}" in proc.stdout
    assert page_path.stat().st_size < 5_000_000

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            figures = page.query_selector_all("figure[data-figure]")
            names = {f.get_attribute("data-figure") for f in figures}
            sizes = {}
            for figure in figures:
                svg = figure.query_selector("svg")
                assert svg is not None, figure.get_attribute("data-figure")
                box = svg.bounding_box()
                elements = svg.evaluate("e => e.querySelectorAll('path, text, use').length")
                words = svg.evaluate("e => e.textContent.trim().length")
                sizes[figure.get_attribute("data-figure")] = (box, elements, words)
            assert "UNAVAILABLE: 4 of 4 runs" in page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "demo-report.png"), full_page=True)
            page.screenshot(path=str(ARTIFACTS / "demo-report-top.png"))
        finally:
            browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []  # nothing fetched from a network
    assert names == DEMO_FIGURES
    for name, (box, elements, words) in sizes.items():
        assert box is not None and box["width"] > 200 and box["height"] > 50, name
        # at least a frame, a title and a chart or a sentence saying why there is none
        assert elements >= 3 and words > 20, name
    assert (ARTIFACTS / "demo-report.png").stat().st_size > 10_000
    for name in DEMO_FIGURES:
        assert (demo_study / "figures" / f"{name}.png").stat().st_size > 1000
        assert (demo_study / "figures" / f"{name}.svg").stat().st_size > 1000
