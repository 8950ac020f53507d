"""Analytic power traces: power at t and its exact integral from 0 to t (seconds, watts, joules)."""

from __future__ import annotations

import math

from llenergymeasure.schemas.simulated_gpus import ConstantPower, PowerTrace, RampPower, SquarePower


def power_w(trace: PowerTrace, t_s: float) -> float:
    """Instantaneous power at `t_s`, watts."""
    if isinstance(trace, ConstantPower):
        return trace.watts
    if isinstance(trace, SquarePower):
        fraction = ((t_s - trace.phase_s) * trace.hz) % 1.0
        return trace.high_w if fraction < 0.5 else trace.low_w
    return max(0.0, trace.start_w + trace.w_per_s * t_s)


def energy_j(trace: PowerTrace, t_s: float) -> float:
    """Exact integral of `power_w` over [0, t_s], joules (t_s ≥ 0)."""
    if t_s <= 0:
        return 0.0
    if isinstance(trace, ConstantPower):
        return trace.watts * t_s
    if isinstance(trace, SquarePower):
        return _square_from_edge(trace, t_s - trace.phase_s) - _square_from_edge(trace, -trace.phase_s)
    return _ramp(trace, t_s)


def _square_from_edge(trace: SquarePower, x_s: float) -> float:
    """∫ of the wave from a rising edge (x = 0) to x (any sign): whole periods plus the partial one."""
    periods = x_s * trace.hz
    whole = math.floor(periods)
    r = periods - whole  # position within the period, [0, 1)
    per_period_j = (trace.high_w + trace.low_w) / 2.0 / trace.hz
    partial_j = (min(r, 0.5) * trace.high_w + max(r - 0.5, 0.0) * trace.low_w) / trace.hz
    return whole * per_period_j + partial_j


def _ramp(trace: RampPower, t_s: float) -> float:
    a, b = trace.start_w, trace.w_per_s
    if b < 0:  # the ramp reaches 0 W at t = -a/b and stays there
        t_s = min(t_s, -a / b)
    return a * t_s + b * t_s * t_s / 2.0
