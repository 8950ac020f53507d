"""The harness loads exactly the snapshot `model_revision` names from a read-only, offline HF cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from llenergymeasure.harness.weights import snapshot_commit

PINNED = "1234567890abcdef1234567890abcdef12345678"
MAIN = "fedcba0987654321fedcba0987654321fedcba09"

LOAD = """
from llenergymeasure.harness.backends import create_backend
from llenergymeasure.harness.weights import locate_model, snapshot_commit
from llenergymeasure.schemas.config.experiment import ExperimentConfig

cfg = ExperimentConfig(model="org/tiny", model_revision="v1", precision="fp32")
backend = create_backend(cfg, [])
backend.load()
print(snapshot_commit(locate_model(cfg.model, cfg.model_revision)[0]))
print(snapshot_commit(locate_model(cfg.model)[0]))
"""


def _hub_cache(root: Path, tiny_model_dir: Path) -> Path:
    folder = root / "models--org--tiny"
    shutil.copytree(tiny_model_dir, folder / "snapshots" / PINNED)
    (folder / "snapshots" / MAIN).mkdir(parents=True)
    (folder / "snapshots" / MAIN / "config.json").write_text("{}")  # main has no weights: loading it would fail
    (folder / "refs").mkdir()
    (folder / "refs" / "v1").write_text(PINNED)
    (folder / "refs" / "main").write_text(MAIN)
    return root


def test_the_pinned_revision_loads_offline_and_its_commit_is_what_the_result_records(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    cache = _hub_cache(tmp_path / "hub", tiny_model_dir)
    os.chmod(cache, 0o555)  # read-only, as the container's mount
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home")}
    try:
        done = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, timeout=300)
    finally:
        os.chmod(cache, 0o755)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [PINNED, MAIN]


def test_snapshot_commit_is_only_a_hub_cache_snapshot_name(tmp_path: Path) -> None:
    assert snapshot_commit(tmp_path / "models--o--m" / "snapshots" / PINNED) == PINNED
    assert snapshot_commit(tmp_path / "snapshots" / "not-a-commit") is None
    assert snapshot_commit(tmp_path / "my-model") is None
    assert snapshot_commit(None) is None
