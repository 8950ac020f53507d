"""The built-in dataset is prepared once on the host with the real huggingface_hub client from a local hub server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from orch_factories import tiny_config
from orch_fake_docker import FakeDockerClient

from fixtures.datasets import write_prepared_dataset
from fixtures.hub_server import HubRepo, HubServer, HubState
from llenergymeasure.errors import PreFlightError
from llenergymeasure.harness.datasets import load_aienergyscore
from llenergymeasure.orchestrator.dataset_fetch import DatasetPin, is_prepared, prepare_dataset
from llenergymeasure.orchestrator.hub_fetch import HubFetchError
from llenergymeasure.orchestrator.preflight import HostServices, PreflightPlan, run_preflight
from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.schemas.datasets import (
    AIENERGYSCORE_CACHE_FILE,
    AIENERGYSCORE_FILE,
    AIENERGYSCORE_REPO,
    AIENERGYSCORE_REVISION,
)
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION

PROMPTS = ["first prompt", "second prompt, with a comma", "third: ünïcode"]
NEW_COMMIT = "1111111111111111111111111111111111111111"
IMAGE = "img:1"


def _dataset_repo(folder: Path, prompts: list[str], commit: str, gated: bool = False) -> HubRepo:
    parquet = folder / AIENERGYSCORE_FILE
    parquet.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": prompts}), parquet)
    return HubRepo(folder, commit, gated=gated)


@pytest.fixture
def hub(tmp_path: Path) -> HubState:
    return HubState(datasets={AIENERGYSCORE_REPO: _dataset_repo(tmp_path / "ds", PROMPTS, AIENERGYSCORE_REVISION)})


def _downloads(hub: HubState) -> list[str]:
    return [p for m, p, code in hub.requests if m == "GET" and "/resolve/" in p and code == 200]


def test_the_pinned_parquet_is_converted_with_its_provenance_and_fetched_once(tmp_path: Path, hub: HubState) -> None:
    cache = tmp_path / "datasets"
    with HubServer(hub) as url:
        path = prepare_dataset(cache, tmp_path / "hf", endpoint=url, sleep=lambda _: None)
        assert path == cache / AIENERGYSCORE_CACHE_FILE
        (download,) = _downloads(hub)
        assert download == f"/datasets/{AIENERGYSCORE_REPO}/resolve/{AIENERGYSCORE_REVISION}/{AIENERGYSCORE_FILE}"
        before = len(hub.requests)
        prepare_dataset(cache, tmp_path / "hf", endpoint=url, sleep=lambda _: None)
        assert len(hub.requests) == before  # provenance matches the pin: no request at all
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    parquet_bytes = (tmp_path / "ds" / AIENERGYSCORE_FILE).read_bytes()
    assert lines[0]["_repo"] == AIENERGYSCORE_REPO
    assert lines[0]["_revision"] == AIENERGYSCORE_REVISION
    assert lines[0]["_file"] == AIENERGYSCORE_FILE
    assert lines[0]["_sha256"] == hashlib.sha256(parquet_bytes).hexdigest()
    assert lines[1:] == [{"prompt": p} for p in PROMPTS]
    assert not list(cache.glob("*.tmp"))  # written atomically: no temp file left
    # the harness reads exactly this file, at the pinned revision, without a note
    source = load_aienergyscore(cache, fetch=lambda: pytest.fail("the harness must not fetch"))
    assert (source.texts, source.revision, source.notes) == (PROMPTS, AIENERGYSCORE_REVISION, [])


def test_a_changed_pin_downloads_again(tmp_path: Path, hub: HubState) -> None:
    cache = tmp_path / "datasets"
    with HubServer(hub) as url:
        prepare_dataset(cache, tmp_path / "hf", endpoint=url, sleep=lambda _: None)
    new_prompts = ["a prompt of the new revision"]
    hub.datasets[AIENERGYSCORE_REPO] = _dataset_repo(tmp_path / "ds2", new_prompts, NEW_COMMIT)
    pin = DatasetPin(revision=NEW_COMMIT)
    assert not is_prepared(cache, pin)
    with HubServer(hub) as url:
        prepare_dataset(cache, tmp_path / "hf", pin, endpoint=url, sleep=lambda _: None)
    assert is_prepared(cache, pin) and not is_prepared(cache)
    lines = (cache / AIENERGYSCORE_CACHE_FILE).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["_revision"] == NEW_COMMIT
    assert [json.loads(line) for line in lines[1:]] == [{"prompt": p} for p in new_prompts]


def test_a_cache_file_of_the_pin_in_the_older_provenance_format_is_kept(tmp_path: Path) -> None:
    cache = tmp_path / "datasets"
    cache.mkdir()
    legacy = {"_provenance": AIENERGYSCORE_REPO, "_commit": AIENERGYSCORE_REVISION, "_license": "apache-2.0"}
    (cache / AIENERGYSCORE_CACHE_FILE).write_text(json.dumps(legacy) + '\n{"prompt": "p"}\n')
    assert is_prepared(cache)
    assert prepare_dataset(cache, tmp_path / "hf", offline=True) == cache / AIENERGYSCORE_CACHE_FILE
    legacy["_commit"] = NEW_COMMIT
    (cache / AIENERGYSCORE_CACHE_FILE).write_text(json.dumps(legacy) + '\n{"prompt": "p"}\n')
    assert not is_prepared(cache)


def test_a_503_then_success_is_retried_for_the_dataset(tmp_path: Path, hub: HubState) -> None:
    # huggingface_hub retries a 5xx on the file's HEAD itself; what it gives up on, tenacity retries (is_transient)
    hub.fail_503[f"/datasets/{AIENERGYSCORE_REPO}/resolve"] = 1
    with HubServer(hub) as url:
        prepare_dataset(tmp_path / "datasets", tmp_path / "hf", endpoint=url, sleep=lambda _: None)
    assert hub.requests[0][2] == 503
    assert hub.requests[-1][2] == 200
    assert is_prepared(tmp_path / "datasets")


def test_a_missing_revision_and_a_gated_dataset_are_clear_errors(tmp_path: Path, hub: HubState) -> None:
    with HubServer(hub) as url:
        with pytest.raises(HubFetchError) as missing:
            prepare_dataset(tmp_path / "d", tmp_path / "hf", DatasetPin(revision=NEW_COMMIT), endpoint=url)
        assert missing.value.message == f"revision {NEW_COMMIT} of {AIENERGYSCORE_REPO} does not exist on the hub"
        assert f"existing branch, tag or commit of {AIENERGYSCORE_REPO}" in missing.value.fix
        hub.datasets[AIENERGYSCORE_REPO].gated = True
        with pytest.raises(HubFetchError) as gated:
            prepare_dataset(tmp_path / "d", tmp_path / "hf", endpoint=url)
        assert gated.value.message.startswith(f"{AIENERGYSCORE_REPO} (revision {AIENERGYSCORE_REVISION}) is gated")
        assert "HF_TOKEN" in gated.value.fix
    assert not (tmp_path / "d" / AIENERGYSCORE_CACHE_FILE).exists()


def test_offline_without_a_prepared_cache_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HubFetchError) as offline:
        prepare_dataset(tmp_path / "d", tmp_path / "hf", offline=True)
    assert "missing" in offline.value.message and AIENERGYSCORE_REPO in offline.value.message
    assert "HF_HUB_OFFLINE" in offline.value.message and "local JSONL" in offline.value.fix


def _preflight(tmp_path: Path, env: dict[str, str], dataset: str = "aienergyscore") -> None:
    client = FakeDockerClient()
    client.add_image(IMAGE, {PROTOCOL_LABEL: str(PROTOCOL_VERSION)})
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    plan = PreflightPlan(
        experiments=[tiny_config(model=str(model), dataset=dataset)], runner_kinds={"pytorch": "docker"},
        images={"pytorch": IMAGE}, host_device_ids=[[]], output_dir=tmp_path / "results",
        hf_cache_dir=tmp_path / "hub-cache", cwd=tmp_path, dataset_cache_dir=tmp_path / "datasets",
    )  # fmt: skip
    run_preflight(plan, HostServices(gpus=NoGpus(), docker_client=client, env=env))


def test_preflight_prepares_the_builtin_dataset_then_works_with_the_hub_gone(tmp_path: Path, hub: HubState) -> None:
    with HubServer(hub) as url:
        _preflight(tmp_path, {"HF_ENDPOINT": url})
        assert len(_downloads(hub)) == 1
    assert is_prepared(tmp_path / "datasets")
    _preflight(tmp_path, {"HF_ENDPOINT": url, "HF_HUB_OFFLINE": "1"})  # the server is gone, offline: the cache serves


def test_preflight_names_repo_revision_and_fix_when_the_dataset_cannot_be_fetched(
    tmp_path: Path, hub: HubState
) -> None:
    hub.datasets.clear()
    with HubServer(hub) as url, pytest.raises(PreFlightError) as info:
        _preflight(tmp_path, {"HF_ENDPOINT": url})
    (failure,) = info.value.failures
    assert failure.check == "dataset"
    assert AIENERGYSCORE_REPO in failure.message and AIENERGYSCORE_REVISION in failure.message
    assert "HF_TOKEN" in (failure.fix or "")


def test_preflight_does_not_fetch_the_dataset_for_a_local_file(tmp_path: Path, hub: HubState) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "x"}\n')
    with HubServer(hub) as url:
        _preflight(tmp_path, {"HF_ENDPOINT": url}, dataset=str(prompts))
    assert hub.requests == []
    assert not (tmp_path / "datasets").exists()


def test_a_run_context_dataset_cache_is_where_preflight_looks_for_the_dataset(tmp_path: Path) -> None:
    from orch_factories import ScriptedRunner

    from llenergymeasure.orchestrator.api import run_experiment
    from llenergymeasure.orchestrator.user_config import load_user_config
    from llenergymeasure.schemas.job import RunContext

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    common = {
        "runner": ScriptedRunner(),
        "gpu_probe": NoGpus(),
        "user_config": load_user_config(env={}, path=tmp_path / "none.yaml"),
        "env": {"HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "empty-user-cache")},
    }
    empty = tmp_path / "empty"
    with pytest.raises(PreFlightError) as info:
        run_experiment(model=str(model), n=2, context=RunContext(dataset_cache_dir=str(empty)), **common)  # type: ignore[arg-type]
    (failure,) = info.value.failures
    assert failure.check == "dataset" and str(empty / AIENERGYSCORE_CACHE_FILE) in failure.message
    prepared = tmp_path / "prepared"
    write_prepared_dataset(prepared, ["a", "b", "c"])
    context = RunContext(dataset_cache_dir=str(prepared))
    result = run_experiment(model=str(model), n=2, context=context, output_dir=tmp_path / "out", **common)  # type: ignore[arg-type]
    assert result.n_prompts == 2
