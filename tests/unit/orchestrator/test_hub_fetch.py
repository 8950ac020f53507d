"""Host pre-flight fetches hub models with the real huggingface_hub client from a local hub-compatible server."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_factories import tiny_config
from orch_fake_docker import FakeDockerClient

from fixtures.hub_server import HubRepo, HubServer, HubState
from llenergymeasure.errors import PreFlightError
from llenergymeasure.orchestrator.hub_fetch import HubFetchError, fetch_with_hub
from llenergymeasure.orchestrator.preflight import HostServices, PreflightPlan, run_preflight
from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.orchestrator.runners.inputs import hub_snapshot
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION

COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGE = "img:1"


@pytest.fixture
def hub(tmp_path: Path) -> HubState:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text('{"model_type": "llama"}')
    (repo / "model.safetensors").write_bytes(b"\0" * 1000)
    return HubState(repos={"org/tiny": HubRepo(repo, COMMIT), "org/gated": HubRepo(repo, COMMIT, gated=True)})


def _preflight(tmp_path: Path, model: str, env: dict[str, str]) -> None:
    client = FakeDockerClient()
    client.add_image(IMAGE, {PROTOCOL_LABEL: str(PROTOCOL_VERSION)})
    plan = PreflightPlan(
        experiments=[tiny_config(model=model)], runner_kinds={"pytorch": "docker"}, images={"pytorch": IMAGE},
        host_device_ids=[[]], output_dir=tmp_path / "results", hf_cache_dir=tmp_path / "hub-cache", cwd=tmp_path,
    )  # fmt: skip
    run_preflight(plan, HostServices(gpus=NoGpus(), docker_client=client, env=env))


def test_first_run_downloads_once_then_the_cache_serves_with_the_hub_gone(tmp_path: Path, hub: HubState) -> None:
    with HubServer(hub) as url:
        _preflight(tmp_path, "org/tiny", {"HF_ENDPOINT": url})
        downloads = [r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]
        assert len(downloads) == 2  # config.json and model.safetensors, once each
        snapshot = hub_snapshot(tmp_path / "hub-cache", "org/tiny")
        assert snapshot is not None
        assert snapshot.name == COMMIT
        assert (snapshot / "model.safetensors").read_bytes() == b"\0" * 1000
        _preflight(tmp_path, "org/tiny", {"HF_ENDPOINT": url})  # already cached: no request at all
        assert len(hub.requests) == 4 + 2  # revision + tree + 2 HEAD + 2 GET from the first run only
    # the server is gone: pre-flight finds the snapshot and asks nothing
    _preflight(tmp_path, "org/tiny", {"HF_ENDPOINT": url})


def test_a_503_then_success_is_retried(tmp_path: Path, hub: HubState) -> None:
    hub.fail_503["/api/models/org/tiny"] = 2
    waits: list[float] = []
    with HubServer(hub) as url:
        path = fetch_with_hub("org/tiny", tmp_path / "c", endpoint=url, sleep=waits.append)
    assert (path / "config.json").is_file()
    assert [code for _, _, code in hub.requests[:2]] == [503, 503]
    assert len(waits) == 2  # two retries, with backoff


def test_wrong_revision_and_gated_repo_are_clear_errors(tmp_path: Path, hub: HubState) -> None:
    with HubServer(hub) as url:
        with pytest.raises(HubFetchError) as bad_rev:
            fetch_with_hub("org/tiny", tmp_path / "c", revision="v9", endpoint=url, sleep=lambda _: None)
        assert bad_rev.value.message == "revision v9 of org/tiny does not exist on the hub"
        assert "existing branch, tag or commit of org/tiny" in bad_rev.value.fix

        with pytest.raises(PreFlightError) as gated:
            _preflight(tmp_path, "org/gated", {"HF_ENDPOINT": url})
        (failure,) = gated.value.failures
        assert failure.message.startswith("org/gated (revision main) is gated")
        assert "HF_TOKEN" in (failure.fix or "")
        # with a token the same repo downloads (the server checks the Authorization header)
        _preflight(tmp_path, "org/gated", {"HF_ENDPOINT": url, "HF_TOKEN": "hf_test"})
        with pytest.raises(HubFetchError, match="not on the hub"):
            fetch_with_hub("org/absent", tmp_path / "c", endpoint=url, sleep=lambda _: None)
