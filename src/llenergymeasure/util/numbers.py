"""How a mean and its confidence interval are written, the same in the CLI summary and the report."""

from __future__ import annotations

import math
from typing import Protocol


class MetricStats(Protocol):
    """A metric's mean and the upper end of its 95 % CI (``schemas.study_result.MetricStats``)."""

    @property
    def mean(self) -> float | None: ...

    @property
    def ci95_high(self) -> float | None: ...


def mean_ci(stats: MetricStats, fmt: str = ".4g") -> str:
    """``mean ± half-width`` of the 95 % CI; the mean alone with one cycle; ``n/a`` when unavailable.

    Both are written to one decimal place: the finer of the mean's (``fmt``) and the one that gives the
    half-width three significant figures — ``6.000 ± 0.149``, ``2209 ± 22860`` (never ``2.286e+04``
    beside ``2209``). Exponents only when the mean needs one.
    """
    if stats.mean is None:
        return "n/a"
    mean = format(stats.mean, fmt)
    if stats.ci95_high is None:
        return mean
    half = stats.ci95_high - stats.mean
    if not (math.isfinite(stats.mean) and math.isfinite(half)) or "e" in mean:
        return f"{mean} ± {format(half, fmt)}"
    decimals = len(mean.partition(".")[2])
    if half > 0:
        decimals = min(10, max(decimals, 2 - math.floor(math.log10(half))))
    return f"{stats.mean:.{decimals}f} ± {half:.{decimals}f}"
