"""The study loop on a cluster, with a fake `Dispatcher` of our own (no Ray): concurrency, order, gaps per
device set, the baseline key per node, node_lost retries, Ctrl-C cancelling what is in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest
from orch_factories import T0, ScriptedRunner, make_result, tiny_config

from llenergymeasure.errors import ExperimentError, ExperimentFailure, StudyError
from llenergymeasure.orchestrator.cluster.dispatcher import Completion, Dispatch, Dispatcher
from llenergymeasure.orchestrator.cluster.placement import ClusterNode, NodeBook, Placement
from llenergymeasure.orchestrator.gpu_assignment import device_ids_for
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.study.baseline_cache import BaselineCache
from llenergymeasure.orchestrator.study.gaps import GapWaiter
from llenergymeasure.orchestrator.study.loop import LoopServices, StudyLoop
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import RESULT_FILE
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import ExecutionConfig, StudyConfig

Outcome = Callable[[Dispatch], str]  # "ok" | "fail" | "lost"


def node(name: str, gpus: int = 2) -> ClusterNode:
    return ClusterNode(f"{name}-id", name, tuple(f"GPU-{name}-{i}" for i in range(gpus)), float(gpus))


class FakeCluster(Dispatcher):
    """Runs end in submission order (FIFO) when the loop waits; `outcome` decides how each ends."""

    concurrent = True

    def __init__(self, nodes: list[ClusterNode], concurrency: str = "node", outcome: Outcome = lambda d: "ok") -> None:
        super().__init__(NodeBook(nodes, concurrency))  # type: ignore[arg-type]
        self.outcome = outcome
        self.submitted: list[Dispatch] = []
        self.running: deque[Dispatch] = deque()
        self.peak_per_node: dict[str, int] = {}
        self.waits: list[float | None] = []
        self.cancelled: list[Dispatch] = []
        self.now = 0.0
        self.interrupt_on_wait = False

    def place(self, config: ExperimentConfig) -> Placement | None:
        return self.book.place(lambda n: device_ids_for(config, n))

    def env_key(self, placement: Placement, backend: str) -> str:
        return f"{placement.node.node_id}|img"

    def ray_node_id(self, placement: Placement) -> str | None:
        return placement.node.node_id

    def submit(self, dispatch: Dispatch) -> None:
        self.submitted.append(dispatch)
        self.running.append(dispatch)
        on_node = sum(1 for d in self.running if d.placement.node == dispatch.placement.node)
        nid = dispatch.placement.node.node_id
        self.peak_per_node[nid] = max(self.peak_per_node.get(nid, 0), on_node)

    def wait(self, timeout_s: float | None) -> Completion | None:
        self.waits.append(timeout_s)
        if self.interrupt_on_wait:
            raise KeyboardInterrupt
        if not self.running:
            self.now += timeout_s or 0.0
            return None
        d = self.running.popleft()
        self.now += 1.0
        how = self.outcome(d)
        if how == "lost":
            failure = ExperimentFailure(error_type="NodeLost", transient=True)
            self.book.remove_node(d.placement.node.node_id)
            return Completion(d, error=ExperimentError("node gone", failure), node_lost=True)
        if how == "fail":
            return Completion(d, error=ExperimentError("boom", ExperimentFailure(exit_code=1)))
        job = d.request.job
        method = "cached" if job.context.cached_baseline is not None else "measured"
        result = make_result(job, energy_j=50.0, baseline_power_w=40.0, baseline_method=method, measured_at=T0)
        (d.request.run_dir / RESULT_FILE).write_text(result.model_dump_json())
        return Completion(d, result=result, host_name=d.placement.node.host_name)

    def cancel_all(self) -> list[Dispatch]:
        self.cancelled = list(self.running)
        self.running.clear()
        return self.cancelled


def study(experiments: list[ExperimentConfig], cycles: int = 1, **execution: object) -> StudyConfig:
    ex = {"n_cycles": cycles, "config_gap_seconds": 0, "cycle_gap_seconds": 0, **execution}
    return StudyConfig(name="cluster", experiments=experiments, execution=ExecutionConfig.model_validate(ex))


def run_loop(tmp_path: Path, s: StudyConfig, cluster: FakeCluster, **services: object) -> StudyLoop:
    store = ManifestStore.create(tmp_path, tmp_path.name, s)
    svc = LoopServices(
        runner_for=lambda b: pytest.fail("a cluster run never uses the host runner"),
        device_ids_for=lambda c: [0],
        baselines=BaselineCache(clock=lambda: T0),
        dispatcher=cluster,
        clock=lambda: cluster.now,
        **services,  # type: ignore[arg-type]
    )
    loop = StudyLoop(s, tmp_path, store, svc)
    loop.run()
    return loop


def result_of(loop: StudyLoop, index: int, cycle: int) -> ExperimentResult:
    entry = loop.store.entry(index, cycle)
    assert entry.run_dir is not None
    return ExperimentResult.model_validate_json((loop.study_dir / entry.run_dir / RESULT_FILE).read_text())


def test_node_concurrency_runs_one_experiment_per_node_and_uses_every_node(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a"), node("b")])
    loop = run_loop(tmp_path, study([tiny_config(n=4 + i, gpus=[0]) for i in range(4)]), cluster)
    assert loop.store.manifest.status == "completed"
    assert cluster.peak_per_node == {"a-id": 1, "b-id": 1}
    assert [d.placement.node.host_name for d in cluster.submitted] == ["a", "b", "a", "b"]


def test_dispatch_order_is_the_study_order(tmp_path: Path) -> None:
    s = study([tiny_config(n=4 + i, gpus=[0]) for i in range(3)], cycles=2, cycle_order="interleaved")
    cluster = FakeCluster([node("a"), node("b")])
    run_loop(tmp_path, s, cluster)
    assert [d.key for d in cluster.submitted] == s.run_order()


def test_device_set_concurrency_runs_disjoint_gpu_sets_side_by_side_and_records_it(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a")], concurrency="device_set")
    loop = run_loop(tmp_path, study([tiny_config(n=4, gpus=[0]), tiny_config(n=5, gpus=[1])]), cluster)
    assert cluster.peak_per_node == {"a-id": 2}
    first, second = result_of(loop, 0, 1), result_of(loop, 1, 1)
    assert first.node is not None and second.node is not None
    assert first.node.concurrent_runs == [loop.store.entry(1, 1).run_dir]
    assert second.node.concurrent_runs == [loop.store.entry(0, 1).run_dir]
    assert first.node.gpu_uuids == ["GPU-a-0"] and second.node.gpu_uuids == ["GPU-a-1"]


def test_device_set_concurrency_never_shares_a_gpu(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a")], concurrency="device_set")
    run_loop(tmp_path, study([tiny_config(n=4, gpus=[0, 1]), tiny_config(n=5, gpus=[1])]), cluster)
    assert cluster.peak_per_node == {"a-id": 1}


def test_result_records_the_node_it_ran_on(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a")])
    loop = run_loop(tmp_path, study([tiny_config(gpus=[1])]), cluster)
    r = result_of(loop, 0, 1)
    assert r.node is not None
    assert (r.node.host_name, r.node.ray_node_id, r.node.gpu_uuids, r.node.concurrent_runs) == (
        "a",
        "a-id",
        ["GPU-a-1"],
        [],
    )


def test_gap_counts_from_the_end_of_the_previous_run_on_the_same_device_set(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a"), node("b")])
    waits: list[tuple[float, str]] = []

    class RecordingWaiter(GapWaiter):
        def wait(self, seconds: float, reason: str) -> None:
            waits.append((seconds, reason))
            cluster.now += seconds

    s = study([tiny_config(n=4 + i, gpus=[0]) for i in range(3)], config_gap_seconds=60)
    run_loop(tmp_path, s, cluster, gaps=RecordingWaiter())
    # run 0 → a, run 1 → b (no gap: b never ran anything), run 2 waits for a's gap while b still runs
    assert waits[:2] == [(0.0, "first run"), (0.0, "first run")]
    assert 60.0 in cluster.waits  # the loop waited for a run to end for at most the gap left on node a
    assert [d.placement.node.host_name for d in cluster.submitted] == ["a", "b", "a"]
    assert waits[2] == (59.0, "config gap")  # a ended at t=1, b at t=2: one second of a's gap already passed


def test_baseline_cache_key_is_per_node(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a"), node("b")])
    run_loop(tmp_path, study([tiny_config(n=4 + i, gpus=[0]) for i in range(4)]), cluster)
    cached = [
        (d.placement.node.host_name, d.request.job.context.cached_baseline is not None) for d in cluster.submitted
    ]
    assert cached == [("a", False), ("b", False), ("a", True), ("b", True)]


def test_node_lost_is_retried_on_another_node(tmp_path: Path) -> None:
    cluster = FakeCluster(
        [node("a"), node("b")], outcome=lambda d: "lost" if d.placement.node.host_name == "a" else "ok"
    )
    loop = run_loop(tmp_path, study([tiny_config(gpus=[0])], max_attempts=2), cluster)
    entry = loop.store.entry(0, 1)
    assert entry.status == "completed" and entry.attempts == 2
    assert [f.reason for f in entry.retried] == ["node_lost"]
    assert entry.retried[0].transient and entry.retried[0].node == "a (ray node a-id)"
    r = result_of(loop, 0, 1)
    assert r.attempt == 2 and r.node is not None and r.node.host_name == "b"


def test_node_lost_without_tries_left_fails_the_run(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a"), node("b")], outcome=lambda d: "lost" if d.key == (0, 1) else "ok")
    loop = run_loop(tmp_path, study([tiny_config(n=4, gpus=[0]), tiny_config(n=5, gpus=[0])]), cluster)
    failed = loop.store.entry(0, 1)
    assert failed.status == "failed" and failed.failure is not None and failed.failure.reason == "node_lost"
    assert loop.store.entry(1, 1).status == "completed"
    assert loop.store.manifest.status == "failed"


def test_no_node_with_the_gpus_fails_that_run_with_the_fix(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a", gpus=1)])
    loop = run_loop(tmp_path, study([tiny_config(n=4, gpus=[3]), tiny_config(n=5, gpus=[0])]), cluster)
    failure = loop.store.entry(0, 1).failure
    assert failure is not None and "no usable node has GPUs [3]" in failure.message and "fix:" in failure.message
    assert loop.store.entry(1, 1).status == "completed"


def test_ctrl_c_cancels_the_runs_in_flight_and_marks_them_pending(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a"), node("b")])
    cluster.interrupt_on_wait = True
    s = study([tiny_config(n=4 + i, gpus=[0]) for i in range(3)])
    store = ManifestStore.create(tmp_path, tmp_path.name, s)
    svc = LoopServices(
        runner_for=lambda b: pytest.fail("unused"),
        device_ids_for=lambda c: [0],
        dispatcher=cluster,
    )
    loop = StudyLoop(s, tmp_path, store, svc)
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert [d.key for d in cluster.cancelled] == [(0, 1), (1, 1)]
    assert [e.status for e in store.entries()] == ["pending", "pending", "pending"]
    assert all(e.failure is not None and e.failure.type == "Interrupted" for e in store.entries()[:2])
    assert store.manifest.status == "interrupted"


def test_circuit_breaker_cancels_what_is_in_flight(tmp_path: Path) -> None:
    cluster = FakeCluster([node("a"), node("b"), node("c")], outcome=lambda d: "fail")
    s = study([tiny_config(n=4 + i, gpus=[0]) for i in range(5)], max_consecutive_failures=2)
    with pytest.raises(StudyError):
        run_loop(tmp_path, s, cluster)
    # 0, 1, 2 start on a, b, c; 0 fails → 3 starts on a; 1 fails → second failure in a row: stop
    assert [d.key for d in cluster.cancelled] == [(2, 1), (3, 1)]
    store = ManifestStore.load(tmp_path / "manifest.json")
    assert [e.status for e in store.entries()] == ["failed", "failed", "pending", "pending", "pending"]
    assert store.manifest.status == "failed"


def test_a_retry_goes_first_in_line_and_waits_for_its_new_device_set(tmp_path: Path) -> None:
    waits: list[tuple[float, str]] = []

    class RecordingWaiter(GapWaiter):
        def wait(self, seconds: float, reason: str) -> None:
            waits.append((seconds, reason))

    tries = {"n": 0}

    def lose_first(d: Dispatch) -> str:
        tries["n"] += 1
        return "lost" if tries["n"] == 1 else "ok"

    cluster = FakeCluster([node("a"), node("b")], outcome=lose_first)
    s = study([tiny_config(n=4, gpus=[0]), tiny_config(n=5, gpus=[0])], max_attempts=2, config_gap_seconds=60)
    run_loop(tmp_path, s, cluster, gaps=RecordingWaiter())
    assert [d.key for d in cluster.submitted] == [(0, 1), (1, 1), (0, 1)]
    assert cluster.submitted[2].placement.node.host_name == "b"  # a is gone
    # the retry lands on b just after b's own run ended: b's GPU gets its config gap first
    assert waits[-1] == (60.0, "config gap")


def test_on_this_host_a_retry_follows_at_once(tmp_path: Path) -> None:
    waits: list[tuple[float, str]] = []

    class RecordingWaiter(GapWaiter):
        def wait(self, seconds: float, reason: str) -> None:
            waits.append((seconds, reason))

    def transient_once(r: RunRequest) -> Exception | None:
        if len(runner.requests) == 2:  # the second run's first try
            return ExperimentError("daemon reset", ExperimentFailure(phase="container", transient=True))
        return None

    runner = ScriptedRunner(transient_once)
    s = study([tiny_config(n=4, gpus=[0]), tiny_config(n=5, gpus=[0])], max_attempts=2, config_gap_seconds=60)
    store = ManifestStore.create(tmp_path, tmp_path.name, s)
    svc = LoopServices(runner_for=lambda b: runner, device_ids_for=lambda c: [0], gaps=RecordingWaiter())
    StudyLoop(s, tmp_path, store, svc).run()
    assert waits == [(0.0, "first run"), (60.0, "config gap"), (0.0, "retry")]
    assert store.entry(1, 1).attempts == 2 and store.manifest.status == "completed"
