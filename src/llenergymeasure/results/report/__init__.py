"""`llem report`: one self-contained HTML page per study (or per comparison of studies).

The plotting stack is matplotlib (the ``[report]`` extra): it draws SVG that is inlined into the
page — so the page needs no script, no CDN and no network, which matters on air-gapped
measurement hosts — and the same figure is exported as PNG and SVG under ``figures/`` for papers,
from one drawing. Figures summarise: per-run power timelines are sampled (`MAX_TIMELINES` runs)
and thinned, so the page of a 1,000-run study stays a few MB at most.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llenergymeasure.results.deps import require
from llenergymeasure.results.loading import LoadedStudy, load_study
from llenergymeasure.results.report.data import build_report_data
from llenergymeasure.results.report.html import RenderedFigure, render_page

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"

_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


@dataclass(frozen=True)
class ReportFiles:
    """What `write_report` wrote."""

    html: Path
    figures: list[Path]
    csv: list[Path]


def _render(fig: Any, name: str, figures_dir: Path) -> tuple[str, tuple[Path, ...]]:
    """Save `fig` as SVG and PNG under `figures_dir`; return the inline ``<svg>`` and the files."""
    import matplotlib

    # real text instead of glyph paths (smaller, selectable); ids salted per figure so several
    # inline SVGs in one page never share a clip-path id; no date: identical input → identical file
    style: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": f"llem-{name}"}
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        svg = buf.getvalue()
        svg_path, png_path = figures_dir / f"{name}.svg", figures_dir / f"{name}.png"
        svg_path.write_text(svg, encoding="utf-8")
        fig.savefig(png_path, format="png", dpi=100, metadata={"Software": None})
    return _XML_PROLOGUE.sub("", svg, count=1), (png_path, svg_path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "x"


def write_report(
    study_dirs: Sequence[str | Path | LoadedStudy], output: str | Path | None = None, *, csv: bool = False
) -> ReportFiles:
    """Write the report of `study_dirs` (compared side by side when several) to `output`
    (default ``<first study dir>/report.html``) and its figures to ``<that study dir>/figures/``.
    With `csv`, each study directory also gets ``results.csv`` and ``summary.csv``."""
    require("matplotlib", "llem report")
    from llenergymeasure.results.report import figures as fg

    studies = [s if isinstance(s, LoadedStudy) else load_study(s) for s in study_dirs]
    if not studies:
        raise ValueError("write_report needs at least one study directory")
    data = build_report_data(studies)
    html_path = Path(output) if output is not None else studies[0].study_dir / REPORT_FILE
    html_path.parent.mkdir(parents=True, exist_ok=True)
    figures_dir = studies[0].study_dir / FIGURES_DIR
    figures_dir.mkdir(exist_ok=True)

    sampled = fg.sample_runs(data.runs())
    planned: list[tuple[str, str, Any]] = [
        (
            "energy-per-config",
            "J per output token by configuration (output tokens/s where no energy was measured), mean with "
            "95 % CI across cycles.",
            lambda: fg.energy_per_config(data),
        ),
    ]
    for knob in data.swept:
        planned.append(
            (
                f"energy-vs-{_slug(knob)}",
                f"Mean J per output token against {knob}; one series per value of the other swept settings.",
                lambda knob=knob: fg.energy_vs_knob(data, knob),
            )
        )
    planned += [
        (
            "pareto-throughput",
            "Energy/throughput trade-off; the Pareto front (no configuration is both cheaper "
            "and faster) in red, labelled.",
            lambda: fg.pareto(data, against="throughput"),
        ),
        (
            "pareto-latency",
            "Energy/latency trade-off; the Pareto front (no configuration is both cheaper and "
            "quicker to answer) in red, labelled.",
            lambda: fg.pareto(data, against="latency"),
        ),
        (
            "power-timelines",
            f"Power of {len(sampled)} of {len(data.runs())} runs (evenly sampled); idle baseline "
            "dashed, measured window shaded.",
            lambda: fg.power_timelines(data, sampled),
        ),
        (
            "cycle-spread",
            "Each cycle's J per output token (output tokens/s where no energy was measured): the spread "
            "shows how repeatable each configuration is.",
            lambda: fg.cycle_spread(data),
        ),
    ]
    rendered: list[RenderedFigure] = []
    written: list[Path] = []
    for name, caption, build in planned:
        fig = build()
        svg, files = _render(fig, name, figures_dir)
        rendered.append(RenderedFigure(name, caption, svg, files))
        written.extend(files)

    notes = []
    if not data.swept:
        notes.append("No setting varies between the configurations, so there is no J/token-against-setting figure.")
    html_path.write_text(render_page(data, rendered, html_path.parent, notes), encoding="utf-8")
    csv_files: list[Path] = []
    if csv:
        for study in studies:
            csv_files.extend(study.write_csv())
    return ReportFiles(html_path, written, csv_files)
