"""`RayDispatcher` against a fake of the few Ray calls it makes (the real cluster is in
tests/integration/test_ray_cluster.py): what comes back from a node becomes a completion, a lost
node a transient node_lost failure, a task's own crash a plain failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from orch_factories import make_result, tiny_config

from llenergymeasure.errors import ExperimentFailure
from llenergymeasure.orchestrator.cluster.dispatcher import Dispatch
from llenergymeasure.orchestrator.cluster.node_task import NodeRunOutcome
from llenergymeasure.orchestrator.cluster.placement import ClusterNode, Placement
from llenergymeasure.orchestrator.cluster.ray_dispatcher import RayDispatcher
from llenergymeasure.orchestrator.gpu_assignment import device_ids_for
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.schemas.job import RESULT_FILE, ExperimentJob, RunContext

NODE = ClusterNode("node-a", "gpu-a", ("GPU-a-0",), 1.0)


class NodeDiedError(Exception):
    """Named like Ray's: the dispatcher classifies Ray's exceptions by class name."""


class RayTaskError(Exception):
    pass


@dataclass
class FakeRay:
    """ray.remote / .options / .remote, wait, get, nodes, cancel: what RayDispatcher uses."""

    answers: dict[int, Any] = field(default_factory=dict)  # ref → outcome, or an exception to raise
    util: Any = field(
        default_factory=lambda: SimpleNamespace(
            scheduling_strategies=SimpleNamespace(
                NodeAffinitySchedulingStrategy=lambda node_id, soft: ("affinity", node_id, soft)
            )
        )
    )
    alive: set[str] = field(default_factory=lambda: {"node-a"})
    submitted: list[dict[str, Any]] = field(default_factory=list)

    def remote(self, **_: Any) -> Any:
        fake = self

        class _Remote:
            def __init__(self, fn: Any) -> None:
                self.fn = fn
                self.opts: dict[str, Any] = {}

            def options(self, **opts: Any) -> _Remote:
                self.opts = opts
                return self

            def remote(self, *args: Any) -> int:
                fake.submitted.append({"fn": self.fn.__name__, "options": self.opts, "args": args})
                return len(fake.submitted)

        return _Remote

    def wait(self, refs: list[int], num_returns: int, timeout: float | None) -> tuple[list[int], list[int]]:
        ready = [r for r in refs if r in self.answers][:num_returns]
        return ready, [r for r in refs if r not in ready]

    def get(self, ref: Any, timeout: float | None = None) -> Any:
        if isinstance(ref, list):
            return [[] for _ in ref]
        answer = self.answers[ref]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def nodes(self) -> list[dict[str, Any]]:
        return [{"NodeID": n, "Alive": True} for n in self.alive]

    def cancel(self, ref: int, force: bool = False) -> None:
        pass

    def is_initialized(self) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _dispatch(tmp_path: Path) -> Dispatch:
    job = ExperimentJob(config=tiny_config(gpus=[0]), context=RunContext(study_id="s", experiment_id="000-x", cycle=1))
    request = RunRequest(job=job, run_dir=tmp_path / "000_c1", name="llem-s-000-c1")
    return Dispatch((0, 1), request, Placement(NODE, (0,)))


def _dispatcher(ray: FakeRay) -> RayDispatcher:
    return RayDispatcher(
        ray,
        [NODE],
        study_id="s",
        images={"pytorch": "img"},
        docker_options=DockerOptions(),
        device_ids_for=device_ids_for,
        concurrency="node",
    )


def test_a_task_is_pinned_to_its_node_with_its_gpus_and_no_ray_retries(tmp_path: Path) -> None:
    ray = FakeRay()
    dispatcher = _dispatcher(ray)
    dispatcher.submit(_dispatch(tmp_path))
    (task,) = [s for s in ray.submitted if s["fn"] == "run_on_node"]
    assert task["options"]["num_gpus"] == 1 and task["options"]["num_cpus"] == 0
    assert task["options"]["scheduling_strategy"][1:] == ("node-a", False)
    payload = task["args"][0]
    assert payload.host_device_ids == (0,) and payload.run_dir_name == "000_c1"


def test_files_from_the_node_land_in_the_run_directory_and_validate(tmp_path: Path) -> None:
    ray = FakeRay()
    dispatcher = _dispatcher(ray)
    d = _dispatch(tmp_path)
    dispatcher.submit(d)
    result = make_result(d.request.job)
    ray.answers[1] = NodeRunOutcome(
        "gpu-a", files={RESULT_FILE: result.model_dump_json().encode(), "harness.log": b"x\n"}
    )
    done = dispatcher.wait(1.0)
    assert done is not None and done.result is not None and done.error is None
    assert done.host_name == "gpu-a"
    assert (tmp_path / "000_c1" / "harness.log").read_text() == "x\n"


def test_a_failure_on_the_node_stays_structured(tmp_path: Path) -> None:
    ray = FakeRay()
    dispatcher = _dispatcher(ray)
    dispatcher.submit(_dispatch(tmp_path))
    failure = ExperimentFailure(exit_code=1, phase="load", error_type="BackendError")
    ray.answers[1] = NodeRunOutcome("gpu-a", files={"error.json": b"{}"}, error_message="boom", failure=failure)
    done = dispatcher.wait(1.0)
    assert done is not None and done.error is not None and not done.node_lost
    assert done.error.failure.phase == "load"  # type: ignore[attr-defined]
    assert (tmp_path / "000_c1" / "error.json").is_file()


def test_a_dead_node_is_node_lost_transient_and_gets_no_more_runs(tmp_path: Path) -> None:
    ray = FakeRay()
    dispatcher = _dispatcher(ray)
    dispatcher.submit(_dispatch(tmp_path))
    ray.answers[1] = NodeDiedError("the node running it died")
    done = dispatcher.wait(1.0)
    assert done is not None and done.node_lost
    assert done.error is not None and done.error.failure.transient  # type: ignore[attr-defined]
    assert dispatcher.book.nodes == []


def test_a_task_crash_on_a_live_node_is_a_plain_failure(tmp_path: Path) -> None:
    ray = FakeRay()
    dispatcher = _dispatcher(ray)
    dispatcher.submit(_dispatch(tmp_path))
    ray.answers[1] = RayTaskError("ValueError: something broke")
    done = dispatcher.wait(1.0)
    assert done is not None and not done.node_lost
    assert done.error is not None and not done.error.failure.transient  # type: ignore[attr-defined]
    assert dispatcher.book.nodes == [NODE]
