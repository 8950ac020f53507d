"""Statistics across cycles: mean, sample spread and a Student-t 95 % confidence interval.

Pure functions on plain floats (standard library only), shared by the study summary and the
report. Conventions:

- the standard deviation is the *sample* one (n − 1 in the denominator);
- the 95 % CI of the mean is ``mean ± t(0.975, n − 1) · std / √n`` (Student t across cycles),
  ``None`` when fewer than two values are present: one cycle says nothing about repeatability;
- the coefficient of variation is ``std / |mean|`` as a fraction (0.05 = 5 %), ``None`` when the
  std is undefined or the mean is zero;
- ``None`` inputs (unavailable figures) are left out, never counted as zero.

The t quantile is computed exactly (regularised incomplete beta function, inverted by bisection):
the host does not depend on scipy.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: CV of J/output-token across cycles above which a configuration gets a warning (fraction)
CV_WARNING_THRESHOLD = 0.05


@dataclass(frozen=True)
class Stats:
    """Summary of one metric across cycles."""

    mean: float | None
    std: float | None
    n: int
    ci95_low: float | None
    ci95_high: float | None
    cv: float | None

    @property
    def ci95_half_width(self) -> float | None:
        if self.ci95_high is None or self.mean is None:
            return None
        return self.ci95_high - self.mean


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function, for 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=1024)
def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T ≤ t) = p, for 0.5 ≤ p < 1 (bisection to ~1e-12; cached: a study asks for few df)."""
    if not 0.5 <= p < 1.0 or df <= 0:
        raise ValueError(f"student_t_quantile needs 0.5 <= p < 1 and df > 0, got p={p}, df={df}")
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def describe(values: Sequence[float | None]) -> Stats:
    """`Stats` of the non-None `values`."""
    present = [float(v) for v in values if v is not None]
    n = len(present)
    if n == 0:
        return Stats(None, None, 0, None, None, None)
    mean = statistics.fmean(present)
    if n < 2:
        return Stats(mean, None, n, None, None, None)
    std = statistics.stdev(present)
    half = student_t_quantile(0.975, n - 1) * std / math.sqrt(n)
    cv = std / abs(mean) if mean != 0 else None
    return Stats(mean, std, n, mean - half, mean + half, cv)
