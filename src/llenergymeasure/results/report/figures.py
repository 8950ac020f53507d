"""The report's figures, drawn with matplotlib's object API (no pyplot, no global state).

Each builder returns a `matplotlib.figure.Figure`. Where the data a figure needs is absent (energy
unavailable on a CPU host, no power timeline recorded) the figure says so in words instead of
showing empty axes: a blank chart reads as "zero", which it is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llenergymeasure.results.loading import LoadedRun
from llenergymeasure.results.report.data import ReportData, Row, pareto_front

#: at most this many runs get a power-timeline panel (evenly spread over the study)
MAX_TIMELINES = 4
#: each timeline is thinned to at most this many points per device
MAX_TIMELINE_POINTS = 600
#: per-configuration figures show at most this many configurations (the table lists them all)
MAX_ROWS = 50
#: a J/token-against-setting figure draws at most this many series, with a legend up to MAX_LEGEND
MAX_SERIES = 27
MAX_LEGEND = 12
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]


def _figure(width: float = 8.0, height: float = 4.2, *, left_in: float = 0.8) -> Any:
    """A figure with fixed margins in inches (constrained layout would double the drawing time)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left_in / width, right=1 - 0.25 / width, top=1 - 0.45 / height, bottom=0.55 / height)
    return fig


def message_figure(title: str, message: str) -> Any:
    fig = _figure(8.0, 1.6)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, loc="left", fontsize=11)
    ax.text(0.5, 0.45, message, ha="center", va="center", fontsize=10, color="#555555", wrap=True)
    return fig


def _short(label: str, limit: int = 38) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


UNAVAILABLE_NOTE = " (energy unavailable: output tokens/s shown)"


def energy_per_config(data: ReportData) -> Any:
    """J/output token per configuration (mean across cycles, 95 % CI bars), one bar per study; output
    tokens/s instead, said in the title, when no run measured energy (a CPU host)."""
    if any(c.summary.energy_per_output_token_j.mean is not None for r in data.rows for c in r.cells.values()):
        return metric_per_config(data, "energy_per_output_token_j", "J per output token", "J per output token")
    return metric_per_config(data, "output_tokens_per_s", "output tokens/s", "Output tokens/s", UNAVAILABLE_NOTE)


