"""The headline metrics of a run, by name: what the summary, the tables and the figures compare."""

from __future__ import annotations

from collections.abc import Callable

from llenergymeasure.schemas.results import ExperimentResult


def _ttft_p50(r: ExperimentResult) -> float | None:
    return r.latency.ttft_p50_ms if r.latency is not None else None


def _itl_p50(r: ExperimentResult) -> float | None:
    return r.latency.itl_p50_ms if r.latency is not None else None


#: metric name (the `ConfigSummary` field) → how to read it from one result; the name carries the unit
HEADLINE_METRICS: dict[str, Callable[[ExperimentResult], float | None]] = {
    "energy_per_output_token_j": lambda r: r.energy_per_output_token_j,
    "energy_per_output_token_adjusted_j": lambda r: r.energy_per_output_token_adjusted_j,
    "energy_per_total_token_j": lambda r: r.energy_per_total_token_j,
    "output_tokens_per_s": lambda r: r.output_tokens_per_s,
    "ttft_p50_ms": _ttft_p50,  # null where the backend reports no per-token timing
    "itl_p50_ms": _itl_p50,
}
