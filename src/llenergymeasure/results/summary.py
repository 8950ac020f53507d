"""Per-configuration summary across cycles: mean, sample std, 95 % CI and CV of each headline metric.

The statistics are those of `llenergymeasure.results.stats` (Student t across cycles; ``None``
with fewer than two cycles). ``None`` means "not enough data" or "unavailable" (e.g. energy on a
host without a GPU), never zero. A configuration whose J/output-token varies across cycles by more
than `CV_WARNING_THRESHOLD` gets a warning (in ``ConfigSummary.warnings``; the study loop also logs
it): its comparison with others is not yet trustworthy.
"""

from __future__ import annotations

from collections.abc import Sequence

from llenergymeasure.results.headline import HEADLINE_METRICS
from llenergymeasure.results.stats import CV_WARNING_THRESHOLD, describe
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study_result import ConfigSummary, MetricStats


def metric_stats(values: Sequence[float | None]) -> MetricStats:
    s = describe(values)
    return MetricStats(mean=s.mean, std=s.std, n=s.n, ci95_low=s.ci95_low, ci95_high=s.ci95_high, cv=s.cv)


def cv_warning(label: str, stats: MetricStats, threshold: float = CV_WARNING_THRESHOLD) -> str | None:
    """The warning for a J/output-token CV above `threshold`, or None."""
    if stats.cv is None or stats.cv <= threshold:
        return None
    return (
        f"{label}: J/output token varies by {stats.cv:.1%} across {stats.n} cycles (CV above {threshold:.0%}); "
        "comparisons with this configuration are not yet trustworthy — run more cycles (--cycles)"
    )


def _one_or_mixed(sources: Sequence[str]) -> str | None:
    if len(sources) <= 1:
        return sources[0] if sources else None
    return "mixed, incl. simulated" if "simulated" in sources else "mixed"


def summarise(config: ExperimentConfig, results: Sequence[ExperimentResult]) -> ConfigSummary:
    """One `ConfigSummary` for `config` over its completed `results` (one per cycle)."""
    metrics = {name: metric_stats([get(r) for r in results]) for name, get in HEADLINE_METRICS.items()}
    methods = sorted({r.energy.method for r in results})
    sources = sorted({str(r.energy.source) for r in results})
    label = config.label()
    warning = cv_warning(label, metrics["energy_per_output_token_j"])
    return ConfigSummary(
        measurement_config_hash=config.measurement_config_hash(),
        label=label,
        cycles_completed=len(results),
        energy_method=(methods[0] if len(methods) == 1 else "mixed") if methods else None,
        energy_source=_one_or_mixed(sources),
        warnings=[warning] if warning else [],
        energy_per_output_token_j=metrics["energy_per_output_token_j"],
        energy_per_output_token_adjusted_j=metrics["energy_per_output_token_adjusted_j"],
        energy_per_total_token_j=metrics["energy_per_total_token_j"],
        output_tokens_per_s=metrics["output_tokens_per_s"],
        ttft_p50_ms=metrics["ttft_p50_ms"],
        itl_p50_ms=metrics["itl_p50_ms"],
        co2_g=metric_stats([r.co2.co2_g if r.co2 is not None else None for r in results]),
    )
