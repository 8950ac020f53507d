"""`llem run` end to end on the real Docker engine: 3 experiments × 2 cycles of a tiny random-weight model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from docker_helpers import (
    SECRET_CANARY,
    files_containing,
    llem_command,
    llem_env,
    only_study_dir,
    read_manifest,
    study_containers,
    write_study_yaml,
)

from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study_result import StudyResult

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_llem_run_study_end_to_end(cpu_image: str, tiny_model: Path, dataset_cache: Path, tmp_path: Path) -> None:
    study = {
        "name": "e2e batch sweep",
        "model": str(tiny_model),
        "backend": "pytorch",
        "precision": "fp32",
        "n": 3,
        "max_input_tokens": 16,
        "max_output_tokens": 4,
        # dataset: the built-in aienergyscore, served read-only from the prepared host cache (no network)
        "warmup": {"n_warmup": 1, "thermal_floor_seconds": 0},
        "baseline": {"duration_seconds": 0.5},
        "sweep": {"pytorch.batch_size": [1, 2, 3]},
        "execution": {"n_cycles": 2, "cycle_order": "interleaved", "config_gap_seconds": 1, "cycle_gap_seconds": 1},
    }
    config = write_study_yaml(tmp_path / "study.yaml", study)
    output = tmp_path / "results"
    env = llem_env(tmp_path, HF_TOKEN=SECRET_CANARY, XDG_CACHE_HOME=str(dataset_cache))
    proc = subprocess.run(
        [*llem_command(), "run", str(config), "-o", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"llem run failed ({proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    )

    study_dir = only_study_dir(output)
    assert study_dir.name.startswith("e2e-batch-sweep_")
    manifest = read_manifest(study_dir)
    assert manifest.status == "completed"
    assert len(manifest.entries) == 6
    assert all(e.status == "completed" and e.attempts == 1 for e in manifest.entries)
    assert [(e.index, e.cycle) for e in manifest.entries] == [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)]

    seen: set[tuple[str, int]] = set()
    for entry in manifest.entries:
        run_dir = study_dir / str(entry.run_dir)
        result = ExperimentResult.model_validate_json((run_dir / "result.json").read_text())
        assert (result.experiment_id, result.cycle, result.study_id) == (
            entry.experiment_id,
            entry.cycle,
            study_dir.name,
        )
        assert result.n_prompts == 3
        assert result.output_tokens > 0
        assert result.output_tokens_per_s == pytest.approx(result.output_tokens / result.window_duration_s)
        assert result.energy_total_j is None  # no GPU here: unavailable, never a silent zero
        assert result.config.dataset == "aienergyscore"
        assert result.environment_snapshot.image == cpu_image
        assert (run_dir / "harness.log").is_file()
        seen.add((result.experiment_id, result.cycle))
    assert len(seen) == 6

    summary = StudyResult.model_validate_json((study_dir / "study_result.json").read_text())
    assert (summary.status, summary.runs_total, summary.runs_completed, summary.runs_failed) == ("completed", 6, 6, 0)
    assert summary.runner == "docker"
    assert len(summary.summary.configurations) == 3
    assert all(
        s.cycles_completed == 2 and s.output_tokens_per_s.std is not None for s in summary.summary.configurations
    )
    assert (study_dir / "study.yaml").is_file()

    # the summary table is on stdout, progress on stderr
    assert "J/output token" in proc.stdout
    assert "output tokens/s" in proc.stdout
    assert "6/6 runs completed" in proc.stdout
    assert "[1/6] " in proc.stderr and "[6/6] " in proc.stderr  # plain progress lines: stderr is a pipe here
    assert "J/output token" not in proc.stderr

    # nothing left running, every file owned by the invoking user, no secret anywhere
    assert study_containers(study_dir.name) == []
    for path in [study_dir, *study_dir.rglob("*")]:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), path
    assert files_containing(output, SECRET_CANARY) == []
