"""Idle baselines cached per (image, device set, meter) for the length of a study, with a TTL.

The first run on a device set measures its baseline (the harness reports it in
``energy.baseline`` with method ``measured``); later runs on the same image and
the same GPUs with the same ``energy.backend`` receive it in
``RunContext.cached_baseline`` while it is younger than the experiment's
``baseline.ttl_seconds``: a baseline taken by one meter is never subtracted from
another's reading. (``auto`` is a key of its own; the harness also refuses a
cached baseline whose recorded meter differs from the one it resolved.) The harness re-checks the age and
records it, so a stale baseline is never used silently.

Decisions: the cache lives in memory (a resumed study measures its first
baseline again — a fresh baseline after a pause is the safer choice); runs on a
host without GPUs never produce a measured baseline, so nothing is cached there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from llenergymeasure.schemas.job import CachedBaseline
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.util.clock import utc_now

BaselineKey = tuple[str, tuple[int, ...], str]


class BaselineCache:
    """(image, host device ids, energy backend) → the latest measured `CachedBaseline`."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._entries: dict[BaselineKey, CachedBaseline] = {}

    @staticmethod
    def key(image: str, host_device_ids: Sequence[int], meter: str) -> BaselineKey:
        return image, tuple(sorted(host_device_ids)), meter

    def get(self, image: str, host_device_ids: Sequence[int], ttl_s: float, meter: str) -> CachedBaseline | None:
        """The cached baseline for this device set and meter (``energy.backend``) if younger than `ttl_s` seconds."""
        cached = self._entries.get(self.key(image, host_device_ids, meter))
        if cached is None:
            return None
        age_s = (self._clock() - cached.measured_at).total_seconds()
        return cached if 0 <= age_s < ttl_s else None

    def offer(self, image: str, host_device_ids: Sequence[int], result: ExperimentResult) -> CachedBaseline | None:
        """Cache the baseline `result` measured itself (a reused or unavailable one is ignored)."""
        b = result.energy.baseline
        if (
            b.method != "measured"
            or b.power_w is None
            or b.measured_at is None
            or b.energy_method not in ("counter", "integrated_power")
        ):
            return None
        cached = CachedBaseline(
            power_w=b.power_w,
            measured_at=b.measured_at,
            duration_s=b.duration_s or 0.0,
            device_ids=list(host_device_ids),
            energy_method=b.energy_method,
            meter=b.meter,
            device_state=b.device_state,
            temperature_c=b.temperature_c,
        )
        self._entries[self.key(image, host_device_ids, result.config.energy.backend)] = cached
        return cached
