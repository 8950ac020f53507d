"""Gaps, the baseline cache and the per-configuration summary."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest
from orch_factories import T0, make_result, tiny_config

from llenergymeasure.orchestrator.study.baseline_cache import BaselineCache
from llenergymeasure.orchestrator.study.gaps import GapWaiter, gap_before
from llenergymeasure.results.summary import summarise
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.study import ExecutionConfig

EX = dict(config_gap_seconds=60, cycle_gap_seconds=300)


@pytest.mark.parametrize(
    ("order", "prev", "nxt", "expected"),
    [
        ("sequential", None, (0, 1), 0.0),
        ("sequential", (0, 1), (0, 2), 300.0),  # same experiment, next cycle
        ("sequential", (0, 2), (1, 1), 60.0),  # experiment changes
        ("interleaved", (0, 1), (1, 1), 60.0),
        ("interleaved", (2, 1), (0, 2), 300.0),  # a new round starts
        ("shuffled", (1, 1), (2, 1), 60.0),
        ("shuffled", (1, 1), (1, 2), 300.0),
    ],
)
def test_gap_before(order: str, prev: tuple[int, int] | None, nxt: tuple[int, int], expected: float) -> None:
    ex = ExecutionConfig.model_validate({"cycle_order": order, **EX})
    assert gap_before(prev, nxt, ex)[0] == expected


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_gap_waiter_counts_down_in_seconds() -> None:
    ft = FakeTime()
    ticks: list[float] = []
    GapWaiter(on_tick=lambda left, reason: ticks.append(left), sleep=ft.sleep, clock=ft.clock).wait(2.5, "config gap")
    assert sum(ft.slept) == pytest.approx(2.5)
    assert ticks == [3, 2, 1, 0.0]


def test_no_gaps_never_sleeps() -> None:
    ft = FakeTime()
    GapWaiter(enabled=False, sleep=ft.sleep, clock=ft.clock).wait(60, "config gap")
    assert ft.slept == []


def _job(cycle: int = 1) -> ExperimentJob:
    return ExperimentJob(config=tiny_config(), context=RunContext(experiment_id="000-x", cycle=cycle))


def test_baseline_cache_per_image_and_device_set_with_ttl() -> None:
    now = [T0]
    cache = BaselineCache(clock=lambda: now[0])
    measured = make_result(_job(), energy_j=50.0, baseline_power_w=40.0, baseline_method="measured", measured_at=T0)
    stored = cache.offer("img:1", [1, 0], measured)
    assert stored is not None
    assert stored.power_w == 40.0
    assert cache.get("img:1", [0, 1], ttl_s=3600, meter="auto") == stored  # device order does not matter
    assert cache.get("img:2", [0, 1], ttl_s=3600, meter="auto") is None  # other image
    assert cache.get("img:1", [0], ttl_s=3600, meter="auto") is None  # other device set
    now[0] = T0 + timedelta(seconds=3599)
    assert cache.get("img:1", [0, 1], ttl_s=3600, meter="auto") == stored
    now[0] = T0 + timedelta(seconds=3600)
    assert cache.get("img:1", [0, 1], ttl_s=3600, meter="auto") is None  # expired


def test_baseline_cache_key_includes_the_meter() -> None:
    cache = BaselineCache(clock=lambda: T0)
    measured = make_result(_job(), energy_j=50.0, baseline_power_w=40.0, baseline_method="measured", measured_at=T0)
    assert measured.config.energy.backend == "auto"
    stored = cache.offer("img", [0], measured)
    assert stored is not None
    assert cache.get("img", [0], ttl_s=3600, meter="auto") == stored
    assert cache.get("img", [0], ttl_s=3600, meter="zeus") is None  # a zeus run never gets an auto/nvml baseline


def test_baseline_cache_ignores_reused_or_missing_baselines() -> None:
    cache = BaselineCache(clock=lambda: T0)
    assert cache.offer("img", [0], make_result(_job(), baseline_method="unavailable")) is None
    reused = make_result(_job(), energy_j=5.0, baseline_power_w=40.0, baseline_method="cached", measured_at=T0)
    assert cache.offer("img", [0], reused) is None
    assert cache.get("img", [0], 3600, "auto") is None


def test_summary_across_cycles() -> None:
    results = [
        make_result(
            _job(1),
            output_tokens=100,
            window_s=2.0,
            energy_j=50.0,
            baseline_power_w=10.0,
            baseline_method="measured",
            measured_at=T0,
        ),
        make_result(
            _job(2),
            output_tokens=100,
            window_s=4.0,
            energy_j=70.0,
            baseline_power_w=10.0,
            baseline_method="cached",
            measured_at=T0,
        ),
    ]
    s = summarise(tiny_config(), results)
    assert s.cycles_completed == 2
    j = s.energy_per_output_token_j
    assert j.mean == pytest.approx((0.5 + 0.7) / 2)
    assert j.std == pytest.approx(statistics.stdev([0.5, 0.7]))
    assert j.n == 2
    # half width of the 95 % CI with n = 2: t(0.975, 1) · std / √2 = 12.7062 · 0.141421 / 1.414214 = 1.27062
    assert j.ci95_high == pytest.approx(0.6 + 1.27062, abs=1e-5)
    assert j.cv == pytest.approx(0.141421 / 0.6, abs=1e-5)
    # adjusted: (50 - 10*2)/100 = 0.30, (70 - 10*4)/100 = 0.30
    assert s.energy_per_output_token_adjusted_j.mean == pytest.approx(0.30)
    assert s.energy_per_output_token_adjusted_j.std == pytest.approx(0.0)
    # per total token: 50 / (100 + 8·4) and 70 / 132
    assert s.energy_per_total_token_j.mean == pytest.approx((50 / 132 + 70 / 132) / 2)
    assert s.output_tokens_per_s.mean == pytest.approx((50 + 25) / 2)
    assert s.output_tokens_per_s.std == pytest.approx(statistics.stdev([50, 25]))
    assert s.ttft_p50_ms.n == 0  # not reported by this result: unavailable, not zero
    assert s.energy_method == "counter"
    # CV of J/token 23.6 % > 5 %: the configuration is flagged
    assert len(s.warnings) == 1
    assert "23.6%" in s.warnings[0]
    assert "more cycles" in s.warnings[0]


def test_summary_without_energy_is_unavailable_not_zero() -> None:
    s = summarise(tiny_config(), [make_result(_job(1)), make_result(_job(2))])
    assert s.energy_per_output_token_j.mean is None
    assert s.energy_per_output_token_j.std is None
    assert s.energy_per_output_token_j.n == 0
    assert s.energy_method == "unavailable"
    assert s.output_tokens_per_s.mean == pytest.approx(50.0)
    assert s.output_tokens_per_s.std == pytest.approx(0.0)
    assert s.output_tokens_per_s.ci95_low == pytest.approx(50.0)  # no spread: the CI collapses on the mean
    assert s.warnings == []


def test_summary_steady_cycles_get_no_warning() -> None:
    # 50 J and 52 J over 100 tokens: CV = 0.01414 / 0.51 = 2.8 % < 5 %
    s = summarise(tiny_config(), [make_result(_job(1), energy_j=50.0), make_result(_job(2), energy_j=52.0)])
    assert s.energy_per_output_token_j.cv == pytest.approx(0.0141421 / 0.51, abs=1e-6)
    assert s.warnings == []


def test_summary_mixed_methods() -> None:
    s = summarise(tiny_config(), [make_result(_job(1), energy_j=1.0), make_result(_job(2))])
    assert s.energy_method == "mixed"
