"""`RayDispatcher`: each (experiment, cycle) of a study as one Ray task on a cluster node.

Connecting (`connect_ray`): the address is checked for shape (address.py) and, for
``host:port`` / ``ray://host:port``, for a TCP answer within a few seconds before Ray
is asked (``ray.init`` on a dead address can block for minutes); an unreachable or
malformed address is a `ConfigError` (exit 2). ``local`` starts a throwaway Ray
instance on this machine and stops it at the end.

Nodes (`probe_cluster`): every alive node runs `node_task.probe_node` once — its host
name and GPU UUIDs, its Docker engine, the study's images (pulled there on first use),
the model inputs (hub models fetched into its cache), and a reap of containers left by
dead llem processes. A node with a problem is left out with a warning naming it; a
cluster with no usable node is a `PreFlightError` listing every node's problem.

Runs: the head places each run (placement.py) and submits `node_task.run_on_node`
pinned to that node (``NodeAffinitySchedulingStrategy``, hard), asking for
``num_gpus`` = the device set's size where Ray counts that node's GPUs, ``num_cpus=0``
(the container does the work, not the Ray worker) and ``max_retries=0``: the study
loop owns retries. The task returns the run's files as bytes (transport.py), written
into the study directory on the head. A task whose node or worker died ends as a
transient ``node_lost`` failure and the node is dropped from placement.

Cancelling (`cancel_all`): every task in flight is cancelled (Ray raises
`KeyboardInterrupt` in it and the docker runner removes its container), then each
alive node removes any container still carrying the study's label.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llenergymeasure._version import __version__
from llenergymeasure.errors import ConfigError, ConfigIssue, ExperimentError, ExperimentFailure, PreFlightError
from llenergymeasure.errors import PreFlightFailure as Failure
from llenergymeasure.orchestrator.cluster.address import RayAddress
from llenergymeasure.orchestrator.cluster.dispatcher import Completion, Dispatch, Dispatcher
from llenergymeasure.orchestrator.cluster.node_task import NodeProbe, NodeRunOutcome, NodeRunPayload
from llenergymeasure.orchestrator.cluster.placement import ClusterNode, NodeBook, Placement
from llenergymeasure.orchestrator.cluster.transport import TransportError, unpack_run_files
from llenergymeasure.orchestrator.runners.collect import read_result
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import RESULT_FILE
from llenergymeasure.schemas.study import Concurrency

logger = logging.getLogger(__name__)

#: seconds a ``host:port`` address gets to answer a TCP connect before it is called unreachable
CONNECT_CHECK_S = 5.0
#: seconds a node gets for its probe (it may pull an image and fetch a model)
PROBE_TIMEOUT_S = 3600.0
#: seconds cancelled tasks get to remove their containers before the per-node clean-up
CANCEL_GRACE_S = 30.0
#: longest single wait on Ray, so node losses and Ctrl-C are seen promptly
POLL_S = 2.0

#: Ray exceptions (by class name) that mean the task's node or worker is gone, not the run's fault
NODE_LOST_ERRORS = frozenset(
    {
        "NodeDiedError",
        "WorkerCrashedError",
        "LocalRayletDiedError",
        "RaySystemError",
        "ObjectLostError",
        "ObjectReconstructionFailedError",
        "OwnerDiedError",
        "TaskUnschedulableError",
        "OutOfMemoryError",
    }
)


def import_ray() -> Any:
    """The ray module, or a `ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(
            "--ray needs the Ray package, which is not installed",
            issues=[ConfigIssue("--ray", str(e), "pip install 'llenergymeasure[ray]'")],
        ) from e
    return ray


def check_reachable(address: RayAddress, timeout_s: float = CONNECT_CHECK_S, *, source: str = "--ray") -> None:
    """A TCP connect to ``host:port`` (Ray's own connect can hang for minutes); `ConfigError` when it fails."""
    if address.kind not in ("gcs", "client"):
        return
    host_port = address.text.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return
    except OSError as e:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address.text}",
            issues=[
                ConfigIssue(
                    source,
                    f"{host_port} did not answer within {timeout_s:.0f} s: {e}",
                    "check the address and that the head's port is open to this machine "
                    "(ray://HEAD:10001 for the Ray Client server, HEAD:6379 on the head itself), or use --ray local",
                )
            ],
        ) from e


def connect_ray(address: RayAddress, ray: Any, *, source: str = "--ray") -> None:
    """``ray.init`` for `address`; `ConfigError` naming `source` when no cluster answers."""
    check_reachable(address, source=source)
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address.kind == "local":
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address.init_address, **kwargs)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError, SystemExit) as e:
        raise ConfigError(
            f"cannot connect to {address.describe()}",
            issues=[
                ConfigIssue("--ray", f"{type(e).__name__}: {e}", "start the cluster (ray start --head) or fix --ray")
            ],
        ) from e


class RayDispatcher(Dispatcher):
    """Runs on a Ray cluster; see the module docstring."""

    concurrent = True

    def __init__(
        self,
        ray: Any,
        nodes: Sequence[ClusterNode],
        *,
        study_id: str = "",
        images: Mapping[str, str],
        docker_options: DockerOptions,
        device_ids_for: Callable[[ExperimentConfig, int], list[int]],
        concurrency: Concurrency,
        owns_instance: bool = False,
    ) -> None:
        super().__init__(NodeBook(nodes, concurrency))
        self._ray = ray
        self._study_id = study_id
        self._images = dict(images)
        self._docker_options = docker_options
        self._device_ids_for = device_ids_for
        self._owns_instance = owns_instance
        self._refs: dict[Any, Dispatch] = {}
        from llenergymeasure.orchestrator.cluster import node_task

        self._run_remote = ray.remote(max_retries=0)(node_task.run_on_node)
        self._cleanup_remote = ray.remote(max_retries=0)(node_task.cleanup_study)

    def bind_study(self, study_id: str, concurrency: Concurrency) -> None:
        """The study this dispatcher serves (its containers' label) and the concurrency it runs with
        (a resumed study's is the one its manifest recorded)."""
        self._study_id = study_id
        self.book.concurrency = concurrency

    # -- Dispatcher -----------------------------------------------------------------------------

    def place(self, config: ExperimentConfig) -> Placement | None:
        return self.book.place(lambda gpu_count: self._device_ids_for(config, gpu_count))

    def env_key(self, placement: Placement, backend: str) -> str:
        return f"{placement.node.node_id}|{self._images.get(backend, backend)}"

    def describe(self, placement: Placement) -> str:
        gpus = f" GPUs {list(placement.device_ids)}" if placement.device_ids else ""
        return f"{placement.node.label}{gpus}"

    def ray_node_id(self, placement: Placement) -> str | None:
        return placement.node.node_id

    def submit(self, dispatch: Dispatch) -> None:
        request, node = dispatch.request, dispatch.placement.node
        ids = dispatch.placement.device_ids
        payload = NodeRunPayload(
            job_json=request.job.model_dump_json(),
            run_dir_name=request.run_dir.name,
            container_name=request.name,
            labels=dict(request.labels),
            wall_timeout_s=request.wall_timeout_s,
            silence_timeout_s=request.silence_timeout_s,
            host_device_ids=tuple(ids),
            images=self._images,
            docker_options=self._docker_options,
        )
        ref = self._run_remote.options(
            num_cpus=0,
            num_gpus=len(ids) if node.ray_gpus >= len(ids) else 0,
            scheduling_strategy=_pinned(self._ray, node.node_id),
            name=f"llem:{request.name}",
        ).remote(payload)
        self._refs[ref] = dispatch

    def wait(self, timeout_s: float | None) -> Completion | None:
        if not self._refs:
            return None
        wait_s = POLL_S if timeout_s is None else max(0.0, min(timeout_s, POLL_S))
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=wait_s)
        if not ready:
            return None
        ref = ready[0]
        dispatch = self._refs.pop(ref)
        try:
            outcome: NodeRunOutcome = self._ray.get(ref)
        except Exception as e:
            return self._failed_task(dispatch, e)
        return self._collect(dispatch, outcome)

    def cancel_all(self) -> list[Dispatch]:
        cancelled = list(self._refs.values())
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=False)
            except Exception as e:  # a task that already ended
                logger.debug("cancel: %s", e)
        if self._refs:
            self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=CANCEL_GRACE_S)
        self._refs.clear()
        self.cleanup_nodes()
        return cancelled

    def cleanup_nodes(self) -> list[str]:
        """Remove every container of this study on every alive node (by the ``llem.study_id`` label)."""
        if not self._study_id:
            return []
        alive = alive_node_ids(self._ray)
        refs = [
            self._cleanup_remote.options(num_cpus=0, scheduling_strategy=_pinned(self._ray, n.node_id)).remote(
                self._study_id
            )
            for n in self.book.nodes
            if n.node_id in alive
        ]
        removed: list[str] = []
        try:
            for names in self._ray.get(refs, timeout=120):
                removed.extend(names)
        except Exception as e:
            logger.warning("could not clean up every node: %s", e)
        if removed:
            logger.warning("removed %d container(s) of this study on the cluster: %s", len(removed), ", ".join(removed))
        return removed

    def close(self) -> None:
        """Remove what a lost node's task could not (its container, on the nodes still here), then disconnect."""
        if not self._ray.is_initialized():
            return
        try:
            self.cleanup_nodes()
        finally:
            self._ray.shutdown()

    # -- internals ------------------------------------------------------------------------------

    def _collect(self, dispatch: Dispatch, outcome: NodeRunOutcome) -> Completion:
        run_dir = dispatch.request.run_dir
        host = outcome.host_name
        _replay_events(dispatch, outcome.event_lines)
        try:
            unpack_run_files(outcome.files, run_dir)
        except (TransportError, OSError) as e:
            return Completion(dispatch, error=ExperimentError(f"the files of the run could not be written: {e}"))
        if outcome.error_message is not None:
            failure = outcome.failure or ExperimentFailure()
            return Completion(dispatch, error=ExperimentError(outcome.error_message, failure), host_name=host)
        try:
            result = read_result(run_dir / RESULT_FILE)
        except ExperimentError as e:
            return Completion(dispatch, error=e, host_name=host)
        return Completion(dispatch, result=result, host_name=host)

    def _failed_task(self, dispatch: Dispatch, error: Exception) -> Completion:
        name = type(error).__name__
        node = dispatch.placement.node
        config_hash = dispatch.request.job.config.measurement_config_hash()
        lost = name in NODE_LOST_ERRORS or node.node_id not in alive_node_ids(self._ray)
        if lost:
            self.book.remove_node(node.node_id)
            logger.warning("node %s left the cluster; it gets no more runs", node.label)
            failure = ExperimentFailure(
                phase="container", error_type="NodeLost", measurement_config_hash=config_hash, transient=True
            )
            message = f"node {node.label} was lost while running it ({name})"
            return Completion(dispatch, error=ExperimentError(message, failure), node_lost=True)
        failure = ExperimentFailure(phase="container", error_type=name, measurement_config_hash=config_hash)
        first = str(error).strip().splitlines()[-1] if str(error).strip() else name
        return Completion(dispatch, error=ExperimentError(f"the task on {node.label} failed: {first}", failure))


def _replay_events(dispatch: Dispatch, lines: Sequence[str]) -> None:
    """Hand the run's progress events to the head's callback, in order, now that the run has ended."""
    from llenergymeasure.schemas.events import parse_event_line

    if dispatch.request.on_event is None:
        return
    for line in lines:
        event = parse_event_line(line)
        if event is not None:
            dispatch.request.on_event(event)


def _pinned(ray: Any, node_id: str) -> Any:
    """Hard node affinity: the task runs on that node or not at all."""
    return ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def alive_node_ids(ray: Any) -> set[str]:
    return {str(n["NodeID"]) for n in ray.nodes() if n.get("Alive")}


def probe_cluster(ray: Any, images: Sequence[str], experiments: Sequence[ExperimentConfig]) -> list[ClusterNode]:
    """Probe every alive node (module docstring); the usable ones, or `PreFlightError` when there is none."""
    from llenergymeasure.orchestrator.cluster import node_task

    probe = ray.remote(max_retries=0)(node_task.probe_node)
    version_of = ray.remote(max_retries=0)(_node_version)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    pending = {}
    for n in nodes:
        node_id = str(n["NodeID"])
        strategy = _pinned(ray, node_id)
        pending[node_id] = (
            n,
            probe.options(num_cpus=0, scheduling_strategy=strategy).remote(list(images), list(experiments)),
            version_of.options(num_cpus=0, scheduling_strategy=strategy).remote(),
        )
    usable: list[ClusterNode] = []
    failures: list[Failure] = []
    for node_id, (info, probe_ref, version_ref) in pending.items():
        where = f"node {info.get('NodeManagerAddress', '?')} ({node_id[:8]})"
        try:
            result: NodeProbe = ray.get(probe_ref, timeout=PROBE_TIMEOUT_S)
            version = str(ray.get(version_ref, timeout=PROBE_TIMEOUT_S))
        except Exception as e:
            failures.append(Failure(where, f"the probe failed: {type(e).__name__}: {e}", "check the node's logs"))
            continue
        problems = list(result.problems)
        if version != __version__:
            problems.append(f"llenergymeasure {version} is installed there, the head runs {__version__}")
        if problems:
            failures.extend(Failure(f"{where} {result.host_name}", p, "fix the node or leave it out") for p in problems)
            continue
        resources = info.get("Resources") or {}
        usable.append(ClusterNode(node_id, result.host_name, result.gpu_uuids, float(resources.get("GPU", 0.0))))
    if not usable:
        if not failures:
            failures.append(Failure("cluster", "the cluster has no alive node", "start the nodes (ray start)"))
        raise PreFlightError(failures, where="cluster")
    for f in failures:
        logger.warning("leaving out %s: %s (fix: %s)", f.check, f.message, f.fix)
    return sorted(usable, key=lambda n: (n.host_name, n.node_id))


def _node_version() -> str:
    from llenergymeasure._version import __version__ as node_version

    return node_version


def open_ray_dispatcher(
    address_text: str,
    *,
    source: str,
    experiments: Sequence[ExperimentConfig],
    images: Mapping[str, str],
    docker_options: DockerOptions,
    device_ids_for: Callable[[ExperimentConfig, int], list[int]],
    concurrency: Concurrency,
) -> RayDispatcher:
    """Connect to the cluster at `address_text` (from `source`: ``--ray`` or the user config), probe its nodes,
    and return the dispatcher; every failure before the first run is a `ConfigError` or a `PreFlightError`."""
    from llenergymeasure.orchestrator.cluster.address import AddressError, parse_ray_address

    try:
        address = parse_ray_address(address_text)
    except AddressError as e:
        raise ConfigError(f"invalid Ray address {address_text!r}", issues=[ConfigIssue(source, str(e))]) from e
    ray = import_ray()
    connect_ray(address, ray, source=source)
    try:
        nodes = probe_cluster(ray, list(dict.fromkeys(images.values())), experiments)
        for n in nodes:
            logger.info("cluster node %s: %d GPU(s) %s", n.label, n.gpu_count, ", ".join(n.gpu_uuids))
        return RayDispatcher(
            ray,
            nodes,
            images=images,
            docker_options=docker_options,
            device_ids_for=device_ids_for,
            concurrency=concurrency,
            owns_instance=address.kind == "local",
        )
    except BaseException:
        ray.shutdown()
        raise
