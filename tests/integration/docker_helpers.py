"""Helpers shared by the Docker integration tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from llenergymeasure._version import __version__

SECRET_CANARY = "hf_llemcanary_5f1c9a7e2b4d4c0f9e8a"


def tiny_experiment(model: Path, **overrides: Any) -> dict[str, Any]:
    """The smallest real experiment: a few synthetic prompts, one warmup prompt, no thermal floor."""
    exp: dict[str, Any] = {
        "model": str(model),
        "backend": "pytorch",
        "precision": "fp32",
        "n": 3,
        "max_output_tokens": 4,
        "dataset": {"synthetic": True, "input_tokens": 8, "output_tokens": 4},
        "warmup": {"n_warmup": 1, "thermal_floor_seconds": 0},
        "baseline": {"duration_seconds": 0.5},
    }
    exp.update(overrides)
    return exp


def study_containers(study_id: str) -> list[str]:
    """`docker ps -a --filter label=llem.study_id=<id>`, as the issue states the check."""
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=llem.study_id={study_id}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle`."""
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


# IMAGE_CPU (the Makefile variable, read from the environment) lets two checkouts on one engine
# keep separate CPU images.
CPU_IMAGE = os.environ.get("IMAGE_CPU") or f"llenergymeasure/pytorch:{__version__}-cpu"


def llem_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a `llem` subprocess: an empty user config, no stray runner/image overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLEM_RUNNER_", "LLEM_IMAGE_", "LLEM_OUTPUT_DIR"))}
    user_config = tmp_path / "empty-user-config.yaml"  # LLEM_CONFIG must name a file that exists
    user_config.write_text("{}\n")
    env["LLEM_CONFIG"] = str(user_config)
    env["PYTHONUNBUFFERED"] = "1"
    if os.environ.get("IMAGE_CPU"):  # a checkout-specific CPU image (see CPU_IMAGE)
        env["LLEM_IMAGE_PYTORCH"] = os.environ["IMAGE_CPU"]
    env.update(extra)
    return env


def llem_command() -> list[str]:
    """The `llem` entry point of this environment."""
    import sys

    script = Path(sys.executable).parent / "llem"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from llenergymeasure.orchestrator.cli import main; sys.exit(main())"]


def write_study_yaml(path: Path, study: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def only_study_dir(output: Path) -> Path:
    dirs = [p for p in output.iterdir() if p.is_dir()]
    assert len(dirs) == 1, f"expected one study directory in {output}, found {dirs}"
    return dirs[0]


def read_manifest(study_dir: Path) -> Any:
    from llenergymeasure.schemas.manifest import StudyManifest

    return StudyManifest.model_validate_json((study_dir / "manifest.json").read_text())


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> Any:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def stop_if_running(proc: subprocess.Popen[str]) -> None:
    """Kill and reap `proc` when it is still running: no llem process outlives the test that started it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
