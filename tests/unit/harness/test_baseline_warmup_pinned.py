"""The idle baseline and the warmup loop pinned to values worked out by hand.

A scripted meter (our `EnergyMeter` interface, returning the windows it is given)
drives the baseline's arithmetic and its unavailable path; a recording backend
shows the order of calls in the warmup loop and where it stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from harness_fakes import FakeBackend, FakeClock

from llenergymeasure.harness.backends.base import GenerationBatch, ProgressCallback, Prompt
from llenergymeasure.harness.baseline import (
    colder_baseline_warning,
    measure_idle,
    resolve_baseline,
    reusable_cached,
    staleness_warning,
)
from llenergymeasure.harness.energy.base import EnergyMeter, WindowEnergy
from llenergymeasure.harness.warmup import coefficient_of_variation, run_warmup
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.sections import BaselineConfig, WarmupConfig
from llenergymeasure.schemas.job import CachedBaseline
from llenergymeasure.schemas.results import BaselineProvenance, MeasurementWarning

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class ScriptedMeter(EnergyMeter):
    """Returns the given window from `stop_window`; records the calls."""

    source = "nvml"

    def __init__(self, window: WindowEnergy) -> None:
        self.window = window
        self.calls: list[str] = []

    def start_window(self) -> None:
        self.calls.append("start")

    def stop_window(self) -> WindowEnergy:
        self.calls.append("stop")
        return self.window


def window(energy_j: float | None, duration_s: float, *warnings: MeasurementWarning) -> WindowEnergy:
    method = "counter" if energy_j is not None else "unavailable"
    return WindowEnergy(source="nvml", method=method, energy_j=energy_j, duration_s=duration_s, warnings=warnings)


# ------------------------------------------------------------------- baseline


def test_idle_power_is_energy_over_the_meter_duration() -> None:
    # 1,830 J over 30.5 s (the meter's own duration, not the 30 s asked for) = 60 W
    meter = ScriptedMeter(window(1830.0, 30.5))
    slept: list[float] = []
    outcome = measure_idle(meter, 30.0, sleep=slept.append, now=lambda: NOW)
    assert meter.calls == ["start", "stop"]
    assert slept == [30.0]
    p = outcome.provenance
    assert (p.method, p.energy_method, p.duration_s, p.measured_at) == ("measured", "counter", 30.5, NOW)
    assert outcome.power_w == pytest.approx(60.0, rel=1e-12)
    assert outcome.warnings == ()


def test_baseline_keeps_meter_warnings_except_the_integration_note() -> None:
    note = MeasurementWarning(code="integrated_power", message="integrated", severity="info")
    short = MeasurementWarning(code="short_window", message="counter did not advance")
    outcome = measure_idle(ScriptedMeter(window(600.0, 10.0, note, short)), 10.0, sleep=lambda s: None, now=lambda: NOW)
    assert outcome.power_w == pytest.approx(60.0)
    assert outcome.warnings == (short,)


def test_baseline_unavailable_when_the_meter_has_no_energy() -> None:
    why = MeasurementWarning(code="energy_unavailable", message="GPU 0 has no counter")
    other = MeasurementWarning(code="x", message="and no power")
    outcome = measure_idle(ScriptedMeter(window(None, 30.0, why, other)), 30.0, sleep=lambda s: None, now=lambda: NOW)
    p = outcome.provenance
    assert (p.method, p.power_w, p.duration_s, p.measured_at) == ("unavailable", None, 30.0, NOW)
    (warning,) = outcome.warnings
    assert warning.code == "baseline_unavailable"
    assert warning.message == "idle baseline not measured: GPU 0 has no counter; and no power"


def test_baseline_unavailable_for_a_zero_length_window_even_with_energy() -> None:
    outcome = measure_idle(ScriptedMeter(window(5.0, 0.0)), 30.0, sleep=lambda s: None, now=lambda: NOW)
    assert (outcome.provenance.method, outcome.power_w) == ("unavailable", None)
    assert outcome.warnings[0].message == "idle baseline not measured: the meter returned no energy"


def test_resolve_measures_when_nothing_is_cached_and_records_the_ttl() -> None:
    meter = ScriptedMeter(window(2400.0, 40.0))
    slept: list[float] = []
    outcome = resolve_baseline(
        BaselineConfig(duration_seconds=40.0, ttl_seconds=900.0), None, [0], meter, sleep=slept.append, now=lambda: NOW
    )
    # 2,400 J / 40 s = 60 W
    assert (outcome.provenance.method, outcome.provenance.ttl_s, slept) == ("measured", 900.0, [40.0])
    assert outcome.power_w == pytest.approx(60.0)


def test_resolve_passes_the_unavailable_path_through() -> None:
    meter = ScriptedMeter(window(None, 30.0))
    outcome = resolve_baseline(BaselineConfig(), None, [0], meter, sleep=lambda s: None, now=lambda: NOW)
    assert (outcome.provenance.method, outcome.power_w) == ("unavailable", None)
    assert [w.code for w in outcome.warnings] == ["baseline_unavailable"]


def cached(age_s: float, devices: Sequence[int] = (0, 1), naive: bool = False) -> CachedBaseline:
    at = NOW - timedelta(seconds=age_s)
    return CachedBaseline(
        power_w=61.0,
        measured_at=at.replace(tzinfo=None) if naive else at,
        duration_s=30.0,
        device_ids=list(devices),
        energy_method="counter",
    )


def test_cached_baseline_reuse_rules() -> None:
    assert reusable_cached(None, [0], 60.0, NOW) == (False, "no cached baseline")
    # device order does not matter
    assert reusable_cached(cached(10.0, (1, 0)), [0, 1], 60.0, NOW) == (True, "fresh")
    # a naive timestamp is UTC
    assert reusable_cached(cached(10.0, naive=True), [0, 1], 60.0, NOW) == (True, "fresh")
    # exactly at the TTL is expired; from the future is not trusted
    assert reusable_cached(cached(60.0), [0, 1], 60.0, NOW) == (False, "cached baseline is 60 s old (ttl 60 s)")
    assert reusable_cached(cached(-5.0), [0, 1], 60.0, NOW) == (False, "cached baseline is -5 s old (ttl 60 s)")
    assert reusable_cached(cached(10.0, (0,)), [0, 1], 60.0, NOW) == (
        False,
        "cached baseline is for devices [0], this run uses [0, 1]",
    )


def test_cached_baseline_reused_with_age_from_a_naive_timestamp() -> None:
    meter = ScriptedMeter(window(1.0, 1.0))
    outcome = resolve_baseline(
        BaselineConfig(ttl_seconds=600.0), cached(90.0, naive=True), [0, 1], meter, now=lambda: NOW
    )
    p = outcome.provenance
    assert (p.method, p.power_w, p.age_s, p.ttl_s, p.duration_s) == ("cached", 61.0, 90.0, 600.0, 30.0)
    assert meter.calls == []


def test_stale_baseline_only_past_the_ttl() -> None:
    p = BaselineProvenance(
        method="measured", power_w=60.0, duration_s=30.0, measured_at=(NOW - timedelta(seconds=100)), ttl_s=100.0
    )
    assert staleness_warning(p, NOW) is None  # exactly at the TTL
    warning = staleness_warning(p, (NOW + timedelta(seconds=20)).replace(tzinfo=None))  # naive end = UTC
    assert warning is not None
    assert warning.message.startswith("the idle baseline was 120 s old at the end of the window (ttl 100 s)")
    no_power = p.model_copy(update={"power_w": None})
    assert staleness_warning(no_power, NOW + timedelta(days=1)) is None
    no_ttl = p.model_copy(update={"ttl_s": None})
    assert staleness_warning(no_ttl, NOW + timedelta(days=1)) is None
    unknown_age = p.model_copy(update={"measured_at": None})
    assert staleness_warning(unknown_age, NOW + timedelta(days=1)) is None


# --------------------------------------------------------------------- warmup


class RecordingBackend(FakeBackend):
    """Records generate / synchronize in order; `latencies` scripts the seconds of each generate call."""

    def __init__(self, clock: FakeClock, latencies: Sequence[float] = (), batch_size: int = 1) -> None:
        lat = list(latencies)
        super().__init__(
            ExperimentConfig(model="m"),
            None,
            [],
            clock=clock,
            batch_size=batch_size,
            seconds_per_batch=lambda n: lat[n] if n < len(lat) else (lat[-1] if lat else 0.5),
        )
        self.order: list[str] = []
        self.prompts_seen: list[list[str]] = []

    def generate(self, prompts: Sequence[Prompt], on_progress: ProgressCallback | None = None) -> GenerationBatch:
        self.order.append("generate")
        self.prompts_seen.append([p.text for p in prompts])
        return super().generate(prompts, on_progress)

    def synchronize(self) -> None:
        self.order.append("synchronize")


PROMPTS = [Prompt(f"p{i}", max_new_tokens=4) for i in range(3)]


def test_every_warmup_iteration_synchronises_before_its_latency_is_taken(clock: FakeClock) -> None:
    class SlowSync(RecordingBackend):
        def synchronize(self) -> None:
            super().synchronize()
            clock.advance(0.25)  # queued device work finishing

    b = SlowSync(clock, latencies=[1.0])
    out = run_warmup(b, PROMPTS, WarmupConfig(n_warmup=2, thermal_floor_seconds=0), 8, clock=clock)
    assert out is not None
    assert b.order == ["generate", "synchronize", "generate", "synchronize"]
    # each latency = 1.0 s generate + 0.25 s synchronise; 2 iterations = 2.5 s
    assert out.result.warmup_duration_s == pytest.approx(2.5)
    assert out.result.final_cv == 0.0


def test_convergence_waits_for_min_prompts_even_when_cv_is_already_zero(clock: FakeClock) -> None:
    b = RecordingBackend(clock, latencies=[0.5])  # identical latencies: CV 0 from the second iteration
    cfg = WarmupConfig(
        convergence_detection=True, window_size=2, min_prompts=7, max_prompts=20, thermal_floor_seconds=1.0
    )
    out = run_warmup(b, PROMPTS, cfg, 8, clock=clock)
    assert out is not None
    r = out.result
    assert (r.converged, r.iterations_completed, r.max_prompts, r.target_cv) == (True, 7, 20, 0.05)
    assert r.warmup_duration_s == pytest.approx(3.5)  # 7 × 0.5 s, past the 1 s floor
    assert out.warnings == ()


def test_convergence_waits_for_a_full_cv_window(clock: FakeClock) -> None:
    b = RecordingBackend(clock, latencies=[0.5])
    cfg = WarmupConfig(
        convergence_detection=True, window_size=4, min_prompts=2, max_prompts=20, thermal_floor_seconds=0
    )
    out = run_warmup(b, PROMPTS, cfg, 8, clock=clock)
    assert out is not None
    assert out.result.iterations_completed == 4  # max(min_prompts 2, window 4)


def test_cv_equal_to_the_threshold_has_not_converged(clock: FakeClock) -> None:
    # latencies 1, 3, 1, 3, ...: over a window of 2 the CV is always √2 / 2, set as the threshold itself
    threshold = coefficient_of_variation([1.0, 3.0])
    assert threshold == pytest.approx(2**0.5 / 2)
    b = RecordingBackend(clock, latencies=[1.0, 3.0] * 10)
    cfg = WarmupConfig(
        convergence_detection=True,
        cv_threshold=threshold,
        window_size=2,
        min_prompts=2,
        max_prompts=6,
        thermal_floor_seconds=0,
    )
    out = run_warmup(b, PROMPTS, cfg, 8, clock=clock)
    assert out is not None
    assert (out.result.converged, out.result.iterations_completed) == (False, 6)
    assert out.result.final_cv == pytest.approx(threshold)
    not_converged = [w for w in out.warnings if w.code == "warmup_not_converged"]
    assert [w.message for w in not_converged] == [
        f"warmup latency CV 0.707 stayed above {threshold} after 6 iterations"
    ]


def test_warmup_progress_reports_done_and_planned(clock: FakeClock) -> None:
    b = RecordingBackend(clock, latencies=[0.5])
    progress: list[tuple[int, int, float | None]] = []
    run_warmup(
        b,
        PROMPTS,
        WarmupConfig(n_warmup=2, thermal_floor_seconds=1.5),
        8,
        clock=clock,
        on_progress=lambda d, t, cv: progress.append((d, t, cv)),
    )
    # planned 2; the floor (1.5 s at 0.5 s each) adds a third iteration, which raises the planned count
    assert progress == [(1, 2, None), (2, 2, 0.0), (3, 3, 0.0)]


def test_warmup_cycles_the_window_batches_in_order(clock: FakeClock) -> None:
    b = RecordingBackend(clock, batch_size=2)
    run_warmup(b, PROMPTS, WarmupConfig(n_warmup=3, thermal_floor_seconds=0), 8, clock=clock)
    assert b.prompts_seen == [["p0", "p1"], ["p2"], ["p0", "p1"]]


def test_warmup_without_prompts_is_an_error(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="at least one prompt"):
        run_warmup(RecordingBackend(clock), [], WarmupConfig(), 8, clock=clock)


def test_no_thermal_floor_warning_only_when_the_floor_is_zero(clock: FakeClock) -> None:
    out = run_warmup(
        RecordingBackend(clock), PROMPTS, WarmupConfig(n_warmup=1, thermal_floor_seconds=0.1), 8, clock=clock
    )
    assert out is not None
    assert out.warnings == ()
    zero = run_warmup(
        RecordingBackend(clock), PROMPTS, WarmupConfig(n_warmup=1, thermal_floor_seconds=0), 8, clock=clock
    )
    assert zero is not None
    assert [w.code for w in zero.warnings] == ["no_thermal_floor"]


def test_coefficient_of_variation_of_a_zero_mean_is_unknown() -> None:
    assert coefficient_of_variation([-1.0, 1.0]) is None
    assert coefficient_of_variation([]) is None
    # stdev([2, 4, 6]) = 2, mean 4 → 0.5
    assert coefficient_of_variation([2.0, 4.0, 6.0]) == pytest.approx(0.5, rel=1e-12)


# ------------------------------------------------- baseline context and temperature


def test_measured_baseline_records_meter_state_and_temperature() -> None:
    meter = ScriptedMeter(window(600.0, 10.0))
    outcome = measure_idle(
        meter, 10.0, sleep=lambda s: None, now=lambda: NOW, device_state="cuda_context", temperature=lambda: 41.5
    )
    p = outcome.provenance
    assert (p.meter, p.device_state, p.temperature_c) == ("nvml", "cuda_context", 41.5)
    failed = measure_idle(
        ScriptedMeter(window(None, 10.0)), 10.0, sleep=lambda s: None, now=lambda: NOW, device_state="no_gpu"
    )
    assert (failed.provenance.meter, failed.provenance.device_state, failed.provenance.temperature_c) == (
        "nvml",
        "no_gpu",
        None,
    )


def test_cached_baseline_of_another_meter_is_not_reused() -> None:
    zeus_cached = cached(10.0).model_copy(update={"meter": "zeus"})
    assert reusable_cached(zeus_cached, [0, 1], 60.0, NOW, "nvml") == (
        False,
        "cached baseline was taken with the zeus meter, this run uses nvml",
    )
    assert reusable_cached(zeus_cached, [0, 1], 60.0, NOW, "zeus") == (True, "fresh")
    assert reusable_cached(zeus_cached, [0, 1], 60.0, NOW) == (True, "fresh")  # meter unknown: not compared
    assert reusable_cached(cached(10.0), [0, 1], 60.0, NOW, "nvml") == (True, "fresh")  # cached meter unknown


def test_reused_baseline_carries_its_context_through() -> None:
    entry = cached(30.0).model_copy(update={"meter": "nvml", "device_state": "cuda_context", "temperature_c": 38.0})
    outcome = resolve_baseline(BaselineConfig(), entry, [0, 1], ScriptedMeter(window(1.0, 1.0)), now=lambda: NOW)
    p = outcome.provenance
    assert (p.method, p.meter, p.device_state, p.temperature_c, p.energy_method) == (
        "cached",
        "nvml",
        "cuda_context",
        38.0,
        "counter",
    )


def test_resolve_passes_state_and_temperature_to_a_new_measurement() -> None:
    outcome = resolve_baseline(
        BaselineConfig(duration_seconds=10.0),
        None,
        [0],
        ScriptedMeter(window(600.0, 10.0)),
        sleep=lambda s: None,
        now=lambda: NOW,
        device_state="cuda_context",
        temperature=lambda: 44.0,
    )
    assert (outcome.provenance.device_state, outcome.provenance.temperature_c) == ("cuda_context", 44.0)


def test_cached_baseline_colder_than_the_window_start_warns_past_ten_degrees() -> None:
    p = BaselineProvenance(method="cached", power_w=60.0, temperature_c=41.0)
    assert colder_baseline_warning(p, 51.0) is None  # exactly 10 °C colder
    warning = colder_baseline_warning(p, 55.0)
    assert warning is not None
    assert warning.code == "cached_baseline_colder"
    assert warning.message == (
        "the reused idle baseline was taken at 41 °C, 14 °C colder than the GPUs at the window's start (55 °C; "
        "threshold 10 °C): idle power rises with temperature, so the adjusted energy is over-stated — lower "
        "baseline.ttl_seconds so each run measures its own baseline"
    )
    assert colder_baseline_warning(p.model_copy(update={"method": "measured"}), 90.0) is None
    assert colder_baseline_warning(p.model_copy(update={"temperature_c": None}), 90.0) is None
    assert colder_baseline_warning(p, None) is None


def test_half_second_baseline_is_measured_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    # 30 J over 0.5 s = 60 W (a window under a second is still a window)
    with caplog.at_level("INFO", logger="llenergymeasure.harness.baseline"):
        outcome = measure_idle(ScriptedMeter(window(30.0, 0.5)), 0.5, sleep=lambda s: None, now=lambda: NOW)
    assert (outcome.provenance.method, outcome.power_w) == ("measured", pytest.approx(60.0))
    assert "idle baseline: 60.00 W over 0.5 s (counter)" in caplog.messages


def test_cached_baseline_age_edges_and_other_time_zones() -> None:
    assert reusable_cached(cached(0.0), [0, 1], 60.0, NOW) == (True, "fresh")  # measured this instant
    assert reusable_cached(cached(0.5), [0, 1], 60.0, NOW) == (True, "fresh")
    # the same instant written in UTC+2 is 10 s old, not two hours in the future
    at = (NOW - timedelta(seconds=10)).astimezone(timezone(timedelta(hours=2)))
    entry = cached(10.0).model_copy(update={"measured_at": at})
    assert reusable_cached(entry, [0, 1], 60.0, NOW) == (True, "fresh")


def test_baseline_reuse_and_refusal_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    meter = ScriptedMeter(window(600.0, 10.0))
    with caplog.at_level("INFO", logger="llenergymeasure.harness.baseline"):
        reused = resolve_baseline(BaselineConfig(ttl_seconds=600.0), cached(90.0), [0, 1], meter, now=lambda: NOW)
    assert reused.provenance.measured_at == NOW - timedelta(seconds=90)
    assert caplog.messages == ["reusing cached idle baseline 61.00 W (age 90 s)"]
    caplog.clear()
    with caplog.at_level("INFO", logger="llenergymeasure.harness.baseline"):
        resolve_baseline(
            BaselineConfig(ttl_seconds=60.0), cached(90.0), [0, 1], meter, sleep=lambda s: None, now=lambda: NOW
        )
    assert caplog.messages[0] == "not reusing the cached baseline: cached baseline is 90 s old (ttl 60 s)"
    caplog.clear()
    with caplog.at_level("INFO", logger="llenergymeasure.harness.baseline"):
        fresh = resolve_baseline(BaselineConfig(), None, [0], meter, sleep=lambda s: None, now=lambda: NOW)
    assert fresh.provenance.measured_at == NOW  # the caller's clock
    assert not [m for m in caplog.messages if m.startswith("not reusing")]


def test_warmup_texts() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match=r"^warmup needs at least one prompt$"):
        run_warmup(RecordingBackend(clock), [], WarmupConfig(), 8, clock=clock)
    out = run_warmup(
        RecordingBackend(clock), PROMPTS, WarmupConfig(n_warmup=1, thermal_floor_seconds=0), 8, clock=clock
    )
    assert out is not None
    assert out.warnings[0].message == (
        "warmup.thermal_floor_seconds is 0: the window may open on a cold GPU "
        "(lower clocks-to-power ratio than in steady state)"
    )
    # one iteration allowed: no CV can be computed, reported as nan
    cfg = WarmupConfig(convergence_detection=True, window_size=1, min_prompts=1, max_prompts=1, thermal_floor_seconds=0)
    single = run_warmup(RecordingBackend(clock), PROMPTS, cfg, 8, clock=clock)
    assert single is not None
    assert [w.message for w in single.warnings if w.code == "warmup_not_converged"] == [
        "warmup latency CV nan stayed above 0.05 after 1 iterations"
    ]
