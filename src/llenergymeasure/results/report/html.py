"""The report page: one self-contained HTML file (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llenergymeasure._version import __version__
from llenergymeasure.results.report.data import NOT_MEASURED, Cell, ReportData
from llenergymeasure.util.numbers import mean_ci

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1b1f24;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9rem}.meta td{padding:0 1rem .1rem 0;vertical-align:top}
.label{border-radius:6px;padding:.6rem .9rem;margin:.6rem 0;font-weight:600}
.label.simulated{background:#fff4ce;border:1px solid #e0b100}
.label.estimated{background:#fde2cf;border:1px solid #d9822b}
.label.unavailable{background:#fbd5d5;border:1px solid #c0392b}
table.results{border-collapse:collapse;font-size:.82rem;width:100%}
table.results th,table.results td{border:1px solid #ddd;padding:.25rem .4rem;text-align:right}
table.results th{background:#f4f6f8}table.results td:last-child{white-space:nowrap}table.results td.l,table.results th.l{text-align:left}
figure{margin:1.2rem 0;border:1px solid #eee;padding:.5rem}figure svg{max-width:100%;height:auto;display:block;
margin:0 auto}
figcaption{font-size:.85rem;color:#444}.note{font-size:.85rem;color:#555}
a{color:#0b5cad}
"""


@dataclass(frozen=True)
class RenderedFigure:
    name: str
    caption: str
    svg: str  # the <svg> element only
    files: tuple[Path, ...]


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "n/a" if value is None else format(value, spec)


def _e(text: object) -> str:
    return html.escape(str(text))


def _labels(data: ReportData) -> list[str]:
    """Prominent banners when any energy figure is simulated, estimated or unavailable."""
    runs = data.runs()
    simulated = sum(1 for r in runs if str(r.result.energy.source) == "simulated")
    estimated = sum(1 for r in runs if r.result.energy.method == "estimated")
    unavailable = sum(1 for r in runs if r.result.energy.method == "unavailable")
    out = []
    if simulated:
        out.append(
            f'<div class="label simulated">SIMULATED: {simulated} of {len(runs)} runs measured '
            "simulated GPUs (an analytic power trace), not real hardware. Their energy figures "
            "rehearse the method; they are not measurements.</div>"
        )
    if estimated:
        out.append(
            f'<div class="label estimated">ESTIMATED: the energy of {estimated} of {len(runs)} runs is '
            "a model estimate (CodeCarbon/TDP), not a measurement.</div>"
        )
    if unavailable:
        out.append(
            f'<div class="label unavailable">UNAVAILABLE: {unavailable} of {len(runs)} runs have no energy '
            "figure (no GPU energy counter or power samples); their J/token cells read n/a.</div>"
        )
    return out


def _distinct(values: Sequence[str | None]) -> str:
    seen = sorted({v for v in values if v})
    return ", ".join(seen) if seen else "n/a"


def _header(data: ReportData) -> str:
    runs = [r.result for r in data.runs()]
    gpus = _distinct([f"{g.name}" for r in runs for g in r.environment_snapshot.gpus]) if runs else "n/a"
    parts = []
    for study in data.studies:
        m = study.manifest
        parts.append(
            f"<tr><td><b>{_e(m.name)}</b></td><td>study {_e(m.study_id)}</td>"
            f"<td>design hash {_e(m.study_design_hash)}</td><td>{_e(m.status)}</td>"
            f"<td>{len(study.runs)}/{len(m.entries)} runs completed</td></tr>"
        )
    env = [
        ("GPUs", gpus if gpus != "n/a" else "none (CPU)"),
        ("images", _distinct([r.environment_snapshot.image for r in runs])),
        ("llenergymeasure", _distinct([r.environment_snapshot.llenergymeasure_version for r in runs])),
        ("backend versions", _distinct([r.environment_snapshot.backend_version for r in runs])),
        ("torch", _distinct([r.environment_snapshot.torch_version for r in runs])),
        (
            "CUDA / driver",
            f"{_distinct([r.environment_snapshot.cuda_version for r in runs])} / "
            f"{_distinct([r.environment_snapshot.driver_version for r in runs])}",
        ),
        ("energy methods", _distinct([r.energy.method for r in runs])),
        ("energy sources", _distinct([str(r.energy.source) for r in runs])),
    ]
    env_rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in env)
    title = " vs ".join(s.manifest.name for s in data.studies)
    return (
        f"<h1>llenergymeasure report: {_e(title)}</h1>"
        + "".join(_labels(data))
        + f'<table class="meta">{"".join(parts)}</table><table class="meta">{env_rows}</table>'
    )


