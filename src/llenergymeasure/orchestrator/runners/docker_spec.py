"""Pure translation: one `RunRequest` → the arguments of one container (docs/contract.md).

Nothing here talks to Docker; `ContainerSpec.create_kwargs()` is what
`DockerRunner` hands to ``client.containers.create``. Keeping the translation pure
makes every rule of the contract a unit test over plain data.

Decisions:
- Container paths (`schemas.mounts`, shared with the harness): ``/results`` (the run directory, read-write, the only writable
  mount); ``/llem/models/<name>``, ``/llem/data/<name>``, ``/llem/adapters/<name>``
  for local inputs (read-only); ``/llem/hf-cache`` for the host's HF hub cache
  (read-only, with ``HF_HUB_OFFLINE=1`` when nothing needs fetching);
  ``/llem/datasets`` for the host's dataset cache (read-only). The job's config copy
  is rewritten to the container paths, so the harness never sees a host path.
  The rewritten config has its own `measurement_config_hash`; the host keeps the
  original hash in the manifest (see docs/contract.md).
- Network: ``none`` unless something must be fetched from inside (a hub model
  missing from the cache at its ``model_revision``, a built-in dataset with no
  prepared file in the dataset cache — both only when the host pre-flight, which
  fetches them, was skipped), or the user set a network mode explicitly.
- Secrets: only `SECRET_ENV_ALLOWLIST`, only if set on the host. The spec's
  ``repr`` masks them; nothing in this module writes files.
- GPUs: one device request with the host ids; the container sees them pinned,
  so the job's ``device_ids`` are their worker indices (`schemas.devices`).
- Simulated GPUs (``LLEM_SIMULATE_GPUS`` on the host): the spec file is mounted
  read-only at ``/llem/simulated-gpus.json`` and the variable points there; no
  device request, no NVIDIA runtime; ``device_ids`` are the host indices (the
  container sees every simulated device, unpinned).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.inputs import HostInput, experiment_inputs, hub_snapshot
from llenergymeasure.schemas.config.capabilities import MULTI_PROCESS_BACKENDS
from llenergymeasure.schemas.config.experiment import BUILTIN_DATASETS, ExperimentConfig
from llenergymeasure.schemas.datasets import AIENERGYSCORE_CACHE_FILE
from llenergymeasure.schemas.devices import worker_device_ids
from llenergymeasure.schemas.job import DEFAULT_RESULTS_DIR, RESULTS_DIR_ENV_VAR, ExperimentJob, to_env
from llenergymeasure.schemas.mounts import (
    CONTAINER_DATASET_CACHE,
    CONTAINER_ENGINE_DIR,
    CONTAINER_HF_CACHE,
    CONTAINER_INPUT_DIRS,
    CONTAINER_TRT_ENGINE_CACHE,
    TRT_ENGINE_CACHE_ENV_VAR,
)
from llenergymeasure.schemas.simulated_gpus import CONTAINER_SIMULATED_GPUS_SPEC, SIMULATE_GPUS_ENV_VAR

#: environment variables forwarded from the host when set there — nothing else is
SECRET_ENV_ALLOWLIST: tuple[str, ...] = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
#: the harness entrypoint inside the image
HARNESS_COMMAND: tuple[str, ...] = ("python", "-m", "llenergymeasure.harness")
#: /dev/shm of single-GPU vLLM / TensorRT-LLM runs when the user config gives none (their workers share tensors)
ENGINE_SHM_SIZE = "8g"

#: file a built-in dataset is cached as in a dataset cache directory (the harness's datasets module reads it)
DATASET_CACHE_FILES = {"aienergyscore": AIENERGYSCORE_CACHE_FILE}

#: a callable that may replace the harness command for one job (test seam: fault injection)
CommandOverride = Callable[[ExperimentJob], Sequence[str] | None]


@dataclass(frozen=True)
class DockerOptions:
    """Operational knobs of the docker runner (user config ``runners.docker`` + API arguments)."""

    shm_size: str | None = None
    network_mode: str | None = None  # None = automatic ("none" unless something must be fetched)
    mem_limit: str | None = None  # e.g. "4g"; None = no limit
    user: str | None = None  # "uid:gid"; None = the invoking user's
    hf_cache_dir: Path | None = None  # host HF hub cache to mount read-only
    dataset_cache_dir: Path | None = None  # host dataset cache to mount read-only
    trt_engine_cache_dir: Path | None = None  # host TensorRT-LLM engine cache, mounted read-write for tensorrt runs
    stop_timeout_s: float = 10.0  # SIGTERM → SIGKILL grace when a container must be stopped
    extra_env: Mapping[str, str] = field(default_factory=dict)  # non-secret variables (e.g. log level knobs)
    secret_env_allowlist: tuple[str, ...] = SECRET_ENV_ALLOWLIST  # + user config runners.docker.extra_env_allowlist
    command_override: CommandOverride | None = None


@dataclass(frozen=True)
class DeviceRequestSpec:
    """Plain-data form of ``docker.types.DeviceRequest``."""

    device_ids: tuple[str, ...]
    capabilities: tuple[tuple[str, ...], ...] = (("gpu",),)
    driver: str = "nvidia"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything ``containers.create`` needs for one run."""

    image: str
    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str]
    volumes: Mapping[str, Mapping[str, str]]  # host path → {"bind": container path, "mode": "ro"|"rw"}
    labels: Mapping[str, str]
    user: str
    network_mode: str
    shm_size: str | None
    ipc_mode: str | None
    mem_limit: str | None
    device_request: DeviceRequestSpec | None
    job: ExperimentJob  # the job as sent (paths rewritten)
    secret_names: frozenset[str] = frozenset()

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create`` (device request added by the caller)."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "name": self.name,
            "entrypoint": list(self.command),
            "command": [],
            "environment": dict(self.environment),
            "volumes": {host: dict(bind) for host, bind in self.volumes.items()},
            "labels": dict(self.labels),
            "user": self.user,
            "init": True,
            "network_mode": self.network_mode,
            "detach": True,
            "stdin_open": False,
            "tty": False,
        }
        if self.ipc_mode:
            kwargs["ipc_mode"] = self.ipc_mode  # the host's /dev/shm: a shm_size would be meaningless
        elif self.shm_size:
            kwargs["shm_size"] = self.shm_size
        if self.mem_limit:
            kwargs["mem_limit"] = self.mem_limit
            kwargs["memswap_limit"] = self.mem_limit  # no swap: a memory limit means an OOM kill, not thrashing
        return kwargs

    def __repr__(self) -> str:  # never show secret values, even in a debugger or a log line
        env = {
            k: ("***" if k in self.secret_names else (v if len(v) < 80 else v[:77] + "..."))
            for k, v in self.environment.items()
        }
        return f"ContainerSpec(image={self.image!r}, name={self.name!r}, env={env!r}, volumes={dict(self.volumes)!r})"


