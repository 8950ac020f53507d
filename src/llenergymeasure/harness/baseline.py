"""Idle baseline power: measured before the model loads, or reused from an earlier run.

Measured with the run's own energy meter over ``baseline.duration_seconds`` in
the state the window will see minus the work: CUDA context up on every device of
the set, nothing loaded, nothing running. Sleeping is right *here* (idle is what
we want to measure); it is never used to "cool down" before the window.

A cached baseline from the job (same image, device set and meter, measured by
an earlier container) is reused when its age is under ``baseline.ttl_seconds``
and it was taken by the same meter as this run's; its age is recorded. The
baseline is reported as *stale* when, at the end of the window, it is older than
the TTL (a very long warmup or window).

Every baseline records the meter that took it, the devices' CUDA state during
the measurement and the hottest GPU's temperature at its end. Idle power rises
with temperature (leakage), so a *cached* baseline taken more than
`COLDER_BASELINE_THRESHOLD_C` below the window's start temperature is reported
(`cached_baseline_colder`): subtracting it over-states the adjusted energy.
A baseline measured by this run is taken before warmup by design (idle is what
it measures) and is not compared.

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
from llenergymeasure.schemas.results import BaselineProvenance, DeviceState, MeasurementWarning
from llenergymeasure.util.clock import utc_now

logger = logging.getLogger(__name__)

UtcNow = Callable[[], datetime]
#: a cached baseline this many °C colder than the window's start is reported
COLDER_BASELINE_THRESHOLD_C = 10.0


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
    device_state: DeviceState | None = None,
    temperature: Callable[[], float | None] = lambda: None,
) -> BaselineOutcome:
    """Idle power over `duration_s` with `meter` (the caller has brought the device context up)."""
    meter.start_window()
    sleep(duration_s)
    window = meter.stop_window()
    measured_at = now()
    context = {"meter": meter.source, "device_state": device_state, "temperature_c": temperature()}
    if window.energy_j is None or window.duration_s <= 0:
        reason = "; ".join(w.message for w in window.warnings) or "the meter returned no energy"
        return BaselineOutcome(
            BaselineProvenance(
                method="unavailable", power_w=None, duration_s=window.duration_s, measured_at=measured_at, **context
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
            **context,
        ),
        tuple(w for w in window.warnings if w.code != "integrated_power"),
    )


def reusable_cached(
    cached: CachedBaseline | None, device_set: Sequence[int], ttl_s: float, now: datetime, meter: str | None = None
) -> tuple[bool, str]:
    """Whether `cached` may be reused for `device_set` and `meter` now, and why not."""
    if cached is None:
        return False, "no cached baseline"
    if sorted(cached.device_ids) != sorted(device_set):
        return False, f"cached baseline is for devices {cached.device_ids}, this run uses {list(device_set)}"
    if meter is not None and cached.meter is not None and cached.meter != meter:
        return False, f"cached baseline was taken with the {cached.meter} meter, this run uses {meter}"
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
    device_state: DeviceState | None = None,
    temperature: Callable[[], float | None] = lambda: None,
) -> BaselineOutcome:
    """Disabled, reused from the cache, or measured now (in that order of preference).

    `device_state` is the devices' CUDA state during the measurement; `temperature` reads the hottest GPU (°C).
    """
    if not config.enabled:
        return BaselineOutcome(BaselineProvenance(method="disabled", power_w=None))
    if meter.source == "none":  # nothing to measure with; the meter's own warning says why
        return BaselineOutcome(BaselineProvenance(method="unavailable", power_w=None))
    current = now()
    ok, why = reusable_cached(cached, device_set, config.ttl_seconds, current, meter.source)
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
                meter=cached.meter,
                device_state=cached.device_state,
                temperature_c=cached.temperature_c,
            )
        )
    if cached is not None:
        logger.info("not reusing the cached baseline: %s", why)
    outcome = measure_idle(
        meter, config.duration_seconds, sleep=sleep, now=now, device_state=device_state, temperature=temperature
    )
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


def colder_baseline_warning(
    provenance: BaselineProvenance, window_start_temperature_c: float | None
) -> MeasurementWarning | None:
    """`cached_baseline_colder` when a reused baseline was taken more than the threshold below the window's start."""
    if provenance.method != "cached" or provenance.temperature_c is None or window_start_temperature_c is None:
        return None
    delta_c = window_start_temperature_c - provenance.temperature_c
    if delta_c <= COLDER_BASELINE_THRESHOLD_C:
        return None
    return MeasurementWarning(
        code="cached_baseline_colder",
        message=f"the reused idle baseline was taken at {provenance.temperature_c:.0f} °C, {delta_c:.0f} °C colder "
        f"than the GPUs at the window's start ({window_start_temperature_c:.0f} °C; threshold "
        f"{COLDER_BASELINE_THRESHOLD_C:.0f} °C): idle power rises with temperature, so the adjusted energy is "
        "over-stated — lower baseline.ttl_seconds so each run measures its own baseline",
    )


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)
