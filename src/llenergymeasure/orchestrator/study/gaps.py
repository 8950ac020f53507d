"""Pauses between runs, so the GPU starts each measurement from a comparable thermal state.

Which gap applies (`gap_before`):
- round-based orders (interleaved, shuffled: every experiment once per cycle):
  ``cycle_gap_seconds`` where the cycle number changes, ``config_gap_seconds`` otherwise;
- sequential order (A1 A2 B1 B2): ``cycle_gap_seconds`` between two cycles of the
  same experiment, ``config_gap_seconds`` when the experiment changes.
There is no gap before the first run a session executes, and runs skipped by
``--resume`` do not count.

`GapWaiter` sleeps in one-second steps and reports the seconds left to a
callback (the countdown on stderr); ``no_gaps`` makes every wait zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from llenergymeasure.schemas.study import ExecutionConfig

RunKey = tuple[int, int]
TickCallback = Callable[[float, str], None]  # (seconds left, reason)


def gap_before(previous: RunKey | None, upcoming: RunKey, execution: ExecutionConfig) -> tuple[float, str]:
    """(seconds, reason) to wait before `upcoming` when `previous` was the last run executed."""
    if previous is None:
        return 0.0, "first run"
    (prev_index, prev_cycle), (index, cycle) = previous, upcoming
    if execution.cycle_order == "sequential":
        new_cycle = index == prev_index and cycle != prev_cycle
    else:
        new_cycle = cycle != prev_cycle
    if new_cycle:
        return execution.cycle_gap_seconds, "cycle gap"
    return execution.config_gap_seconds, "config gap"


class GapWaiter:
    """Waits out a gap with a countdown; injected sleep/clock make it instant in tests."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        on_tick: TickCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self._on_tick = on_tick
        self._sleep = sleep
        self._clock = clock
        self.waited_s = 0.0  # total seconds asked for, for the record

    def wait(self, seconds: float, reason: str) -> None:
        if not self.enabled or seconds <= 0:
            return
        self.waited_s += seconds
        end = self._clock() + seconds
        while True:
            left = end - self._clock()
            if left <= 0:
                break
            if self._on_tick is not None:
                self._on_tick(math.ceil(left), reason)
            self._sleep(min(1.0, left))
        if self._on_tick is not None:
            self._on_tick(0.0, reason)
