"""Idle baseline power: measured before the model loads, or reused from an earlier run.

Measured with the run's own energy meter over ``baseline.duration_seconds`` in
the state the window will see minus the work: CUDA context up on every device of
the set, nothing loaded, nothing running. Sleeping is right *here* (idle is what
we want to measure); it is never used to "cool down" before the window.

A cached baseline from the job (same image and device set, measured by an
earlier container) is reused when its age is under ``baseline.ttl_seconds``; its
age is recorded. The baseline is reported as *stale* when, at the end of the
window, it is older than the TTL (a very long warmup or window).

``energy_adjusted_j = energy_total_j − baseline_power_w × window_duration_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from llenergymeasure.harness.energy.base import EnergyMeter
from llenergymeasure.schemas.config.sections import BaselineConfig
from llenergymeasure.schemas.job import CachedBaseline
from llenergymeasure.schemas.results import BaselineProvenance, MeasurementWarning

logger = logging.getLogger(__name__)

UtcNow = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class BaselineOutcome:
    """The baseline to subtract, how it was obtained, and warnings about it."""

    provenance: BaselineProvenance
    warnings: tuple[MeasurementWarning, ...] = ()

    @property
    def power_w(self) -> float | None:
        return self.provenance.power_w


def adjusted_energy_j(energy_j: float | None, baseline_power_w: float | None, window_s: float) -> float | None:
    """Energy above idle: ``energy_j − baseline_power_w × window_s``; None when either input is unknown."""
    if energy_j is None or baseline_power_w is None:
        return None
    return energy_j - baseline_power_w * window_s


def measure_idle(
    meter: EnergyMeter,
    duration_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: UtcNow = utc_now,
) -> BaselineOutcome:
    """Idle power over `duration_s` with `meter` (the caller has brought the device context up)."""
    meter.start_window()
    sleep(duration_s)
    window = meter.stop_window()
    measured_at = now()
    if window.energy_j is None or window.duration_s <= 0:
        reason = "; ".join(w.message for w in window.warnings) or "the meter returned no energy"
        return BaselineOutcome(
            BaselineProvenance(
                method="unavailable", power_w=None, duration_s=window.duration_s, measured_at=measured_at
            ),
            (MeasurementWarning(code="baseline_unavailable", message=f"idle baseline not measured: {reason}"),),
        )
    power_w = window.energy_j / window.duration_s
    logger.info("idle baseline: %.2f W over %.1f s (%s)", power_w, window.duration_s, window.method)
    return BaselineOutcome(
        BaselineProvenance(
            method="measured",
            power_w=power_w,
            duration_s=window.duration_s,
            measured_at=measured_at,
            energy_method=window.method,
        ),
        tuple(w for w in window.warnings if w.code != "integrated_power"),
    )


def reusable_cached(
    cached: CachedBaseline | None, device_set: Sequence[int], ttl_s: float, now: datetime
) -> tuple[bool, str]:
    """Whether `cached` may be reused for `device_set` now, and why not."""
    if cached is None:
        return False, "no cached baseline"
    if sorted(cached.device_ids) != sorted(device_set):
        return False, f"cached baseline is for devices {cached.device_ids}, this run uses {list(device_set)}"
    age_s = (now - _aware(cached.measured_at)).total_seconds()
    if age_s < 0 or age_s >= ttl_s:
        return False, f"cached baseline is {age_s:.0f} s old (ttl {ttl_s:.0f} s)"
    return True, "fresh"


def resolve_baseline(
    config: BaselineConfig,
    cached: CachedBaseline | None,
    device_set: Sequence[int],
    meter: EnergyMeter,
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: UtcNow = utc_now,
) -> BaselineOutcome:
    """Disabled, reused from the cache, or measured now (in that order of preference)."""
    if not config.enabled:
        return BaselineOutcome(BaselineProvenance(method="disabled", power_w=None))
    if meter.source == "none":  # nothing to measure with; the meter's own warning says why
        return BaselineOutcome(BaselineProvenance(method="unavailable", power_w=None))
    current = now()
    ok, why = reusable_cached(cached, device_set, config.ttl_seconds, current)
    if ok and cached is not None:
        age_s = (current - _aware(cached.measured_at)).total_seconds()
        logger.info("reusing cached idle baseline %.2f W (age %.0f s)", cached.power_w, age_s)
        return BaselineOutcome(
            BaselineProvenance(
                method="cached",
                power_w=cached.power_w,
                duration_s=cached.duration_s,
                measured_at=cached.measured_at,
                age_s=age_s,
                ttl_s=config.ttl_seconds,
                energy_method=cached.energy_method,
            )
        )
    if cached is not None:
        logger.info("not reusing the cached baseline: %s", why)
    outcome = measure_idle(meter, config.duration_seconds, sleep=sleep, now=now)
    return BaselineOutcome(outcome.provenance.model_copy(update={"ttl_s": config.ttl_seconds}), outcome.warnings)


def staleness_warning(provenance: BaselineProvenance, window_end: datetime) -> MeasurementWarning | None:
    """A `stale_baseline` warning when the baseline is older than its TTL at the end of the window."""
    if provenance.measured_at is None or provenance.ttl_s is None or provenance.power_w is None:
        return None
    age_s = (_aware(window_end) - _aware(provenance.measured_at)).total_seconds()
    if age_s <= provenance.ttl_s:
        return None
    return MeasurementWarning(
        code="stale_baseline",
        message=f"the idle baseline was {age_s:.0f} s old at the end of the window (ttl {provenance.ttl_s:.0f} s); "
        "idle power may have drifted — rerun, or raise baseline.ttl_seconds if that is expected",
    )


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)
