"""End to end without Docker: `run_experiment` with ``LLEM_RUNNER_PYTORCH=local`` runs the real harness
subprocess on the tiny random Llama, on CPU, and returns a real `ExperimentResult`."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from fixtures.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from llenergymeasure import ExperimentResult, run_experiment
from llenergymeasure.errors import ExperimentError, PreFlightError
from llenergymeasure.schemas.events import PromptsProgress, WarmupProgress, WindowFinished, WindowStarted
from llenergymeasure.schemas.job import RunContext

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def local_runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLEM_RUNNER_PYTORCH", "local")
    (tmp_path / "empty-user-config.yaml").write_text("{}\n")  # LLEM_CONFIG must name an existing file
    monkeypatch.setenv("LLEM_CONFIG", str(tmp_path / "empty-user-config.yaml"))


def small(model: Path, **overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "model": str(model),
        "dataset": str(SHARED / "aienergyscore.jsonl"),
        "n": 6,
        "max_input_tokens": 48,
        "max_output_tokens": 12,
        "warmup": {"n_warmup": 2, "thermal_floor_seconds": 0.5},
        "baseline": {"duration_seconds": 0.5},
        "pytorch": {"batch_size": 2},
    }
    config.update(overrides)
    return config


def leftover_run_dirs(config_hash: str) -> list[Path]:
    """Run directories of this config still under the temp dir (other processes' temp dirs are ignored)."""
    return list(Path(tempfile.gettempdir()).glob(f"llem-*/*_pytorch_{config_hash[:8]}"))


def test_run_experiment_on_cpu_returns_a_real_result_and_leaves_nothing(tiny_model_dir: Path) -> None:  # noqa: F811
    events: list[object] = []
    result = run_experiment(small(tiny_model_dir), on_event=events.append)

    assert isinstance(result, ExperimentResult)
    assert (result.device, result.effective_precision, result.device_ids) == ("cpu", "fp32", [])
    assert result.n_prompts == 6
    assert 0 < result.output_tokens <= 6 * 12
    assert 6 <= result.input_tokens <= 6 * 48
    assert result.window_duration_s > 0
    assert result.output_tokens_per_s == pytest.approx(result.output_tokens / result.window_duration_s)
    assert result.energy_total_j is None  # never a silent 0
    assert result.energy_per_output_token_j is None
    assert result.energy.method == "unavailable"
    assert "no_energy_meter" in [w.code for w in result.measurement_warnings]
    assert any("fp32" in note for note in result.reproducibility_notes)
    assert result.latency is not None
    assert result.latency.count == 6
    assert result.warmup is not None
    assert result.warmup.iterations_completed >= 2
    assert result.flops is not None
    assert result.flops.non_embedding_params == 82_240
    assert result.environment_snapshot.transformers_version
    assert result.timeseries_file is None

    kinds = {type(e) for e in events}
    assert {WarmupProgress, WindowStarted, PromptsProgress, WindowFinished} <= kinds
    assert leftover_run_dirs(result.measurement_config_hash) == []  # the temporary run directory is gone


def test_output_dir_keeps_result_and_log(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "results"
    logs: list[str] = []
    result = run_experiment(
        small(tiny_model_dir, dataset="aienergyscore", n=4),
        output_dir=out,
        context=RunContext(dataset_cache_dir=str(SHARED), heartbeat_seconds=1.0),
        on_log=logs.append,
    )
    (run_dir,) = out.iterdir()
    assert run_dir.name.endswith(f"_pytorch_{result.measurement_config_hash[:8]}")
    assert ExperimentResult.model_validate_json((run_dir / "result.json").read_text()) == result
    assert (run_dir / "harness.log").is_file()
    assert logs  # log lines reached the callback
    assert not (run_dir / "error.json").exists()


def test_a_failing_experiment_raises_with_the_harness_facts(tmp_path: Path) -> None:
    # the host pre-flight catches a missing model before any run ...
    with pytest.raises(PreFlightError, match="pre-flight"):
        run_experiment({"model": str(tmp_path / "missing-model"), "n": 2}, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # ... and without it, the harness's own pre-flight reports it from inside the run
    with pytest.raises(ExperimentError) as err:
        run_experiment(
            {"model": str(tmp_path / "missing-model"), "n": 2}, output_dir=tmp_path / "out", skip_preflight=True
        )
    f = err.value.failure
    assert (f.phase, f.error_type, f.exit_code) == ("preflight", "PreFlightError", 3)
    assert "missing-model" in err.value.message
    (run_dir,) = (tmp_path / "out").iterdir()
    assert (run_dir / "error.json").is_file()


def test_wall_clock_timeout_stops_the_harness_which_writes_error_json(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    t0 = time.monotonic()
    with pytest.raises(ExperimentError) as err:
        run_experiment(
            small(tiny_model_dir, warmup={"n_warmup": 1, "thermal_floor_seconds": 600}),
            output_dir=tmp_path / "out",
            wall_timeout_s=25.0,
        )
    assert time.monotonic() - t0 < 60
    f = err.value.failure
    assert f.timed_out == "wall_clock"
    (run_dir,) = (tmp_path / "out").iterdir()
    error = (run_dir / "error.json").read_text()
    assert '"type": "Terminated"' in error  # SIGTERM reached the harness, which unwound and reported
