"""Counter phase test arithmetic against a square wave whose energies are worked out by hand."""

from __future__ import annotations

import math

import pytest

from llenergymeasure.orchestrator.selftest.phase import analyse, integrate, square_wave

P_BUSY_W, P_IDLE_W, WINDOW_S = 300.0, 100.0, 10.0


def _energy_j(t: float, frequency_hz: float) -> float:
    """Exact energy of the square wave from 0 to t: whole halves plus the part of the current half."""
    half = 0.5 / frequency_hz
    k = math.floor(t / half + 1e-9)
    done = sum(P_BUSY_W if i % 2 == 0 else P_IDLE_W for i in range(k)) * half
    return done + (t - k * half) * (P_BUSY_W if k % 2 == 0 else P_IDLE_W)


def _power_w(t: float, frequency_hz: float) -> float:
    return P_BUSY_W if (t * frequency_hz) % 1.0 < 0.5 else P_IDLE_W


def _run(frequency_hz: float, counter_tick_s: float | None = None) -> object:
    phases = square_wave(frequency_hz, WINDOW_S)
    edges = [p.start_s for p in phases] + [phases[-1].end_s]

    def counter(t: float) -> float:
        if counter_tick_s is None:
            return _energy_j(t, frequency_hz)
        # a counter that publishes a new value every tick (at 0.01 + k × tick)
        last_tick = math.floor((t - 0.01) / counter_tick_s + 1e-9) * counter_tick_s + 0.01
        return _energy_j(max(last_tick, 0.0), frequency_hz) if t >= 0.01 else 0.0

    # instant power sampled every 100 ms from t = 0.02 s (off the phase edges)
    samples = [(0.02 + 0.1 * k, _power_w(0.02 + 0.1 * k, frequency_hz)) for k in range(100)]
    return analyse(frequency_hz, phases, [counter(t) for t in edges], samples)


def test_slow_waves_agree_and_the_counter_sees_every_phase() -> None:
    for frequency_hz in (0.5, 5.0):
        r = _run(frequency_hz)
        # mean power 200 W over 10 s
        assert r.counter_energy_j == pytest.approx(2000.0)
        # by hand: the trapezoids across the edges lose 6 J net (see the test module's arithmetic):
        # 0.5 Hz: 5 busy→idle edges at −6 J, 4 idle→busy at +6 J; 5 Hz: 99 × 20 J + 6 J + 8 J = 1994 J
        assert r.timeline_energy_j == pytest.approx(1994.0)
        assert r.deviation_pct == pytest.approx(-0.3)
        assert r.phases == int(2 * frequency_hz * WINDOW_S)
        assert r.phases_seen == r.phases
        assert r.busy_idle_ratio == pytest.approx(3.0)


def test_sampling_aliases_at_10_and_20_hz() -> None:
    for frequency_hz in (10.0, 20.0):
        r = _run(frequency_hz)
        # every 100 ms sample lands 20 ms into a period: always busy, so the timeline reads 300 W × 10 s
        assert r.timeline_energy_j == pytest.approx(3000.0)
        assert r.deviation_pct == pytest.approx(50.0)
        assert r.counter_energy_j == pytest.approx(2000.0)


def test_a_counter_slower_than_the_phases_misses_some() -> None:
    r = _run(20.0, counter_tick_s=0.1)
    # 400 phases of 25 ms; a counter publishing every 100 ms moves in 100 of them
    assert r.phases == 400
    assert r.phases_seen == 100
    # every tick (0.01 + 0.1k s) falls 10 ms into a period, in a busy phase: idle phases show no energy at all,
    # so the busy/idle ratio is undefined — the counter cannot resolve a 20 Hz wave
    assert r.busy_idle_ratio is None


def test_integrate_holds_the_ends_and_needs_samples() -> None:
    assert integrate([(1.0, 10.0), (2.0, 20.0)], 0.0, 3.0) == pytest.approx(10.0 + 15.0 + 20.0)
    assert integrate([], 0.0, 1.0) is None
    with pytest.raises(ValueError, match="every phase edge"):
        analyse(1.0, square_wave(1.0, 2.0), [0.0], [])
