"""What runs on a cluster node: probe the node, run one (experiment, cycle), clean up a study's containers.

These are plain functions of plain, picklable values; `RayDispatcher` ships them as
Ray tasks (``max_retries=0``: the study loop owns retries). They import no Ray, so
they are tested here without a cluster.

`run_on_node` runs the unchanged `DockerRunner` against the node's own Docker engine
and images, in a scratch run directory on the node's disk, then packs the run's
files (transport.py) and the harness's progress events into the outcome (the head
passes the events on when the run ends: nothing streams from a node while it runs). A Ray cancellation arrives as
`KeyboardInterrupt` in the runner, which removes its container before the task
ends; `cleanup_study` removes whatever a killed task could not.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.errors import ExperimentError, ExperimentFailure, LLEMError
from llenergymeasure.orchestrator.cluster.transport import TransportError, pack_run_files
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.inputs import experiment_inputs, host_hf_cache, hub_snapshot
from llenergymeasure.orchestrator.runners.reaper import reap_orphans
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.events import event_line
from llenergymeasure.schemas.job import LABEL_STUDY_ID, ExperimentJob

logger = logging.getLogger(__name__)

#: where a node keeps the scratch run directories of the runs it executes
SCRATCH_ENV_VAR = "LLEM_NODE_SCRATCH"


@dataclass(frozen=True)
class NodeProbe:
    """What a node offers a study: its name, GPUs, and what stops it from running the study (if anything)."""

    host_name: str
    gpu_uuids: tuple[str, ...]
    problems: tuple[str, ...] = ()
    reaped: tuple[str, ...] = ()

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_uuids)


@dataclass(frozen=True)
class NodeRunPayload:
    """One (experiment, cycle) as it travels to a node."""

    job_json: str
    run_dir_name: str
    container_name: str
    labels: dict[str, str]
    wall_timeout_s: float
    silence_timeout_s: float
    host_device_ids: tuple[int, ...]
    images: dict[str, str]
    docker_options: DockerOptions


@dataclass
class NodeRunOutcome:
    """What comes back from a node: the run's files and, when it failed, the structured failure."""

    host_name: str
    files: dict[str, bytes] = field(default_factory=dict)
    error_message: str | None = None
    failure: ExperimentFailure | None = None
    event_lines: list[str] = field(default_factory=list)  # the harness's progress events, in order (JSON lines)


def probe_node(images: list[str], experiments: list[ExperimentConfig], *, pull: bool = True) -> NodeProbe:
    """This node's GPUs, and every reason it cannot run `experiments` from `images`; reaps dead llem containers.

    A missing image is pulled (first use on this node); a hub model missing from the node's
    HF cache is fetched into it; a local model path must exist on the node.
    """
    from llenergymeasure.orchestrator.runners.docker_engine import engine_of
    from llenergymeasure.orchestrator.runners.factory import connect_docker

    host = socket.gethostname()
    problems: list[str] = []
    uuids = _gpu_uuids()
    client, why = connect_docker()
    if client is None:
        return NodeProbe(host, uuids, (f"the Docker engine of {host} is unreachable: {why}; fix: start Docker there",))
    try:
        reaped = tuple(reap_orphans(client))
        for image in dict.fromkeys(images):
            problem = _ensure_image(engine_of(client), image, host, pull=pull)
            if problem:
                problems.append(problem)
        problems.extend(_ensure_inputs(experiments, host))
    finally:
        client.close()
    return NodeProbe(host, uuids, tuple(problems), reaped)


def run_on_node(payload: NodeRunPayload, *, client: Any = None, scratch_root: Path | None = None) -> NodeRunOutcome:
    """Run one job in a container on this node; its files and its failure (if any) in the outcome."""
    from llenergymeasure.orchestrator.runners.docker import DockerRunner
    from llenergymeasure.orchestrator.runners.factory import connect_docker

    host = socket.gethostname()
    job = ExperimentJob.model_validate_json(payload.job_json)
    root = scratch_root or Path(os.environ.get(SCRATCH_ENV_VAR) or tempfile.gettempdir()) / "llem-node-runs"
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{payload.run_dir_name}.", dir=root))
    run_dir = scratch / payload.run_dir_name
    own_client = client is None
    try:
        client, why = connect_docker(client)
        if client is None:
            return NodeRunOutcome(
                host_name=host,
                error_message=f"the Docker engine of {host} is unreachable: {why}",
                failure=ExperimentFailure(phase="container", error_type="DockerUnreachable", transient=True),
            )
        runner = DockerRunner(client, payload.images, node_docker_options(payload.docker_options, os.environ))
        request = RunRequest(
            job=job,
            run_dir=run_dir,
            name=payload.container_name,
            labels=dict(payload.labels),
            wall_timeout_s=payload.wall_timeout_s,
            silence_timeout_s=payload.silence_timeout_s,
            host_device_ids=list(payload.host_device_ids),
        )
        outcome = NodeRunOutcome(host_name=host)
        request.on_event = lambda event: outcome.event_lines.append(event_line(event))
        try:
            runner.run(request)
        except ExperimentError as e:
            outcome.error_message, outcome.failure = e.message, e.failure
        except LLEMError as e:
            outcome.error_message = e.message
            outcome.failure = ExperimentFailure(error_type=type(e).__name__, phase="container")
        try:
            outcome.files = pack_run_files(run_dir) if run_dir.is_dir() else {}
        except TransportError as e:
            outcome.error_message, outcome.failure = str(e), ExperimentFailure(error_type="TransportError")
        return outcome
    finally:
        if own_client and client is not None:
            client.close()
        shutil.rmtree(scratch, ignore_errors=True)


