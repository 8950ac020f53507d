"""Statistics across cycles against values worked out by hand and published t tables."""

from __future__ import annotations

import math

import pytest

from llenergymeasure.results.stats import describe, student_t_cdf, student_t_quantile


@pytest.mark.parametrize(
    ("df", "expected"),
    [
        # two-sided 95 % critical values from any printed t table
        (1, 12.7062),
        (2, 4.3027),
        (3, 3.1824),
        (4, 2.7764),
        (9, 2.2622),
        (29, 2.0452),
        (1000, 1.9623),
    ],
)
def test_t_quantile_matches_tables(df: int, expected: float) -> None:
    assert student_t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_cdf_closed_forms() -> None:
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/π
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)
    assert student_t_cdf(-2.0, 1) == pytest.approx(0.5 + math.atan(-2.0) / math.pi, abs=1e-12)
    # df = 2: F(t) = 1/2 + t / (2 √(t² + 2))
    assert student_t_cdf(3.0, 2) == pytest.approx(0.5 + 3 / (2 * math.sqrt(11)), abs=1e-12)


def test_quantile_rejects_lower_tail() -> None:
    with pytest.raises(ValueError, match=r"0\.5 <= p < 1"):
        student_t_quantile(0.1, 3)


def test_ci_of_three_cycles_by_hand() -> None:
    # values 1, 2, 4: mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9, / (n-1) = 7/3 → std = √(7/3)
    # half width = t(0.975, 2) · std / √3 = 4.302653 · 1.527525 / 1.732051 = 4.302653 · 0.881917 = 3.794583
    s = describe([1.0, 2.0, None, 4.0])
    assert s.n == 3
    assert s.mean == pytest.approx(7 / 3)
    assert s.std == pytest.approx(math.sqrt(7 / 3))
    assert s.ci95_low == pytest.approx(7 / 3 - 3.794583, abs=1e-5)
    assert s.ci95_high == pytest.approx(7 / 3 + 3.794583, abs=1e-5)
    assert s.ci95_half_width == pytest.approx(3.794583, abs=1e-5)
    assert s.cv == pytest.approx(math.sqrt(7 / 3) / (7 / 3))


def test_ci_of_two_cycles_by_hand() -> None:
    # 0.5 and 0.7: mean 0.6, std = 0.1·√2 = 0.141421; half = 12.706205 · 0.141421 / √2 = 1.2706205
    s = describe([0.5, 0.7])
    assert s.ci95_low == pytest.approx(0.6 - 1.2706205, abs=1e-6)
    assert s.ci95_high == pytest.approx(0.6 + 1.2706205, abs=1e-6)
    assert s.cv == pytest.approx(0.141421356 / 0.6)


def test_one_cycle_has_no_spread_and_none_is_not_zero() -> None:
    one = describe([3.0])
    assert (one.mean, one.std, one.n, one.ci95_low, one.ci95_high, one.cv) == (3.0, None, 1, None, None, None)
    empty = describe([None, None])
    assert (empty.mean, empty.n, empty.ci95_half_width) == (None, 0, None)


def test_zero_mean_has_no_cv() -> None:
    s = describe([-1.0, 1.0])
    assert s.mean == 0.0
    assert s.cv is None
