"""The host side of simulated GPUs: the GPU probe, a bad spec before anything runs, the summary marks rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_factories import tiny_config

from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestrator.cli.summary import _energy_cell
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.gpus import NvmlGpus, probe_gpus
from llenergymeasure.orchestrator.runners.local import LocalRunner
from llenergymeasure.schemas.job import ExperimentJob, RunContext

SPEC = '{"devices": [{"power": {"kind": "constant", "watts": 100}}, {"power": {"kind": "constant", "watts": 50}}]}'


def test_probe_sees_the_simulated_devices(tmp_path: Path) -> None:
    path = tmp_path / "gpus.json"
    path.write_text(SPEC)
    probe = probe_gpus({"LLEM_SIMULATE_GPUS": str(path)})
    assert isinstance(probe, NvmlGpus) and probe.simulated
    assert probe.device_count() == 2
    assert probe.foreign_processes(1) == []


def test_bad_spec_fails_the_probe_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "gpus.json"
    path.write_text('{"devices": [{"power": {"kind": "constant", "watts": -1}}]}')
    with pytest.raises(ConfigError) as err:
        probe_gpus({"LLEM_SIMULATE_GPUS": str(path)})
    assert err.value.exit_code == 2 and "devices[0].power.watts" in err.value.render()


def test_local_runner_passes_the_spec_as_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLEM_SIMULATE_GPUS", "gpus.json")
    request = RunRequest(
        job=ExperimentJob(config=tiny_config(), context=RunContext()),
        run_dir=tmp_path / "run",
        name="x",
        host_device_ids=[0],
    )
    env = LocalRunner().environment(request)
    assert env["LLEM_SIMULATE_GPUS"] == str(tmp_path / "gpus.json")


def test_summary_table_marks_simulated_rows() -> None:
    assert _energy_cell("counter", "nvml") == "counter"
    assert _energy_cell("counter", "simulated") == "counter [SIMULATED]"
    assert _energy_cell("integrated_power", "mixed, incl. simulated") == "integrated_power [SIMULATED]"
