"""CO2 = energy (kWh) × grid intensity (g/kWh) × PUE, labelled as an estimate; null without inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llenergymeasure.orchestrator.api import run_study
from llenergymeasure.orchestrator.user_config import load_user_config
from llenergymeasure.schemas.results import CO2Estimate, carbon_intensity_warning
from unit.orchestrator.orch_factories import ScriptedRunner, study_of


def test_co2_arithmetic_by_hand() -> None:
    # 3.6 MJ = 1 kWh; × 400 g/kWh × PUE 1.2 = 480 g
    one_kwh = CO2Estimate.from_energy(3.6e6, 400.0, 1.2)
    assert one_kwh is not None
    assert one_kwh.energy_kwh == pytest.approx(1.0)
    assert one_kwh.co2_g == pytest.approx(480.0)
    assert one_kwh.method == "estimated"
    # 7,200 J = 0.002 kWh × 250 g/kWh × 1.0 = 0.5 g
    small = CO2Estimate.from_energy(7200.0, 250.0)
    assert small is not None
    assert small.co2_g == pytest.approx(0.5)


def test_no_estimate_without_energy_or_intensity() -> None:
    assert CO2Estimate.from_energy(None, 400.0) is None
    assert CO2Estimate.from_energy(100.0, None) is None


def test_kg_per_kwh_mistake_is_flagged() -> None:
    warning = carbon_intensity_warning(0.4)
    assert warning is not None
    assert "kg/kWh" in warning and "400" in warning
    assert carbon_intensity_warning(2.0) is None
    assert carbon_intensity_warning(400.0) is None
    assert carbon_intensity_warning(None) is None


def test_intensity_from_the_environment_reaches_every_run_and_the_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"LLEM_CARBON_INTENSITY": "0.5", "LLEM_DATACENTER_PUE": "1.5", "HOME": str(tmp_path)}
    user = load_user_config(env)
    runner = ScriptedRunner()
    with caplog.at_level(logging.WARNING):
        result = run_study(
            study_of(1, 2),
            output_dir=tmp_path / "out",
            runner=runner,
            user_config=user,
            no_gaps=True,
            quiet=True,
            skip_preflight=True,
            env=env,
        )
    contexts = [r.job.context for r in runner.requests]
    assert [(c.carbon_intensity_gco2_per_kwh, c.datacenter_pue) for c in contexts] == [(0.5, 1.5), (0.5, 1.5)]
    assert any("looks like a value in kg/kWh" in r.getMessage() for r in caplog.records)
    assert len(result.summary.configurations) == 1
    # ScriptedRunner's results carry no co2 (it does not run the harness): the summary says n = 0, not 0 g
    assert result.summary.configurations[0].co2_g.n == 0


def test_summary_carries_co2_across_cycles() -> None:
    from llenergymeasure.results.summary import summarise
    from llenergymeasure.schemas.job import ExperimentJob, RunContext
    from unit.orchestrator.orch_factories import make_result, tiny_config

    results = []
    for cycle, energy_j in ((1, 7200.0), (2, 14400.0)):
        job = ExperimentJob(config=tiny_config(), context=RunContext(experiment_id="000-x", cycle=cycle))
        r = make_result(job, energy_j=energy_j)
        results.append(r.model_copy(update={"co2": CO2Estimate.from_energy(energy_j, 250.0)}))
    s = summarise(tiny_config(), results)
    # 7,200 J → 0.5 g and 14,400 J → 1.0 g at 250 g/kWh: mean 0.75 g
    assert s.co2_g.mean == pytest.approx(0.75)
    assert s.co2_g.n == 2