def cleanup_study(study_id: str) -> list[str]:
    """Force-remove every container of `study_id` on this node's Docker engine; their names."""
    from llenergymeasure.orchestrator.runners.docker_engine import engine_of
    from llenergymeasure.orchestrator.runners.factory import connect_docker

    removed: list[str] = []
    client, why = connect_docker()
    if client is None:
        logger.warning("cannot reach the Docker engine to clean up study %s: %s", study_id, why)
        return removed
    engine = engine_of(client)
    try:
        for c in engine.list_containers([f"{LABEL_STUDY_ID}={study_id}"]):
            try:
                c.remove(force=True)
                removed.append(c.name)
            except engine.errors as e:
                logger.warning("could not remove container %s: %s", c.name, e)
    except engine.errors as e:
        logger.warning("could not list the containers of study %s: %s", study_id, e)
    finally:
        client.close()
    return removed


def node_docker_options(head: DockerOptions, env: Any) -> DockerOptions:
    """The head's docker options with this node's own cache folders (each machine has its own disk)."""
    from llenergymeasure.orchestrator.runners.factory import host_dataset_cache
    from llenergymeasure.schemas.mounts import TRT_ENGINE_CACHE_HOME_SUBDIR

    return dataclasses.replace(
        head,
        hf_cache_dir=host_hf_cache(env),
        dataset_cache_dir=host_dataset_cache(),
        trt_engine_cache_dir=Path.home() / TRT_ENGINE_CACHE_HOME_SUBDIR,
    )


def _gpu_uuids() -> tuple[str, ...]:
    from llenergymeasure.orchestrator.runners.gpus import NoGpus, NvmlGpus, probe_gpus

    probe = probe_gpus()
    return tuple(probe.device_uuids()) if isinstance(probe, (NvmlGpus, NoGpus)) else ()


def _ensure_image(engine: Any, image: str, host: str, *, pull: bool) -> str | None:
    from llenergymeasure.orchestrator.image_ops import ImageError, pull_image

    try:
        engine.get_image(image)
        return None
    except engine.errors as e:
        if type(e).__name__ != "ImageNotFound":
            return f"cannot inspect image {image} on {host}: {e}"
    if not pull:
        return f"image {image} is missing on {host}; fix: pull or build it there"
    try:
        pull_image(engine, image, lambda line: logger.info("%s: %s", host, line))
    except ImageError as e:
        fix = e.fix or "push it to a registry the node can reach"
        return f"image {image} is missing on {host} and pulling it failed: {e.message}; fix: {fix}"
    return None


def _ensure_inputs(experiments: list[ExperimentConfig], host: str) -> list[str]:
    """Local inputs must exist on this node; hub models missing from its HF cache are fetched once."""
    from llenergymeasure.orchestrator.hub_fetch import HubFetchError, fetch_with_hub

    problems: list[str] = []
    cache = host_hf_cache(os.environ)
    seen: set[tuple[str, str]] = set()
    for config in experiments:
        for inp in experiment_inputs(config):
            if (inp.kind, inp.value) in seen:
                continue
            seen.add((inp.kind, inp.value))
            if inp.local_path is not None:
                if inp.kind != "dataset" and not inp.local_path.exists():
                    problems.append(f"{inp.kind} {inp.local_path} does not exist on {host}; fix: copy it there")
                continue
            if hub_snapshot(cache, inp.value) is not None:
                continue
            try:
                fetch_with_hub(inp.value, cache, token=os.environ.get("HF_TOKEN") or None)
            except HubFetchError as e:
                problems.append(f"{inp.value} is not in the HF cache of {host}: {e.message}; fix: {e.fix}")
            except Exception as e:  # huggingface_hub raises many classes (network, auth): all mean "not fetched"
                problems.append(f"{inp.value} is not in the HF cache of {host} and fetching failed: {e}")
    return problems
