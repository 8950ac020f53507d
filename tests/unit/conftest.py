"""Unit tests run against a prepared dataset cache: the host pre-flight finds the built-in dataset at the pin.

``XDG_CACHE_HOME`` points at a temporary user cache whose ``llenergymeasure/datasets/aienergyscore.jsonl``
carries the pinned provenance, so no unit test reads the developer's own cache or reaches for the hub.
Tests of the missing or stale cache point the dataset cache elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.datasets import write_prepared_dataset


@pytest.fixture(autouse=True)
def prepared_dataset_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("xdg-cache")
    write_prepared_dataset(root / "llenergymeasure" / "datasets", [f"prompt number {i}" for i in range(50)])
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    return root / "llenergymeasure" / "datasets"
