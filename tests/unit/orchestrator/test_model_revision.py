"""`model_revision`: validated in the config, fetched at that revision on the host, mounted only when cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_factories import tiny_config
from orch_fake_docker import FakeDockerClient
from pydantic import ValidationError

from fixtures.hub_server import HubRepo, HubServer, HubState
from llenergymeasure.errors import PreFlightError
from llenergymeasure.orchestrator.cli import main
from llenergymeasure.orchestrator.preflight import HostServices, PreflightPlan, run_preflight
from llenergymeasure.orchestrator.runners.docker_spec import CONTAINER_HF_CACHE, DockerOptions, plan_mounts
from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.orchestrator.runners.inputs import hub_snapshot
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION
from llenergymeasure.schemas.sweep import resolve_study

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
IMAGE = "img:1"


def test_model_revision_with_a_local_directory_exits_2_naming_the_field_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("model: ./my-model\nmodel_revision: v1\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "model_revision" in err
    assert "fix:" in err and "remove model_revision" in err


@pytest.mark.parametrize("bad", ["", "v 1", " main", "v1\n"])
def test_model_revision_must_be_a_ref_name(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        ExperimentConfig(model="org/tiny", model_revision=bad)
    assert info.value.errors()[0]["loc"] == ("model_revision",)


def test_model_revision_is_sweepable() -> None:
    study = resolve_study({"model": "org/tiny", "sweep": {"model_revision": ["main", COMMIT]}})
    assert [e.model_revision for e in study.experiments] == ["main", COMMIT]
    assert len({e.measurement_config_hash() for e in study.experiments}) == 2


@pytest.fixture
def hub(tmp_path: Path) -> HubState:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text('{"model_type": "llama"}')
    return HubState(repos={"org/tiny": HubRepo(repo, COMMIT)})


def _preflight(tmp_path: Path, config: ExperimentConfig, env: dict[str, str]) -> None:
    client = FakeDockerClient()
    client.add_image(IMAGE, {PROTOCOL_LABEL: str(PROTOCOL_VERSION)})
    plan = PreflightPlan(
        experiments=[config], runner_kinds={"pytorch": "docker"}, images={"pytorch": IMAGE}, host_device_ids=[[]],
        output_dir=tmp_path / "results", hf_cache_dir=tmp_path / "hub-cache", cwd=tmp_path,
    )  # fmt: skip
    run_preflight(plan, HostServices(gpus=NoGpus(), docker_client=client, env=env))


def test_preflight_fetches_the_model_at_its_revision_once(tmp_path: Path, hub: HubState) -> None:
    config = tiny_config(model="org/tiny", model_revision=COMMIT)
    with HubServer(hub) as url:
        _preflight(tmp_path, config, {"HF_ENDPOINT": url})
        asked = [p for m, p, _ in hub.requests if m == "GET" and p.startswith("/api/models/")]
        assert asked and all(COMMIT in p for p in asked)
        snapshot = hub_snapshot(tmp_path / "hub-cache", "org/tiny", COMMIT)
        assert snapshot is not None and snapshot.name == COMMIT
        before = len(hub.requests)
        _preflight(tmp_path, config, {"HF_ENDPOINT": url})
        assert len(hub.requests) == before  # that revision is cached: nothing asked


def test_a_wrong_model_revision_is_a_preflight_error_naming_repo_revision_and_fix(
    tmp_path: Path, hub: HubState
) -> None:
    with HubServer(hub) as url, pytest.raises(PreFlightError) as info:
        _preflight(tmp_path, tiny_config(model="org/tiny", model_revision="v9"), {"HF_ENDPOINT": url})
    (failure,) = info.value.failures
    assert failure.check == "model"
    assert failure.message.startswith("revision v9 of org/tiny does not exist on the hub")
    assert "existing branch, tag or commit of org/tiny" in (failure.fix or "")


def test_offline_without_the_revision_cached_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(PreFlightError) as info:
        _preflight(tmp_path, tiny_config(model="org/tiny", model_revision="v2"), {"HF_HUB_OFFLINE": "1"})
    (failure,) = info.value.failures
    assert "org/tiny at revision v2" in failure.message
    assert "--revision v2" in (failure.fix or "")


def test_a_bare_model_name_that_is_a_local_directory_with_a_revision_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mymodel").mkdir()
    (tmp_path / "mymodel" / "config.json").write_text("{}")
    with pytest.raises(PreFlightError) as info:
        _preflight(tmp_path, tiny_config(model="mymodel", model_revision="v1"), {})
    (failure,) = info.value.failures
    assert "model_revision v1" in failure.message and "local directory" in failure.message
    assert "remove model_revision" in (failure.fix or "")


def _snapshot(cache: Path, commit: str, ref: str) -> None:
    folder = cache / "models--org--tiny"
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "config.json").write_text("{}")
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / ref).write_text(commit)


def test_the_container_gets_the_cache_offline_only_when_the_revision_is_cached(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _snapshot(cache, "0" * 40, "main")
    options = DockerOptions(hf_cache_dir=cache)
    main_only = plan_mounts(tiny_config(model="org/tiny"), tmp_path / "run", options)
    assert (main_only.needs_network, main_only.hub_offline) == (False, True)
    assert any(v["bind"] == CONTAINER_HF_CACHE for v in main_only.volumes.values())
    pinned = plan_mounts(tiny_config(model="org/tiny", model_revision="v1"), tmp_path / "run", options)
    assert pinned.needs_network and not pinned.hub_offline  # v1 is not cached: only a skipped pre-flight gets here
    _snapshot(cache, COMMIT, "v1")
    pinned = plan_mounts(tiny_config(model="org/tiny", model_revision="v1"), tmp_path / "run", options)
    assert (pinned.needs_network, pinned.hub_offline) == (False, True)