def _links(cell: Cell, out_dir: Path) -> str:
    """One link per cycle to its run directory (result.json, timeseries.parquet, harness.log); its title
    names the run directory and the machine it ran on (a campaign's runs spread over several)."""
    links = []
    for run in cell.runs:
        rel = os.path.relpath(run.run_dir, out_dir)
        node = run.result.node
        title = run.run_dir.name + (f" on {node.host_name}" if node is not None else "")
        links.append(f'<a href="{_e(rel)}/" title="{_e(title)}">c{run.result.cycle}</a>')
    return " ".join(links)


def _latency(cell: Cell, field: str) -> str:
    return _fmt(cell.mean_of(lambda r: getattr(r.result.latency, field, None) if r.result.latency else None))


COLUMNS = (
    "J/output token (mean ± 95% CI)",
    "adjusted J/output token",
    "output tokens/s",
    "latency p50 / p99 ms",
    "TTFT p50 / p99 ms",
    "ITL p50 / p99 ms",
    "energy",
    "CO2 g/run (estimated)",
    "warnings",
    "runs",
)


def _cells(cell: Cell | None, out_dir: Path) -> list[str]:
    if cell is None:
        return ["—"] * len(COLUMNS)
    s = cell.summary
    energy = s.energy_method or "n/a"
    if s.energy_method in NOT_MEASURED:
        energy = f"<b>{_e(energy)}</b>"
    return [
        _e(mean_ci(s.energy_per_output_token_j)),
        _e(mean_ci(s.energy_per_output_token_adjusted_j)),
        _e(mean_ci(s.output_tokens_per_s)),
        f"{_latency(cell, 'p50_ms')} / {_latency(cell, 'p99_ms')}",
        f"{_latency(cell, 'ttft_p50_ms')} / {_latency(cell, 'ttft_p99_ms')}",
        f"{_latency(cell, 'itl_p50_ms')} / {_latency(cell, 'itl_p99_ms')}",
        energy,
        _e(mean_ci(s.co2_g)),
        str(cell.warning_count),
        _links(cell, out_dir),
    ]


def _table(data: ReportData, out_dir: Path) -> str:
    studies = data.study_ids
    multi = len(studies) > 1
    head = '<tr><th class="l" rowspan="2">configuration</th><th class="l" rowspan="2">hash</th>'
    if multi:
        head += "".join(f'<th colspan="{len(COLUMNS)}">{_e(s)}</th>' for s in studies) + "</tr><tr>"
    head += "".join(f"<th>{_e(c)}</th>" for c in COLUMNS) * len(studies) + "</tr>"
    if not multi:
        head = head.replace(' rowspan="2"', "")
    body = []
    for row in data.rows:
        cells = [f'<td class="l">{_e(row.label)}</td>', f'<td class="l"><code>{_e(row.config_hash[:8])}</code></td>']
        for study_id in studies:
            cells.extend(f"<td>{c}</td>" for c in _cells(row.cells.get(study_id), out_dir))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="results"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def render_page(data: ReportData, figures: Sequence[RenderedFigure], out_dir: Path, notes: Sequence[str]) -> str:
    warnings = [w for row in data.rows for c in row.cells.values() for w in c.summary.warnings]
    warning_html = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    figure_html = "".join(
        f'<figure id="fig-{_e(f.name)}" data-figure="{_e(f.name)}">{f.svg}'
        f"<figcaption>{_e(f.caption)} (also "
        + ", ".join(f'<a href="{_e(os.path.relpath(p, out_dir))}">{_e(p.suffix[1:].upper())}</a>' for p in f.files)
        + ")</figcaption></figure>"
        for f in figures
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>llenergymeasure report</title><style>{CSS}</style></head><body>"
        + _header(data)
        + "<h2>Configurations</h2>"
        + '<p class="note">Mean across completed cycles ± the half-width of the 95 % confidence interval of the '
        "mean (Student t; a single cycle shows the value alone). n/a = not measured, never zero.</p>"
        + _table(data, out_dir)
        + (f"<h2>Warnings</h2><ul>{warning_html}</ul>" if warning_html else "")
        + "<h2>Figures</h2>"
        + figure_html
        + "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
        + f'<p class="note">Written by llenergymeasure {_e(__version__)}; opens offline (no scripts, no network).</p>'
        + "</body></html>\n"
    )
