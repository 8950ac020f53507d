"""Derived metrics and measurement warnings: pure functions over counts, seconds and joules.

Nothing here reads a clock or a device. Denominators are in the names; a figure
whose input is unknown (energy unavailable, zero tokens) is ``None``, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llenergymeasure.harness.params import ParameterCounts
from llenergymeasure.schemas.results import FlopsResult, LatencyStats, MeasurementWarning

#: windows shorter than this (seconds) are flagged short
MIN_WINDOW_S = 10.0
#: windows with fewer energy-counter updates than this are flagged short
MIN_COUNTER_UPDATES = 100


def per_second(count: int, duration_s: float) -> float:
    """`count` / `duration_s` (0.0 for an empty or zero-length window)."""
    return count / duration_s if duration_s > 0 else 0.0


def per_token(energy_j: float | None, tokens: int) -> float | None:
    """Joules per token; None when energy is unknown or there are no tokens."""
    if energy_j is None or tokens <= 0:
        return None
    return energy_j / tokens


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method) of already sorted values, q in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = math.ceil(rank)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def latency_stats(
    latencies_s: Sequence[float],
    granularity: str,
    ttfts_s: Sequence[float] = (),
    itls_s: Sequence[float] = (),
) -> LatencyStats | None:
    """Latency summary in milliseconds (mean, linear-interpolation p50/p90/p99); None without samples."""
    if not latencies_s:
        return None
    ms = sorted(v * 1000.0 for v in latencies_s)
    ttft = _summary_ms(ttfts_s)
    itl = _summary_ms(itls_s)
    return LatencyStats(
        granularity="request" if granularity == "request" else "batch",
        count=len(ms),
        mean_ms=sum(ms) / len(ms),
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        min_ms=ms[0],
        max_ms=ms[-1],
        ttft_mean_ms=ttft[0],
        ttft_p50_ms=ttft[1],
        ttft_p90_ms=ttft[2],
        ttft_p99_ms=ttft[3],
        itl_mean_ms=itl[0],
        itl_p50_ms=itl[1],
        itl_p90_ms=itl[2],
        itl_p99_ms=itl[3],
    )


def _summary_ms(values_s: Sequence[float]) -> tuple[float | None, float | None, float | None, float | None]:
    """(mean, p50, p90, p99) in ms; all None without values."""
    if not values_s:
        return None, None, None, None
    ms = sorted(v * 1000.0 for v in values_s)
    return sum(ms) / len(ms), percentile(ms, 50), percentile(ms, 90), percentile(ms, 99)


def flops_estimate(params: ParameterCounts | None, input_tokens: int, output_tokens: int) -> FlopsResult:
    """``2 × body × (input + output tokens) + 2 × output projection × output tokens`` over the window.

    One multiply-add per weight per token; the output projection runs only for the
    positions that sample a token (see `harness.params`). It leaves out attention's
    context-length term (small for short contexts), hence ``medium``.
    """
    method = (
        "2 × non-embedding params × (input + output tokens) + 2 × output-projection params × output tokens, window only"
    )
    if params is None:
        return FlopsResult(total_flops=None, method=method + " (parameter count unknown)", confidence="low")
    total = 2.0 * params.body * (input_tokens + output_tokens) + 2.0 * params.output_projection * output_tokens
    return FlopsResult(
        total_flops=total,
        flops_per_output_token=total / output_tokens if output_tokens > 0 else None,
        non_embedding_params=params.body,
        output_projection_params=params.output_projection,
        params_source="model" if params.source == "model" else "config.json",
        method=method,
        confidence="medium",
    )


def timeline_disagreement_pct(timeline_j: float | None, counter_j: float | None) -> float | None:
    """(timeline − counter) / counter × 100; None when either is unknown or the counter is 0."""
    if timeline_j is None or counter_j is None or counter_j == 0:
        return None
    return (timeline_j - counter_j) / counter_j * 100.0


def short_window_warnings(duration_s: float, counter_updates: int | None) -> list[MeasurementWarning]:
    """`short_window` when the window is under 10 s or saw fewer than 100 counter updates."""
    reasons = []
    if duration_s < MIN_WINDOW_S:
        reasons.append(f"lasted {duration_s:.2f} s (< {MIN_WINDOW_S:.0f} s)")
    if counter_updates is not None and counter_updates < MIN_COUNTER_UPDATES:
        reasons.append(f"saw {counter_updates} energy-counter updates (< {MIN_COUNTER_UPDATES})")
    if not reasons:
        return []
    return [
        MeasurementWarning(
            code="short_window",
            message="the measured window " + " and ".join(reasons) + "; energy resolution is coarse — raise n",
        )
    ]


def disagreement_warning(pct: float | None, tolerance_pct: float) -> MeasurementWarning | None:
    """`timeline_counter_disagreement` when |pct| exceeds the tolerance."""
    if pct is None or abs(pct) <= tolerance_pct:
        return None
    return MeasurementWarning(
        code="timeline_counter_disagreement",
        message=f"the power timeline's integral differs from the energy counter by {pct:+.1f} % "
        f"(tolerance {tolerance_pct:.1f} %); the sampling interval may be too coarse for this load",
    )


def adjusted_negative_warning(adjusted_j: float | None) -> MeasurementWarning | None:
    """`adjusted_energy_negative` when the baseline exceeds the window's energy."""
    if adjusted_j is None or adjusted_j >= 0:
        return None
    return MeasurementWarning(
        code="adjusted_energy_negative",
        message="baseline-adjusted energy is negative: idle power was higher than the average during the window "
        "(stale or disturbed baseline); use energy_total_j",
    )
