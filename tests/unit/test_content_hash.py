"""measurement_config_hash counts local inputs by content: the same study in two directories → same hashes."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import yaml

from llenergymeasure.orchestrator.loader import load_study_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.identity import SMALL_FILE_BYTES, content_identity


def _project(root: Path) -> Path:
    """A study dir with a local model (config + a 20 MiB 'weights' file), a dataset and a study YAML."""
    model = root / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"hidden_size": 64}')
    (model / "model.safetensors").write_bytes(bytes(range(256)) * (20 * 1024 * 4))  # 20 MiB, > SMALL_FILE_BYTES
    (root / "prompts.jsonl").write_text('{"prompt": "hello"}\n{"prompt": "world"}\n')
    study = {
        "name": "paths",
        "model": "./models/tiny",
        "dataset": "prompts.jsonl",
        "precision": "fp32",
        "sweep": {"pytorch.batch_size": [1, 2]},
    }
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    return root / "study.yaml"


def _hashes(path: Path) -> list[str]:
    return [e.measurement_config_hash() for e in load_study_config(path).experiments]


def test_same_study_in_two_directories_has_the_same_hashes(tmp_path: Path) -> None:
    a = _project(tmp_path / "machine-a" / "work")
    b_root = tmp_path / "elsewhere" / "copy"
    shutil.copytree(a.parent, b_root)
    b = b_root / "study.yaml"
    study_a, study_b = load_study_config(a), load_study_config(b)
    assert study_a.experiments[0].model != study_b.experiments[0].model  # different absolute paths ...
    assert _hashes(a) == _hashes(b)  # ... same measurement
    assert study_a.study_design_hash == study_b.study_design_hash
    assert len(set(_hashes(a))) == 2  # the swept batch size still distinguishes the experiments


def test_different_content_gives_a_different_hash(tmp_path: Path) -> None:
    a = _project(tmp_path / "a")
    before = _hashes(a)
    weights = a.parent / "models" / "tiny" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[10] ^= 0xFF  # within the first 4 MiB that the sampled digest reads
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(1, 1))  # a new mtime, as any real rewrite has
    assert _hashes(a) != before
    (a.parent / "prompts.jsonl").write_text('{"prompt": "other"}\n')
    assert len(set(_hashes(a)) & set(before)) == 0


def test_identities_by_hand(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_bytes(b'{"prompt": "x"}\n')
    assert content_identity(str(f)) == "file-sha256:" + hashlib.sha256(b'{"prompt": "x"}\n').hexdigest()[:32]
    assert SMALL_FILE_BYTES == 16 * 1024 * 1024
    assert content_identity("org/model") == "org/model"  # a hub id is its own identity
    assert content_identity(str(tmp_path / "missing")) == str(tmp_path / "missing")


def test_hub_models_hash_as_before() -> None:
    # no local input: the hash is the plain SHA-256 of the canonical dump, unchanged by content identities;
    # an unset model_revision is left out, so hashes recorded before the field existed still match
    cfg = ExperimentConfig.model_validate({"model": "org/model", "precision": "fp32"})
    expected = hashlib.sha256(cfg.model_dump_json(exclude={"gpus", "model_revision"}).encode()).hexdigest()[:16]
    assert cfg.measurement_config_hash() == expected


def test_a_model_revision_changes_the_hash_and_an_unset_one_does_not() -> None:
    plain = ExperimentConfig.model_validate({"model": "org/model"})
    pinned = ExperimentConfig.model_validate({"model": "org/model", "model_revision": "v1"})
    other = ExperimentConfig.model_validate({"model": "org/model", "model_revision": "v2"})
    assert (
        len({plain.measurement_config_hash(), pinned.measurement_config_hash(), other.measurement_config_hash()}) == 3
    )
    expected = hashlib.sha256(pinned.model_dump_json(exclude={"gpus"}).encode()).hexdigest()[:16]
    assert pinned.measurement_config_hash() == expected
