"""Host truth: a hub model fetched once on the host by the real client, then run offline in the container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker_helpers import tiny_experiment

from fixtures.hub_server import HubRepo, HubServer, HubState
from llenergymeasure.orchestrator.api import run_study

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
