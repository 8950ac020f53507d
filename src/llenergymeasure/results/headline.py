"""The headline metrics of a run, by name: what the summary, the tables and the figures compare."""

from __future__ import annotations

from collections.abc import Callable

from llenergymeasure.schemas.results import ExperimentResult


def _latency(field: str) -> Callable[[ExperimentResult], float | None]:
    def get(r: ExperimentResult) -> float | None:
        # TTFT/ITL percentiles exist only where the backend reports per-token timing; an older
        # result without the field reads as unavailable, never as zero
        value = getattr(r.latency, field, None) if r.latency is not None else None
        return float(value) if value is not None else None

    return get


#: metric name (the `ConfigSummary` field) → how to read it from one result; the name carries the unit
HEADLINE_METRICS: dict[str, Callable[[ExperimentResult], float | None]] = {
    "energy_per_output_token_j": lambda r: r.energy_per_output_token_j,
    "energy_per_output_token_adjusted_j": lambda r: r.energy_per_output_token_adjusted_j,
    "energy_per_total_token_j": lambda r: r.energy_per_total_token_j,
    "output_tokens_per_s": lambda r: r.output_tokens_per_s,
    "ttft_p50_ms": _latency("ttft_p50_ms"),
    "itl_p50_ms": _latency("itl_p50_ms"),
}