_NAME_BAD = re.compile(r"[^a-zA-Z0-9_.-]+")


def default_user(uid: int, gid: int) -> str:
    return f"{uid}:{gid}"


@dataclass(frozen=True)
class _Mounts:
    volumes: dict[str, dict[str, str]]
    config: ExperimentConfig
    needs_network: bool
    hub_offline: bool


def _container_path(inp: HostInput, taken: set[str]) -> str:
    assert inp.local_path is not None
    base = CONTAINER_INPUT_DIRS[inp.kind]
    name = _NAME_BAD.sub("-", inp.local_path.name) or inp.kind
    target, n = f"{base}/{name}", 1
    while target in taken:
        n += 1
        target = f"{base}/{name}-{n}"
    taken.add(target)
    return target


def plan_mounts(config: ExperimentConfig, run_dir: Path, options: DockerOptions, cwd: Path | None = None) -> _Mounts:
    """Mounts for one run and the config copy rewritten to container paths."""
    volumes: dict[str, dict[str, str]] = {str(run_dir.resolve()): {"bind": DEFAULT_RESULTS_DIR, "mode": "rw"}}
    taken: set[str] = set()
    updates: dict[str, Any] = {}
    hub_ids: list[str] = []
    for inp in experiment_inputs(config, cwd):
        if inp.local_path is None:
            hub_ids.append(inp.value)
            continue
        target = _container_path(inp, taken)
        volumes[str(inp.local_path)] = {"bind": target, "mode": "ro"}
        if inp.kind == "model":
            updates["model"] = target
        elif inp.kind == "dataset":
            updates["dataset"] = target
        elif config.lora is not None:
            updates["lora"] = config.lora.model_copy(update={"adapter": target})

    needs_network = False
    if hub_ids:
        cache = options.hf_cache_dir
        revisions = {config.model: config.model_revision}  # the model's pinned snapshot; adapters at main
        missing = [h for h in hub_ids if cache is None or hub_snapshot(cache, h, revisions.get(h)) is None]
        if missing:
            # only reachable with pre-flight skipped: the harness fetches into the container's own
            # (ephemeral) HF_HOME, because the host cache is mounted read-only
            needs_network = True
        elif cache is not None:
            volumes[str(cache.resolve())] = {"bind": CONTAINER_HF_CACHE, "mode": "ro"}
    if isinstance(config.dataset, str) and config.dataset in BUILTIN_DATASETS:
        cache_file = DATASET_CACHE_FILES.get(config.dataset, f"{config.dataset}.jsonl")
        if options.dataset_cache_dir is not None and (options.dataset_cache_dir / cache_file).is_file():
            volumes[str(options.dataset_cache_dir.resolve())] = {"bind": CONTAINER_DATASET_CACHE, "mode": "ro"}
        else:
            needs_network = True  # the harness fetches it (pinned revision) into the container's own cache
    if config.backend == "tensorrt":
        if options.trt_engine_cache_dir is not None:
            # created here so the bind mount is a directory owned by the invoking user, not root
            options.trt_engine_cache_dir.mkdir(parents=True, exist_ok=True)
            volumes[str(options.trt_engine_cache_dir.resolve())] = {"bind": CONTAINER_TRT_ENGINE_CACHE, "mode": "rw"}
        if config.tensorrt is not None and config.tensorrt.engine_path:
            engine = Path(config.tensorrt.engine_path).expanduser().resolve()
            volumes[str(engine)] = {"bind": CONTAINER_ENGINE_DIR, "mode": "ro"}
            updates["tensorrt"] = config.tensorrt.model_copy(update={"engine_path": CONTAINER_ENGINE_DIR})
    rewritten = config.model_copy(update=updates) if updates else config
    return _Mounts(volumes, rewritten, needs_network, hub_offline=bool(hub_ids) and not needs_network)


