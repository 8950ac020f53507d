"""Host truth: a hub model (at a pinned revision) and the built-in dataset fetched once on the host by the real
client, then run offline in the container."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from docker_helpers import tiny_experiment

from fixtures.hub_server import HubRepo, HubServer, HubState
from llenergymeasure.orchestrator.api import run_study
from llenergymeasure.schemas.datasets import (
    AIENERGYSCORE_CACHE_FILE,
    AIENERGYSCORE_FILE,
    AIENERGYSCORE_REPO,
    AIENERGYSCORE_REVISION,
)
from llenergymeasure.schemas.results import ExperimentResult

pytestmark = pytest.mark.docker

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def test_hub_model_downloads_once_and_runs_again_with_the_hub_gone(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = HubState(repos={"org/tiny-llama": HubRepo(tiny_model, COMMIT)})
    cache = tmp_path / "hf-cache"
    cache.mkdir(mode=0o755)
    experiment = tiny_experiment(Path("org/tiny-llama"))
    experiment["model"] = "org/tiny-llama"
    (tmp_path / "none.yaml").write_text("")  # an empty user config: the defaults
    with HubServer(hub) as url:
        env = {"HF_ENDPOINT": url, "HF_HUB_CACHE": str(cache), "LLEM_IMAGE_PYTORCH": cpu_image,
               "LLEM_CONFIG": str(tmp_path / "none.yaml")}  # fmt: skip
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("LLEM_RUNNER_PYTORCH", raising=False)
        hub.fail_503["/api/models/org/tiny-llama/revision"] = 1  # the first answer is a 503: retried
        first = run_study(experiment, output_dir=tmp_path / "r1", no_gaps=True, quiet=True, env=env)
    assert first.runs_completed == first.runs_total > 0
    downloads = [p for m, p, code in hub.requests if m == "GET" and "/resolve/" in p and code == 200]
    files = sorted(p.name for p in tiny_model.iterdir() if p.is_file())
    assert len(downloads) == len(files)  # every file once, on the host
    assert hub.requests[0][2] == 503
    # the server is gone: pre-flight finds the snapshot, the container reads the read-only mount offline
    second = run_study(experiment, output_dir=tmp_path / "r2", no_gaps=True, quiet=True, env=env)
    assert second.runs_completed == second.runs_total > 0


def test_aienergyscore_and_a_pinned_model_revision_are_fetched_once_on_the_host_then_run_with_the_hub_gone(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_repo = tmp_path / "dataset-repo"
    (dataset_repo / AIENERGYSCORE_FILE).parent.mkdir(parents=True)
    prompts = [f"prompt {i}: the energy of one output token, measured" for i in range(12)]
    pq.write_table(pa.table({"text": prompts}), dataset_repo / AIENERGYSCORE_FILE)
    hub = HubState(
        repos={"org/tiny-llama": HubRepo(tiny_model, COMMIT)},
        datasets={AIENERGYSCORE_REPO: HubRepo(dataset_repo, AIENERGYSCORE_REVISION)},
    )
    cache, user_cache = tmp_path / "hf-cache", tmp_path / "user-cache"
    cache.mkdir(mode=0o755)
    experiment = tiny_experiment(Path("org/tiny-llama"), n=4, dataset="aienergyscore")
    experiment.update({"model": "org/tiny-llama", "model_revision": COMMIT})
    (tmp_path / "none.yaml").write_text("")
    with HubServer(hub) as url:
        env = {"HF_ENDPOINT": url, "HF_HUB_CACHE": str(cache), "XDG_CACHE_HOME": str(user_cache),
               "LLEM_IMAGE_PYTORCH": cpu_image, "LLEM_CONFIG": str(tmp_path / "none.yaml")}  # fmt: skip
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("LLEM_RUNNER_PYTORCH", raising=False)
        first = run_study(experiment, output_dir=tmp_path / "r1", no_gaps=True, quiet=True, env=env)
    assert first.runs_completed == first.runs_total > 0
    parquet_gets = [p for m, p, code in hub.requests if m == "GET" and p.startswith("/datasets/") and code == 200]
    assert parquet_gets == [f"/datasets/{AIENERGYSCORE_REPO}/resolve/{AIENERGYSCORE_REVISION}/{AIENERGYSCORE_FILE}"]
    prepared = user_cache / "llenergymeasure" / "datasets" / AIENERGYSCORE_CACHE_FILE
    provenance = json.loads(prepared.read_text(encoding="utf-8").splitlines()[0])
    assert (provenance["_repo"], provenance["_revision"]) == (AIENERGYSCORE_REPO, AIENERGYSCORE_REVISION)
    # the server is gone and the container has no network: the read-only dataset mount and HF cache serve it
    second = run_study(experiment, output_dir=tmp_path / "r2", no_gaps=True, quiet=True, env=env)
    assert second.runs_completed == second.runs_total > 0
    result_files = sorted((tmp_path / "r1").glob("*/*/result.json")) + sorted((tmp_path / "r2").glob("*/*/result.json"))
    assert len(result_files) == first.runs_total + second.runs_total
    for result_file in result_files:
        result = ExperimentResult.model_validate_json(result_file.read_text())
        assert result.config.dataset == "aienergyscore"
        assert result.model_commit == COMMIT  # the snapshot the harness loaded
        assert result.n_prompts == 4
