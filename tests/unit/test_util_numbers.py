"""A mean and its 95 % CI half-width, as the CLI summary and the report write them."""

from __future__ import annotations

from llenergymeasure.schemas.study_result import MetricStats
from llenergymeasure.util.numbers import mean_ci


def test_mean_and_ci_half_width_are_written_to_one_decimal_place() -> None:
    def stats(mean: float | None, half: float | None) -> MetricStats:
        high = None if mean is None or half is None else mean + half
        return MetricStats(mean=mean, ci95_high=high, ci95_low=None if high is None else 2 * mean - high)

    assert mean_ci(stats(2209.0, 22860.0)) == "2209 ± 22860"
    assert mean_ci(stats(6.0, 0.149)) == "6.000 ± 0.149"
    assert mean_ci(stats(0.0123, 0.0041)) == "0.01230 ± 0.00410"
    assert mean_ci(stats(1.5e-7, 2e-8)) == "1.5e-07 ± 2e-08"
    assert mean_ci(stats(3.25, None)) == "3.25"
    assert mean_ci(stats(None, None)) == "n/a"
    assert mean_ci(stats(4.0, 0.0)) == "4 ± 0"