def shm_and_ipc(config: ExperimentConfig, options: DockerOptions) -> tuple[str | None, str | None]:
    """(shm_size, ipc_mode) for one run.

    vLLM and TensorRT-LLM move tensors between worker processes through shared
    memory: multi-GPU runs share the host's IPC namespace (what both projects
    document for NCCL/MPI), single-GPU runs get `ENGINE_SHM_SIZE` unless the user
    config sets ``runners.docker.shm_size``. PyTorch runs in one process: Docker's
    default /dev/shm unless configured.
    """
    if config.device_count() > 1 and config.backend in MULTI_PROCESS_BACKENDS:
        return None, "host"
    if options.shm_size:
        return options.shm_size, None
    return (ENGINE_SHM_SIZE if config.backend in MULTI_PROCESS_BACKENDS else None), None


def build_spec(
    request: RunRequest,
    image: str,
    options: DockerOptions,
    *,
    host_env: Mapping[str, str],
    host_user: str,
    cwd: Path | None = None,
) -> ContainerSpec:
    """Translate one run into a `ContainerSpec` (pure: reads only the paths it mounts)."""
    job = request.job
    mounts = plan_mounts(job.config, request.run_dir, options, cwd)
    host_ids = list(request.host_device_ids)
    simulated_spec = simulated_gpu_spec(host_env, cwd)
    if simulated_spec is not None:
        mounts.volumes[str(simulated_spec)] = {"bind": CONTAINER_SIMULATED_GPUS_SPEC, "mode": "ro"}
    context = job.context.model_copy(
        update={
            "image": image,
            "host_device_ids": host_ids,
            # simulated GPUs are not pinned: the container sees every device of the spec, by its host index
            "device_ids": worker_device_ids(host_ids, pinned=simulated_spec is None),
            "dataset_cache_dir": CONTAINER_DATASET_CACHE if CONTAINER_DATASET_CACHE in _binds(mounts.volumes) else None,
            "submitted_config": job.config if mounts.config is not job.config else None,
        }
    )
    sent = job.model_copy(update={"config": mounts.config, "context": context})

    env: dict[str, str] = {"PYTHONUNBUFFERED": "1", RESULTS_DIR_ENV_VAR: DEFAULT_RESULTS_DIR}
    env.update(options.extra_env)
    if CONTAINER_HF_CACHE in _binds(mounts.volumes):
        env["HF_HUB_CACHE"] = CONTAINER_HF_CACHE
    if mounts.hub_offline:
        env["HF_HUB_OFFLINE"] = "1"
    if CONTAINER_TRT_ENGINE_CACHE in _binds(mounts.volumes):
        env[TRT_ENGINE_CACHE_ENV_VAR] = CONTAINER_TRT_ENGINE_CACHE
    if simulated_spec is not None:
        env[SIMULATE_GPUS_ENV_VAR] = CONTAINER_SIMULATED_GPUS_SPEC
    secrets = {k: host_env[k] for k in options.secret_env_allowlist if host_env.get(k)}
    env.update(secrets)
    env.update(to_env(sent))

    network = options.network_mode or ("bridge" if mounts.needs_network else "none")
    shm, ipc = shm_and_ipc(job.config, options)
    command = tuple(HARNESS_COMMAND)
    if options.command_override is not None:
        override = options.command_override(sent)
        if override is not None:
            command = tuple(override)
    return ContainerSpec(
        image=image,
        name=request.name,
        command=command,
        environment=env,
        volumes=mounts.volumes,
        labels=dict(request.labels),
        user=options.user or host_user,
        network_mode=network,
        shm_size=shm,
        ipc_mode=ipc,
        mem_limit=options.mem_limit,
        device_request=DeviceRequestSpec(tuple(str(i) for i in host_ids)) if host_ids and not simulated_spec else None,
        job=sent,
        secret_names=frozenset(secrets),
    )


def simulated_gpu_spec(host_env: Mapping[str, str], cwd: Path | None = None) -> Path | None:
    """The host's simulated-GPU spec file (absolute) when ``LLEM_SIMULATE_GPUS`` is set, else None."""
    value = host_env.get(SIMULATE_GPUS_ENV_VAR, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else ((cwd or Path.cwd()) / path).resolve()


def _binds(volumes: Mapping[str, Mapping[str, str]]) -> set[str]:
    return {b["bind"] for b in volumes.values()}


def with_labels(spec: ContainerSpec, extra: Mapping[str, str]) -> ContainerSpec:
    """A copy of `spec` with more labels (the runner adds the host-process labels)."""
    return replace(spec, labels={**spec.labels, **extra})
