"""Unit tests run against a prepared dataset cache: the host pre-flight finds the built-in dataset at the pin.

``XDG_CACHE_HOME`` points at a temporary user cache whose ``llenergymeasure/datasets/aienergyscore.jsonl``
carries the pinned provenance, so no unit test reads the developer's own cache or reaches for the hub.
Tests of the missing or stale cache point the dataset cache elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.schemas.datasets import (
    AIENERGYSCORE_CACHE_FILE,
    AIENERGYSCORE_FILE,
    AIENERGYSCORE_REPO,
    AIENERGYSCORE_REVISION,
    provenance_record,
)


def write_prepared_dataset(cache_dir: Path, prompts: list[str]) -> Path:
    """A cache file as the host pre-flight writes it, at the pinned revision."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    record = provenance_record(AIENERGYSCORE_REPO, AIENERGYSCORE_REVISION, AIENERGYSCORE_FILE, "0" * 64)
    lines = [json.dumps(record), *(json.dumps({"prompt": p}) for p in prompts)]
    path = cache_dir / AIENERGYSCORE_CACHE_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def prepared_dataset_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("xdg-cache")
    write_prepared_dataset(root / "llenergymeasure" / "datasets", [f"prompt number {i}" for i in range(50)])
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    return root / "llenergymeasure" / "datasets"
