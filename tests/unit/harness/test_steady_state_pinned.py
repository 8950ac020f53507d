"""The steady-state sub-window pinned at its edges: minimum request count and length, token counts of 0 and 1,
the calibration's guard, and in-flight counts at coincident event times. Values worked out by hand beside each."""

from __future__ import annotations

import pytest

from llenergymeasure.harness.steady_state import (
    RequestSpan,
    calibrated_energy_j,
    plateau,
    spans_of,
    steady_state_window,
    tokens_between,
)


def constant_100_w(a: float, b: float) -> float:
    """A power timeline at 100 W: its integral over [a, b]."""
    return 100.0 * (b - a)


def window(spans: list[RequestSpan], *, window_s: float = 1.0, interval_s: float = 0.1, total_j: float = 50.0):  # type: ignore[no-untyped-def]
    return steady_state_window(
        spans, energy_total_j=total_j, timeline_j=constant_100_w, window_s=window_s, sample_interval_s=interval_s
    )


def test_two_requests_and_a_plateau_exactly_two_sample_intervals_long_are_enough() -> None:
    # both in flight over [0, 0.2]: peak 2, plateau [0, 0.2] = 2 × 0.1 s (the minimum, inclusive)
    # tokens: 3 each at 0, 0.1, 0.2 → 6; energy: 50 J × (100 W × 0.2 s) / (100 W × 1 s) = 10 J
    ss = window([RequestSpan(0.0, 0.2, 3), RequestSpan(0.0, 0.2, 3)])
    assert ss is not None
    assert (ss.start_s, ss.end_s, ss.peak_in_flight, ss.plateau_in_flight, ss.output_tokens) == (0.0, 0.2, 2, 2, 6)
    assert ss.energy_j == pytest.approx(10.0, rel=1e-12)
    assert ss.energy_per_output_token_j == pytest.approx(10.0 / 6, rel=1e-12)
    assert ss.output_tokens_per_s == pytest.approx(30.0, rel=1e-12)  # 6 tokens / 0.2 s
    # one request is too few
    assert window([RequestSpan(0.0, 0.2, 3)]) is None


def test_plateau_shorter_than_two_sample_intervals_is_not_reported() -> None:
    assert window([RequestSpan(0.0, 0.2, 3), RequestSpan(0.0, 0.2, 3)], interval_s=0.11) is None


def test_duration_and_rate_of_a_plateau_that_starts_late() -> None:
    # both in flight over [0.3, 0.9]: 4 tokens each, 0.2 s apart, all inside → 8 tokens over 0.6 s
    # energy 50 J × 60 J / 100 J = 30 J
    ss = window([RequestSpan(0.3, 0.9, 4), RequestSpan(0.3, 0.9, 4)])
    assert ss is not None
    assert ss.duration_s == pytest.approx(0.6, rel=1e-12)
    assert ss.output_tokens_per_s == pytest.approx(8 / 0.6, rel=1e-12)
    assert ss.energy_j == pytest.approx(30.0, rel=1e-12)


def test_one_token_in_the_plateau_carries_all_its_energy_and_none_gives_no_ratio() -> None:
    # plateau [0, 1] (the whole 1 s window): energy 50 J × 100/100 = 50 J over a single token
    one = window([RequestSpan(0.0, 1.0, 1), RequestSpan(0.0, 1.0, 0)])
    assert one is not None
    assert (one.output_tokens, one.energy_j, one.energy_per_output_token_j) == (1, 50.0, 50.0)
    none = window([RequestSpan(0.0, 1.0, 0), RequestSpan(0.0, 1.0, 0)])
    assert none is not None
    assert (none.output_tokens, none.energy_j, none.energy_per_output_token_j, none.output_tokens_per_s) == (
        0,
        50.0,
        None,
        0.0,
    )


def test_a_plateau_cut_to_nothing_by_the_window_end_is_not_reported_even_without_a_minimum_length() -> None:
    # plateau [0.5, 1.0] clipped by a 0.5 s window to [0.5, 0.5]; no minimum length (interval 0)
    assert window([RequestSpan(0.5, 1.0, 2), RequestSpan(0.5, 1.0, 2)], window_s=0.5, interval_s=0.0) is None


def test_calibration_scales_small_timelines_too() -> None:
    # 10 J × 0.25 / 0.5 = 5 J (a timeline under 1 J over the window is still a valid scale)
    assert calibrated_energy_j(10.0, 0.5, 0.25) == pytest.approx(5.0, rel=1e-12)
    assert calibrated_energy_j(10.0, 0.0, 0.25) is None
    assert calibrated_energy_j(10.0, -1.0, 0.25) is None


def test_in_flight_counts_merge_events_at_the_same_time() -> None:
    # A [0, 5), B [1, 5), C and D [2, 4): in flight 1 from 0, 2 from 1, 4 from 2 (two starts at once),
    # 2 from 4 (two ends at once), 0 from 5. Peak 4, level ceil(0.9 × 4) = 4: plateau [2, 4]
    spans = [RequestSpan(0.0, 5.0, 1), RequestSpan(1.0, 5.0, 1), RequestSpan(2.0, 4.0, 1), RequestSpan(2.0, 4.0, 1)]
    assert plateau(spans) == (2.0, 4.0, 4, 4)


def test_tokens_inside_a_window_for_every_kind_of_request() -> None:
    spans = [
        RequestSpan(0.0, 5.0, 0),  # no tokens: 0
        RequestSpan(1.0, 1.0, 1),  # one token at a = 1.0 (bounds inclusive): 1
        RequestSpan(2.0, 2.0, 1),  # one token at b = 2.0: 1
        RequestSpan(2.5, 2.5, 1),  # one token after b: 0
        RequestSpan(1.0, 1.0, 3),  # three tokens at one instant, at a: 3
        RequestSpan(2.0, 2.0, 2),  # two at one instant, at b: 2
        RequestSpan(3.0, 3.0, 4),  # four at one instant, after b: 0
        RequestSpan(0.0, 2.0, 5),  # tokens at 0, 0.5, 1.0, 1.5, 2.0 (step 2 / 4): 3 in [1, 2]
        RequestSpan(5.0, 6.0, 3),  # tokens at 5, 5.5, 6: 0
    ]
    assert tokens_between(spans, 1.0, 2.0) == 10


def test_spans_need_both_offsets_of_every_request() -> None:
    assert spans_of([0.0, 0.5], [1.0, 2.0], [3, 4]) == [RequestSpan(0.0, 1.0, 3), RequestSpan(0.5, 2.0, 4)]
    assert spans_of([0.0, None], [1.0, 2.0], [3, 4]) is None
    assert spans_of([0.0, 0.5], [1.0, None], [3, 4]) is None
    with pytest.raises(ValueError, match="zip"):
        spans_of([0.0], [1.0, 2.0], [3, 4])
