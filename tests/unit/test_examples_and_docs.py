"""Every example YAML validates and previews; generated docs and schemas match the models."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from llenergymeasure.orchestrator import docgen
from llenergymeasure.orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


def _with_local_inputs(path: Path, tmp_path: Path) -> Path:
    """`path` itself, or a copy next to stand-ins for the local model directories it names that do not
    exist yet (``make tiny-model`` writes build/tiny-llama): a dry run checks that a local model exists."""
    text = path.read_text()
    missing = [m for m in re.findall(r"^model: (\.\S+)", text, re.M) if not (path.parent / m / "config.json").is_file()]
    if not missing:
        return path
    copy = tmp_path / "examples" / path.name
    shutil.copytree(path.parent, copy.parent)
    for model in missing:
        (copy.parent / model).mkdir(parents=True)
        (copy.parent / model / "config.json").write_text("{}")
    return copy


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_dry_runs(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_with_local_inputs(path, tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\d+ experiments? [×x] \d+ cycles? = \d+ runs?", out, re.M)


def test_generated_reference_and_schemas_are_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert docgen.main(["--check"]) == 0, "run `make docs` and commit the result"


def test_every_experiment_field_is_documented() -> None:
    text = (ROOT / "docs" / "reference" / "config.md").read_text()
    from llenergymeasure.schemas.config.experiment import ExperimentConfig

    for name, field in ExperimentConfig.model_fields.items():
        assert f"| `{name}` |" in text
        assert field.description, f"{name} has no description"
