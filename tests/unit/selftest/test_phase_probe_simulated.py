"""The phase probe on simulated square waves, analysed by the host: answers worked out from the spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.harness import phase_probe
from llenergymeasure.orchestrator.selftest.phase import Phase, analyse

HIGH_W, LOW_W, WINDOW_S = 300.0, 100.0, 2.0


def test_probe_reads_the_spec_waves_and_exposes_aliasing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {"devices": [{"power": {"kind": "square", "low_w": LOW_W, "high_w": HIGH_W, "hz": hz}}
                        for hz in (0.5, 5.0, 10.0)] + [{"power": {"kind": "constant", "watts": 50}}]}  # fmt: skip
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    monkeypatch.setenv("LLEM_SIMULATE_GPUS", str(path))
    assert phase_probe.main(["--window-s", str(WINDOW_S)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frequency_hz"] for r in rows] == [0.5, 5.0, 10.0]  # the constant device has no wave to probe
    results = {}
    for r in rows:
        phases = [Phase(a, b, busy) for a, b, busy in r["phases"]]
        results[r["frequency_hz"]] = analyse(
            r["frequency_hz"], phases, r["counter_j"], [tuple(s) for s in r["samples"]]
        )
    for hz, res in results.items():
        # whole periods of a 300/100 W wave: mean 200 W × 2 s = 400 J; the counter ticks every 20 ms (±1 %)
        assert res.window_s == pytest.approx(WINDOW_S)
        assert res.counter_energy_j == pytest.approx(400.0, rel=0.02), hz
        assert res.phases == round(2 * hz * WINDOW_S)
        assert res.phases_seen == res.phases  # a 20 ms counter moves in every phase of 50 ms or more
    # the counter resolves the wave (300 / 100 W) where its 20 ms updates are small against a phase;
    # at 10 Hz a 20 ms update blurs each 50 ms phase, so the ratio only stays above 1
    assert results[0.5].busy_idle_ratio == pytest.approx(3.0, rel=0.05)
    assert results[5.0].busy_idle_ratio == pytest.approx(3.0, rel=0.1)
    assert (results[10.0].busy_idle_ratio or 0) > 1.2
    # 0.5 Hz and 5 Hz: the 100 ms sampler follows the wave (within the edge trapezoids, a few %)
    assert abs(results[0.5].deviation_pct or 99) < 3.0
    assert abs(results[5.0].deviation_pct or 99) < 3.0
    # 10 Hz: every sample lands 20 ms into a period, in the 300 W half: the timeline reads +50 %
    assert results[10.0].deviation_pct == pytest.approx(50.0, abs=5.0)
