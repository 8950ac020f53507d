"""Studies on a Ray cluster made of processes on this machine (`ray.cluster_utils.Cluster`), through the CPU image.

The cluster: a head without GPUs and two worker nodes, each with its own simulated GPU (its own
``LLEM_SIMULATE_GPUS`` spec in the node's environment: 100 W on one, 200 W on the other), so each
result shows which node measured it. ``llem run --ray <address>`` runs in a subprocess as a user
would; the nodes share this machine's Docker engine, which lets the tests check that no container
is left behind. Small on purpose (2 cores): one CPU per node, an 80 MB object store, tiny studies.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import (
    CPU_IMAGE,
    llem_command,
    llem_env,
    only_study_dir,
    read_manifest,
    stop_if_running,
    study_containers,
    tiny_experiment,
    wait_for,
    write_study_yaml,
)

from llenergymeasure.schemas.results import ExperimentResult

pytestmark = [pytest.mark.slow, pytest.mark.docker]

WATTS = {"w100": 100.0, "w200": 200.0}
COUNTER_PERIOD_S = 0.02  # the simulated energy counter's default update period
OBJECT_STORE_BYTES = 80 * 1024 * 1024


@dataclass
class LocalCluster:
    cluster: Any
    address: str
    workers: dict[str, Any]  # name → ray Node

    def node_id(self, name: str) -> str:
        return str(self.workers[name].node_id)


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES})
    workers = {}
    for name, watts in WATTS.items():
        spec = tmp_path / f"{name}.json"
        spec.write_text(
            json.dumps({"devices": [{"name": f"Sim {name}", "power": {"kind": "constant", "watts": watts}}]})
        )
        spec.chmod(0o644)
        workers[name] = cluster.add_node(
            num_cpus=1,
            num_gpus=1,
            object_store_memory=OBJECT_STORE_BYTES,
            env_vars={"LLEM_SIMULATE_GPUS": str(spec)},
        )
    cluster.wait_for_nodes()
    try:
        yield LocalCluster(cluster, cluster.address, workers)
    finally:
        cluster.shutdown()


def _study(tiny_model: Path, name: str, runs: int, **overrides: Any) -> dict[str, Any]:
    return {
        **tiny_experiment(tiny_model, gpus=[0], **overrides),
        "name": name,
        "experiments": [{"n": 2 + i} for i in range(runs)],
        "execution": {"n_cycles": 1, "config_gap_seconds": 0, "cycle_gap_seconds": 0, "max_attempts": 2},
    }


def _env(tmp_path: Path) -> dict[str, str]:
    # the head has no simulated GPUs of its own, so it would choose the GPU image for the nodes: a campaign
    # whose nodes differ from the head names the image, as here the CPU image the nodes' simulated GPUs need
    return llem_env(tmp_path, LLEM_IMAGE_PYTORCH=CPU_IMAGE)


def _llem(tmp_path: Path, study: dict[str, Any], address: str) -> subprocess.Popen[str]:
    config = write_study_yaml(tmp_path / "study.yaml", study)
    return subprocess.Popen(
        [*llem_command(), "run", str(config), "-o", str(tmp_path / "results"), "--ray", address],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _results(study_dir: Path) -> list[ExperimentResult]:
    return [ExperimentResult.model_validate_json(p.read_text()) for p in sorted(study_dir.glob("*/result.json"))]


def test_study_runs_across_worker_nodes_into_one_study_directory(
    ray_cluster: LocalCluster, cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    # 64 output tokens per prompt: a window long enough to tell 100 W from 200 W through a 20 ms counter
    longer = {"max_output_tokens": 64, "dataset": {"synthetic": True, "input_tokens": 8, "output_tokens": 64}}
    proc = _llem(tmp_path, _study(tiny_model, "ray-two-nodes", 4, **longer), ray_cluster.address)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
    study_dir = only_study_dir(tmp_path / "results")
    manifest = read_manifest(study_dir)
    assert manifest.status == "completed"
    assert [(e.status, e.attempts) for e in manifest.entries] == [("completed", 1)] * 4
    results = _results(study_dir)
    assert len(results) == 4
    by_node = {name: ray_cluster.node_id(name) for name in WATTS}
    used = {r.node.ray_node_id for r in results if r.node is not None}
    assert used == set(by_node.values()), "both worker nodes ran runs; the head (no GPU) none"
    for r in results:
        assert r.node is not None and r.node.gpu_uuids and r.energy.source == "simulated"
        watts = WATTS[next(n for n, i in by_node.items() if i == r.node.ray_node_id)]
        assert r.energy_total_j is not None
        # each node measured its own simulated GPU: energy = that node's constant power × the window, within
        # one counter update at each edge of the window
        assert r.window_duration_s >= 0.2  # long enough that 100 W and 200 W differ by more than the bound
        expected_j = watts * r.window_duration_s
        assert abs(r.energy_total_j - expected_j) <= 2 * watts * COUNTER_PERIOD_S + 0.01 * expected_j
    assert study_containers(study_dir.name) == []


def _wait_for_a_run_on_each_worker(tmp_path: Path, docker_client: Any) -> Path:
    """The study directory, once each of the two worker nodes runs a container of the study (plus 2 s)."""
    output = tmp_path / "results"
    study_dir: Path = wait_for(lambda: next((p for p in output.glob("*") if p.is_dir()), None), 120, "the study dir")
    wait_for(lambda: len(_running(docker_client, study_dir.name)) == 2, 240, "a run on each worker node")
    time.sleep(2)
    return study_dir


def test_a_node_lost_mid_study_is_retried_on_another_node(
    ray_cluster: LocalCluster, cpu_image: str, tiny_model: Path, tmp_path: Path, docker_client: Any
) -> None:
    # a 20 s idle baseline keeps each run busy long enough to lose its node in the middle
    study = _study(tiny_model, "ray-node-lost", 3, baseline={"duration_seconds": 20})
    proc = _llem(tmp_path, study, ray_cluster.address)
    try:
        study_dir = _wait_for_a_run_on_each_worker(tmp_path, docker_client)
        ray_cluster.cluster.remove_node(ray_cluster.workers["w100"])
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        stop_if_running(proc)
    assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
    manifest = read_manifest(study_dir)
    assert manifest.status == "completed"
    assert all(e.status == "completed" for e in manifest.entries)
    lost = [e for e in manifest.entries if e.retried]
    assert len(lost) == 1 and lost[0].retried[0].reason == "node_lost" and lost[0].attempts == 2
    retried = ExperimentResult.model_validate_json((study_dir / str(lost[0].run_dir) / "result.json").read_text())
    assert retried.attempt == 2
    assert retried.node is not None and retried.node.ray_node_id == ray_cluster.node_id("w200")
    wait_for(lambda: study_containers(study_dir.name) == [], 60, "no container of the study left")


def test_ctrl_c_cancels_the_cluster_runs_and_leaves_no_container_then_resume_finishes(
    ray_cluster: LocalCluster, cpu_image: str, tiny_model: Path, tmp_path: Path, docker_client: Any
) -> None:
    study = _study(tiny_model, "ray-ctrl-c", 3, baseline={"duration_seconds": 15})
    proc = _llem(tmp_path, study, ray_cluster.address)
    try:
        study_dir = _wait_for_a_run_on_each_worker(tmp_path, docker_client)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        stop_if_running(proc)
    assert proc.returncode == 130, f"stdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
    assert study_containers(study_dir.name) == []
    manifest = read_manifest(study_dir)
    assert manifest.status == "interrupted"
    assert [e.status for e in manifest.entries] == ["pending"] * 3
    assert [e.failure.type if e.failure else None for e in manifest.entries[:2]] == ["Interrupted"] * 2

    # --resume on the head, on the same cluster: the same study directory, every run completed
    config = tmp_path / "study.yaml"
    resumed = subprocess.run(
        [
            *llem_command(),
            "run",
            str(config),
            "-o",
            str(tmp_path / "results"),
            "--resume",
            "--ray",
            ray_cluster.address,
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, f"stdout:\n{resumed.stdout}\nstderr:\n{resumed.stderr[-4000:]}"
    assert only_study_dir(tmp_path / "results") == study_dir
    manifest = read_manifest(study_dir)
    assert manifest.status == "completed"
    assert [(e.status, e.attempts) for e in manifest.entries] == [("completed", 2), ("completed", 2), ("completed", 1)]
    assert len(_results(study_dir)) == 3


def _running(client: Any, study_id: str) -> list[Any]:
    return [c for c in client.containers.list(filters={"label": f"llem.study_id={study_id}"}) if c.status == "running"]


def test_device_set_concurrency_runs_disjoint_gpus_of_one_node_side_by_side(
    cpu_image: str, tiny_model: Path, tmp_path: Path
) -> None:
    from ray.cluster_utils import Cluster

    spec = tmp_path / "two-gpus.json"
    device = {"power": {"kind": "constant", "watts": 150}}
    spec.write_text(json.dumps({"devices": [{"name": "Sim 0", **device}, {"name": "Sim 1", **device}]}))
    spec.chmod(0o644)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES})
    worker = cluster.add_node(
        num_cpus=1, num_gpus=2, object_store_memory=OBJECT_STORE_BYTES, env_vars={"LLEM_SIMULATE_GPUS": str(spec)}
    )
    cluster.wait_for_nodes()
    try:
        study = {
            **tiny_experiment(tiny_model, baseline={"duration_seconds": 8}),
            "name": "ray-device-sets",
            "experiments": [{"n": 2, "gpus": [0]}, {"n": 3, "gpus": [1]}],
            "execution": {"n_cycles": 1, "config_gap_seconds": 0, "cycle_gap_seconds": 0, "concurrency": "device_set"},
        }
        proc = _llem(tmp_path, study, cluster.address)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        cluster.shutdown()
    assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
    study_dir = only_study_dir(tmp_path / "results")
    manifest = read_manifest(study_dir)
    first, second = manifest.entries
    assert first.started_at and second.started_at and first.finished_at and second.finished_at
    assert second.started_at < first.finished_at  # side by side on the one node
    results = {r.experiment_id: r for r in _results(study_dir)}
    for entry, other in ((first, second), (second, first)):
        node = results[entry.experiment_id].node
        assert node is not None and node.ray_node_id == str(worker.node_id)
        assert node.concurrent_runs == [other.run_dir]
    uuids = [results[e.experiment_id].node.gpu_uuids for e in (first, second)]  # type: ignore[union-attr]
    assert len(uuids[0]) == len(uuids[1]) == 1 and uuids[0] != uuids[1]