def metric_per_config(data: ReportData, metric: str, xlabel: str, what: str, note: str = "") -> Any:
    """One `ConfigSummary` metric per configuration: mean bars with 95 % CI whiskers."""
    title = f"{what} by configuration, mean and 95 % CI across cycles{note}"
    rows = [r for r in data.rows if any(getattr(c.summary, metric).mean is not None for c in r.cells.values())]
    if not rows:
        return message_figure(title, "No run has this figure, so there is nothing to plot.")
    if len(rows) > MAX_ROWS:  # the best ones: lowest J/token, highest throughput

        def best(row: Row) -> float:
            means = [getattr(c.summary, metric).mean for c in row.cells.values()]
            value = float(min(m for m in means if m is not None))
            return -value if metric == "output_tokens_per_s" else value

        title += f" ({MAX_ROWS} best of {len(rows)})"
        rows = sorted(rows, key=best)[:MAX_ROWS]
    studies = data.study_ids
    height = max(2.4, 0.32 * len(rows) * max(1, len(studies)) + 1.2)
    fig = _figure(8.0, min(height, 60.0), left_in=2.6)
    ax = fig.add_subplot()
    band = 0.8 / len(studies)
    for s_idx, study_id in enumerate(studies):
        ys, means, lo, hi = [], [], [], []
        for r_idx, row in enumerate(rows):
            cell = row.cells.get(study_id)
            stats = getattr(cell.summary, metric) if cell else None
            if stats is None or stats.mean is None:
                continue
            ys.append(r_idx + (s_idx - (len(studies) - 1) / 2) * band)
            means.append(stats.mean)
            lo.append(stats.mean - stats.ci95_low if stats.ci95_low is not None else 0.0)
            hi.append(stats.ci95_high - stats.mean if stats.ci95_high is not None else 0.0)
        ax.barh(
            ys,
            means,
            height=band * 0.9,
            xerr=[lo, hi],
            capsize=3,
            color=PALETTE[s_idx % len(PALETTE)],
            label=study_id,
            error_kw={"elinewidth": 1},
        )
    ax.set_yticks(range(len(rows)), [_short(r.label) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    if len(studies) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, str(value))


def energy_vs_knob(data: ReportData, knob: str) -> Any:
    """Mean J/output token against one swept knob; one series per combination of the other knobs."""
    others = [k for k in data.swept if k != knob]
    series: dict[str, list[tuple[Any, float]]] = {}
    for row in data.rows:
        for study_id, cell in row.cells.items():
            mean = cell.summary.energy_per_output_token_j.mean
            if mean is None:
                continue
            name = ", ".join(f"{k}={row.knobs.get(k)}" for k in others) or "all"
            if len(data.studies) > 1:
                name = f"{study_id}: {name}"
            series.setdefault(name, []).append((row.knobs.get(knob), mean))
    title = f"J per output token vs {knob}"
    if not series:
        return message_figure(title, "No energy was measured in these runs (energy unavailable).")
    values = sorted({v for pts in series.values() for v, _ in pts}, key=_sortable)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    position = {repr(v): (float(v) if numeric else i) for i, v in enumerate(values)}
    fig = _figure()
    ax = fig.add_subplot()
    shown = sorted(series.items())[:MAX_SERIES]
    if len(series) > MAX_SERIES:
        title += f" (first {MAX_SERIES} of {len(series)} series)"
    for i, (name, points) in enumerate(shown):
        points.sort(key=lambda p: _sortable(p[0]))
        ax.plot(
            [position[repr(v)] for v, _ in points],
            [m for _, m in points],
            marker="o",
            color=PALETTE[i % len(PALETTE)],
            label=_short(name, 60),
        )
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(knob)
    ax.set_ylabel("J per output token (mean)")
    ax.set_title(title, loc="left", fontsize=11)
    if 1 < len(shown) <= MAX_LEGEND:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return fig


def pareto(data: ReportData, *, against: str) -> Any:
    """J/output token against throughput (maximised) or p50 latency (minimised); the front highlighted
    and its points labelled by configuration."""
    maximize = against == "throughput"
    ylabel = "output tokens/s (mean)" if maximize else "request latency p50, ms (mean)"
    title = f"Energy / {'throughput' if maximize else 'latency'} trade-off (Pareto front highlighted)"
    labels, points = [], []
    for row in data.rows:
        for study_id, cell in row.cells.items():
            x = cell.summary.energy_per_output_token_j.mean
            if maximize:
                y = cell.summary.output_tokens_per_s.mean
            else:
                y = cell.mean_of(lambda r: r.result.latency.p50_ms if r.result.latency else None)
            if x is None or y is None:
                continue
            labels.append(row.label if len(data.studies) == 1 else f"{row.label} [{study_id}]")
            points.append((x, y))
    if not points:
        return message_figure(title, "No energy was measured in these runs (energy unavailable).")
    front = pareto_front(points, maximize_y=maximize)
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="#9aa5b1", s=18, label="configurations")
    fx, fy = [points[i][0] for i in front], [points[i][1] for i in front]
    ax.plot(fx, fy, color="#d62728", marker="o", linewidth=1.5, label="Pareto front")
    for i in front[:20]:
        ax.annotate(_short(labels[i], 30), points[i], textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xlabel("J per output token (mean)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def cycle_spread(data: ReportData) -> Any:
    """Each cycle's J/output token per configuration (output tokens/s when no energy was measured):
    how repeatable the measurement is."""
    runs = [run for r in data.rows for c in r.cells.values() for run in c.runs]
    if any(run.result.energy_per_output_token_j is not None for run in runs):
        return _spread(data, lambda res: res.energy_per_output_token_j, "J per output token (each cycle)", "")
    return _spread(data, lambda res: res.output_tokens_per_s, "output tokens/s (each cycle)", UNAVAILABLE_NOTE)


def _spread(data: ReportData, get: Any, xlabel: str, note: str) -> Any:
    title = "Cycle-to-cycle spread" + note
    rows = [r for r in data.rows if any(get(run.result) is not None for c in r.cells.values() for run in c.runs)]
    if not rows:
        return message_figure(title, "No run has this figure, so there is nothing to plot.")
    if len(rows) > MAX_ROWS:  # the least repeatable ones are the ones to look at

        def spread(row: Row) -> float:
            values = [v for c in row.cells.values() for run in c.runs if (v := get(run.result)) is not None]
            mean = sum(values) / len(values)
            return -(max(values) - min(values)) / abs(mean) if mean else 0.0

        title += f" ({MAX_ROWS} least repeatable of {len(rows)})"
        rows = sorted(rows, key=spread)[:MAX_ROWS]
    fig = _figure(8.0, min(max(2.4, 0.3 * len(rows) + 1.2), 60.0), left_in=2.6)
    ax = fig.add_subplot()
    max_cycle = max(run.result.cycle for r in rows for c in r.cells.values() for run in c.runs)
    for cycle in range(1, max_cycle + 1):
        xs, ys = [], []
        for r_idx, row in enumerate(rows):
            for cell in row.cells.values():
                for run in cell.runs:
                    value = get(run.result)
                    if run.result.cycle == cycle and value is not None:
                        xs.append(value)
                        ys.append(r_idx)
        ax.scatter(xs, ys, s=22, color=PALETTE[(cycle - 1) % len(PALETTE)], label=f"cycle {cycle}", alpha=0.85)
    ax.set_yticks(range(len(rows)), [_short(r.label) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    if max_cycle <= 12:
        ax.legend(fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return fig


def sample_runs(runs: Sequence[LoadedRun], limit: int = MAX_TIMELINES) -> list[LoadedRun]:
    """At most `limit` runs that have a timeline, evenly spread (first and last included)."""
    with_timeline = [r for r in runs if r.result.timeseries_file and (r.run_dir / r.result.timeseries_file).is_file()]
    if len(with_timeline) <= limit:
        return with_timeline
    step = (len(with_timeline) - 1) / (limit - 1)
    return [with_timeline[round(i * step)] for i in range(limit)]


def power_timelines(data: ReportData, runs: Sequence[LoadedRun]) -> Any:
    """Power of each sampled run over time: one line per device, the baseline level dashed, the measured
    window shaded."""
    import pyarrow.parquet as pq

    title = "Power timeline per run (measurement window shaded, idle baseline dashed)"
    if not runs:
        return message_figure(title, "No power timeline was recorded (no GPU sampler ran in these runs).")
    cols = 2 if len(runs) > 1 else 1
    nrows = math.ceil(len(runs) / cols)
    fig = _figure(8.0 if cols == 2 else 7.0, 2.3 * nrows + 0.6, left_in=0.6)
    fig.subplots_adjust(hspace=0.6, wspace=0.25, top=1 - 0.8 / fig.get_figheight())
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, run in zip(axes.flat, runs, strict=False):  # a 2-column grid may have a spare panel
        table = pq.read_table(
            run.run_dir / str(run.result.timeseries_file), columns=["elapsed_s", "device_index", "power_w", "in_window"]
        ).to_pydict()
        devices = sorted(set(table["device_index"]))
        for d_idx, device in enumerate(devices):
            idx = [i for i, d in enumerate(table["device_index"]) if d == device]
            step = max(1, len(idx) // MAX_TIMELINE_POINTS)
            idx = idx[::step]
            ax.plot(
                [table["elapsed_s"][i] for i in idx],
                [table["power_w"][i] for i in idx],
                linewidth=0.9,
                color=PALETTE[d_idx % len(PALETTE)],
                label=f"GPU {device}",
            )
        window = [t for t, w in zip(table["elapsed_s"], table["in_window"], strict=True) if w]
        if window:
            ax.axvspan(min(window), max(window), color="#2ca02c", alpha=0.12, label="measured window")
        if run.result.baseline_power_w is not None:
            per_device = run.result.baseline_power_w / max(1, len(devices))
            ax.axhline(per_device, color="#555555", linestyle="--", linewidth=0.9, label="baseline (per GPU)")
        ax.set_title(_short(f"{run.result.config.label()} · c{run.result.cycle}", 48), fontsize=8, loc="left")
        ax.set_xlabel("s", fontsize=7)
        ax.set_ylabel("W", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    return fig
