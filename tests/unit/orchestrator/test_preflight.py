"""Host pre-flight: every failure reported at once, each with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_factories import tiny_config
from orch_fake_docker import FakeDockerClient

from llenergymeasure.errors import PreFlightError
from llenergymeasure.orchestrator.gpu_assignment import device_ids_for
from llenergymeasure.orchestrator.preflight import (
    HostServices,
    PreflightPlan,
    check_multi_backend,
    run_preflight,
)
from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION

IMAGE = "llenergymeasure/pytorch:2.0.0-cpu"


class FakeGpus:
    def __init__(self, count: int, busy: dict[int, list[int]] | None = None) -> None:
        self.count = count
        self.busy = busy or {}

    def device_count(self) -> int:
        return self.count

    def foreign_processes(self, index: int, own_pids: frozenset[int] = frozenset()) -> list[int]:
        return [p for p in self.busy.get(index, []) if p not in own_pids]


def _cache_with(root: Path, repo: str) -> Path:
    snap = root / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    return root


def _plan(
    tmp_path: Path, experiments: list, host_ids: list[list[int]] | None = None, cache: Path | None = None
) -> PreflightPlan:  # type: ignore[type-arg]
    return PreflightPlan(
        experiments=experiments,
        runner_kinds={e.backend: "docker" for e in experiments},
        images={"pytorch": IMAGE},
        host_device_ids=host_ids or [[] for _ in experiments],
        output_dir=tmp_path / "results",
        hf_cache_dir=cache or tmp_path / "hub",
        cwd=tmp_path,
    )


def _good_client() -> FakeDockerClient:
    client = FakeDockerClient()
    client.add_image(IMAGE, {PROTOCOL_LABEL: str(PROTOCOL_VERSION)})
    return client


def test_a_healthy_cpu_host_passes(tmp_path: Path) -> None:
    cache = _cache_with(tmp_path / "hub", "org/tiny")
    run_preflight(
        _plan(tmp_path, [tiny_config()], cache=cache), HostServices(gpus=NoGpus(), docker_client=_good_client())
    )


def test_all_failures_are_reported_at_once(tmp_path: Path) -> None:
    client = FakeDockerClient()
    client.add_image(IMAGE, {PROTOCOL_LABEL: "0"})  # wrong protocol
    experiments = [
        tiny_config(model=str(tmp_path / "nowhere")),  # local model missing
        tiny_config(
            model="org/absent", dataset=str(tmp_path / "missing.jsonl")
        ),  # not cached, fetch fails; dataset missing
    ]

    def fetch(repo: str, cache: Path) -> Path:
        raise OSError("network unreachable")

    with pytest.raises(PreFlightError) as info:
        run_preflight(
            _plan(tmp_path, experiments),
            HostServices(gpus=NoGpus(), docker_client=client, fetch_model=fetch, min_free_disk_bytes=1 << 62),
        )
    checks = [f.check for f in info.value.failures]
    assert checks.count("image protocol") == 1
    assert "model" in checks
    assert "dataset" in checks
    assert "disk" in checks
    assert sum(1 for c in checks if c == "model") == 2
    assert all(f.fix for f in info.value.failures)
    text = info.value.render()
    assert "network unreachable" in text
    assert "protocol" in text


def test_unreachable_daemon_and_missing_image(tmp_path: Path) -> None:
    cache = _cache_with(tmp_path / "hub", "org/tiny")
    with pytest.raises(PreFlightError) as info:
        run_preflight(
            _plan(tmp_path, [tiny_config()], cache=cache),
            HostServices(gpus=NoGpus(), docker_client=None, docker_error="connection refused"),
        )
    assert [f.check for f in info.value.failures] == ["docker daemon"]
    assert "connection refused" in info.value.failures[0].message

    with pytest.raises(PreFlightError) as info:
        run_preflight(
            _plan(tmp_path, [tiny_config()], cache=cache), HostServices(gpus=NoGpus(), docker_client=FakeDockerClient())
        )
    assert [f.check for f in info.value.failures] == ["image"]
    assert "make image-cpu" in (info.value.failures[0].fix or "")


def test_hub_model_is_fetched_once_into_the_host_cache(tmp_path: Path) -> None:
    fetched: list[str] = []

    def fetch(repo: str, cache: Path) -> Path:
        fetched.append(repo)
        return _cache_with(cache, repo)

    experiments = [tiny_config(model="org/new"), tiny_config(model="org/new", n=9)]
    run_preflight(
        _plan(tmp_path, experiments), HostServices(gpus=NoGpus(), docker_client=_good_client(), fetch_model=fetch)
    )
    assert fetched == ["org/new"]


def test_offline_host_does_not_try_to_fetch(tmp_path: Path) -> None:
    def fetch(repo: str, cache: Path) -> Path:  # pragma: no cover - must not be called
        raise AssertionError("fetched while offline")

    with pytest.raises(PreFlightError, match="pre-flight") as info:
        run_preflight(
            _plan(tmp_path, [tiny_config(model="org/new")]),
            HostServices(gpus=NoGpus(), docker_client=_good_client(), fetch_model=fetch, env={"HF_HUB_OFFLINE": "1"}),
        )
    assert "HF_HUB_OFFLINE" in info.value.failures[0].message


def test_gpu_checks(tmp_path: Path) -> None:
    cache = _cache_with(tmp_path / "hub", "org/tiny")
    exps = [tiny_config(gpus=[0]), tiny_config(gpus=[5], n=7)]
    client = _good_client()  # no nvidia runtime
    with pytest.raises(PreFlightError) as info:
        run_preflight(
            _plan(tmp_path, exps, host_ids=[[0], [5]], cache=cache),
            HostServices(gpus=FakeGpus(2, busy={0: [4242]}), docker_client=client, which=lambda name: None),
        )
    msgs = {f.check: f.message for f in info.value.failures}
    assert "nvidia runtime" in msgs
    assert "[5] do not exist" in msgs["gpus"] or any("[5]" in f.message for f in info.value.failures)
    assert any("4242" in f.message for f in info.value.failures)


def test_gpus_asked_on_a_cpu_host(tmp_path: Path) -> None:
    cache = _cache_with(tmp_path / "hub", "org/tiny")
    with pytest.raises(PreFlightError, match="pre-flight") as info:
        run_preflight(
            _plan(tmp_path, [tiny_config(gpus=[0])], cache=cache),
            HostServices(gpus=NoGpus(), docker_client=_good_client()),
        )
    assert "no NVIDIA GPU" in info.value.failures[0].message


def test_nvidia_runtime_listed_passes(tmp_path: Path) -> None:
    cache = _cache_with(tmp_path / "hub", "org/tiny")
    client = FakeDockerClient(runtimes={"nvidia": {}, "runc": {}})
    client.add_image(IMAGE, {PROTOCOL_LABEL: str(PROTOCOL_VERSION)})
    run_preflight(
        _plan(tmp_path, [tiny_config()], host_ids=[[0]], cache=cache),
        HostServices(gpus=FakeGpus(1), docker_client=client, which=lambda n: None),
    )


def test_multi_backend_without_docker_is_refused() -> None:
    check_multi_backend({"pytorch": "docker", "vllm": "docker"})
    check_multi_backend({"pytorch": "local"})
    with pytest.raises(PreFlightError, match="pre-flight") as info:
        check_multi_backend({"pytorch": "local", "vllm": "docker"})
    assert "['pytorch']" in info.value.failures[0].message


def test_device_sets() -> None:
    assert device_ids_for(tiny_config(), 0) == []
    assert device_ids_for(tiny_config(), 4) == [0]
    assert device_ids_for(tiny_config(gpus=[2, 3]), 4) == [2, 3]


def test_simulated_gpus_need_no_nvidia_runtime(tmp_path: Path) -> None:
    cache = _cache_with(tmp_path / "hub", "org/tiny")
    client = _good_client()  # its `docker info` lists no nvidia runtime
    plan = _plan(tmp_path, [tiny_config()], host_ids=[[0]], cache=cache)
    services = HostServices(gpus=FakeGpus(1), docker_client=client, which=lambda name: None)
    with pytest.raises(PreFlightError) as info:
        run_preflight(plan, services)
    assert [f.check for f in info.value.failures] == ["nvidia runtime"]
    services.env = {"LLEM_SIMULATE_GPUS": str(tmp_path / "gpus.json")}
    run_preflight(plan, services)
