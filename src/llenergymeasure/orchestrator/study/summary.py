"""Per-configuration summary across cycles: mean and sample standard deviation.

Spread is the *sample* standard deviation (n − 1 in the denominator), reported
only with at least two completed cycles; ``None`` means "not enough data" or
"unavailable" (e.g. energy on a host without a GPU), never zero.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study_result import ConfigSummary


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """(mean, sample std) of the non-None values; std is None with fewer than two values."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    mean = statistics.fmean(present)
    std = statistics.stdev(present) if len(present) >= 2 else None
    return mean, std


def _one_or_mixed(sources: Sequence[str]) -> str | None:
    if len(sources) <= 1:
        return sources[0] if sources else None
    return "mixed, incl. simulated" if "simulated" in sources else "mixed"


def summarise(config: ExperimentConfig, results: Sequence[ExperimentResult]) -> ConfigSummary:
    """One `ConfigSummary` for `config` over its completed `results` (one per cycle)."""
    j_mean, j_std = mean_std([r.energy_per_output_token_j for r in results])
    adj_mean, _ = mean_std([r.energy_per_output_token_adjusted_j for r in results])
    tps_mean, tps_std = mean_std([r.output_tokens_per_s for r in results])
    methods = sorted({r.energy.method for r in results})
    sources = sorted({r.energy.source for r in results})
    return ConfigSummary(
        measurement_config_hash=config.measurement_config_hash(),
        label=config.label(),
        cycles_completed=len(results),
        energy_per_output_token_j_mean=j_mean,
        energy_per_output_token_j_std=j_std,
        energy_per_output_token_adjusted_j_mean=adj_mean,
        output_tokens_per_s_mean=tps_mean,
        output_tokens_per_s_std=tps_std,
        energy_method=(methods[0] if len(methods) == 1 else "mixed") if methods else None,
        energy_source=_one_or_mixed(sources),
    )
