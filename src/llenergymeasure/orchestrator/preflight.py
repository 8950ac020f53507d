"""Host pre-flight: everything that can be checked before the first container starts.

Every check runs and every failure is collected; one `PreFlightError` lists them
all with a fix each, so a user fixes the host once instead of once per run.

Checks (each one only where it applies):
- docker: the daemon answers (``ping``); with GPUs asked for, the NVIDIA runtime
  is usable (daemon lists an ``nvidia`` runtime, or the NVIDIA container hook is
  installed — the two ways device requests reach the driver) — except on
  simulated GPUs (``LLEM_SIMULATE_GPUS``), which need none;
- images: each present, with label ``io.llenergymeasure.protocol`` equal to this
  host's `PROTOCOL_VERSION`, and carrying every optional feature the configs
  need (label ``io.llenergymeasure.capabilities`` against
  `required_capabilities`: zeus, codecarbon, peft, bitsandbytes, flash_attn);
- GPUs: asked-for indices exist on the host; none of them runs a foreign compute
  process (NVML; skipped when NVML is unavailable: a CPU host);
- disk: free space where the study directory goes;
- inputs: local model/adapter directories and dataset files exist; hub models
  are in the host HF cache, fetched once here when missing (the container then
  runs offline from a read-only mount), at the config's ``model_revision`` when
  set; a fetch that fails for a transient reason (network, timeout, 429/5xx) is
  retried with backoff and jitter (`retry`);
- dataset: when an experiment uses the built-in ``aienergyscore``, the pinned
  parquet is downloaded once and converted into the host dataset cache
  (`dataset_fetch`), unless the cache file there already matches the pin.

A multi-backend study that is not run entirely with Docker is refused by
`check_multi_backend` — not skippable, since backends cannot share one Python
environment.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.errors import PreFlightError, PreFlightFailure
from llenergymeasure.images import CAPABILITIES_LABEL, CAPABILITY_EXTRAS, images_with, parse_capabilities
from llenergymeasure.orchestrator.dataset_fetch import DatasetPin, prepare_dataset
from llenergymeasure.orchestrator.hub_fetch import HubFetchError, fetch_with_hub
from llenergymeasure.orchestrator.retry import RetryPolicy, is_transient_download_error
from llenergymeasure.orchestrator.runners.docker_engine import engine_of
from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions
from llenergymeasure.orchestrator.runners.gpus import GpuProbe
from llenergymeasure.orchestrator.runners.inputs import HostInput, experiment_inputs, hub_snapshot
from llenergymeasure.schemas.config.capabilities import required_capabilities
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR

logger = logging.getLogger(__name__)

#: free disk space required where results go, bytes (results + timeseries are small; logs can grow)
MIN_FREE_DISK_BYTES = 1 * 1024**3
#: (repo id, cache dir) → snapshot path; raises on failure
ModelFetcher = Callable[[str, Path], Path]
#: offline? → the prepared cache file of the built-in dataset; raises on failure
DatasetPreparer = Callable[[bool], Path]


@dataclass
class PreflightPlan:
    """What the study will need from the host."""

    experiments: Sequence[ExperimentConfig]
    runner_kinds: Mapping[str, str]  # backend → "docker" | "local"
    images: Mapping[str, str]  # backend → image (docker backends)
    host_device_ids: Sequence[Sequence[int]]  # per experiment; empty on a CPU host
    output_dir: Path
    hf_cache_dir: Path
    cwd: Path = field(default_factory=Path.cwd)
    #: host dataset cache the built-in dataset is prepared in (mounted read-only into containers); None: not prepared
    dataset_cache_dir: Path | None = None


@dataclass
class HostServices:
    """Injected clients; `docker_client` is None when connecting failed (`docker_error` says why)."""

    gpus: GpuProbe
    docker_client: Any = None
    docker_error: str | None = None
    fetch_model: ModelFetcher | None = None
    prepare_dataset: DatasetPreparer | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    which: Callable[[str], str | None] = shutil.which
    min_free_disk_bytes: int = MIN_FREE_DISK_BYTES
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # for model downloads


def check_multi_backend(runner_kinds: Mapping[str, str]) -> None:
    """A study mixing backends must run every backend in Docker (hard error, never skipped)."""
    if len(runner_kinds) > 1 and any(kind != "docker" for kind in runner_kinds.values()):
        local = sorted(b for b, k in runner_kinds.items() if k != "docker")
        raise PreFlightError(
            [
                PreFlightFailure(
                    "multi-backend",
                    f"this study uses backends {sorted(runner_kinds)} but {local} would run without Docker; "
                    "backends cannot share one Python environment",
                    "use the docker runner for every backend (unset LLEM_RUNNER_<BACKEND> / runners.<backend>: docker)",
                )
            ]
        )


def run_preflight(plan: PreflightPlan, services: HostServices) -> None:
    """Run every applicable check; raise `PreFlightError` listing all failures."""
    failures: list[PreFlightFailure] = []
    uses_docker = any(k == "docker" for k in plan.runner_kinds.values())
    # simulated GPUs (LLEM_SIMULATE_GPUS) need no NVIDIA runtime: the containers get no device request
    wants_gpus = any(ids for ids in plan.host_device_ids) and not services.env.get(SIMULATE_GPUS_ENV_VAR)
    if uses_docker:
        failures += _check_docker(plan, services, wants_gpus)
    failures += _check_gpus(plan, services)
    failures += _check_disk(plan.output_dir, services.min_free_disk_bytes)
    failures += _check_inputs(plan, services)
    failures += _check_builtin_dataset(plan, services)
    if failures:
        raise PreFlightError(failures)


def _check_docker(plan: PreflightPlan, services: HostServices, wants_gpus: bool) -> list[PreFlightFailure]:
    client = services.docker_client
    if client is None:
        return [
            PreFlightFailure(
                "docker daemon",
                f"cannot reach the Docker daemon: {services.docker_error or 'no client'}",
                "start Docker (systemctl start docker) and check `docker info` works for this user, "
                "or run with the local runner (LLEM_RUNNER_<BACKEND>=local)",
            )
        ]
    errors = docker_exceptions()
    try:
        engine_of(client).ping()
    except errors as e:
        return [PreFlightFailure("docker daemon", f"the Docker daemon does not answer: {e}", "check `docker info`")]
    failures: list[PreFlightFailure] = []
    if wants_gpus:
        failures += _check_nvidia_runtime(client, services, errors)
    for image in sorted({plan.images[b] for b, k in plan.runner_kinds.items() if k == "docker" and b in plan.images}):
        found = check_image(client, image, errors)
        failures += found or check_capabilities(client, image, _needs_of(plan, image), errors)
    return failures


def _needs_of(plan: PreflightPlan, image: str) -> dict[str, str]:
    """capability → the config field asking for it, over every experiment that runs in `image`."""
    needs: dict[str, str] = {}
    for config in plan.experiments:
        if plan.runner_kinds.get(config.backend) == "docker" and plan.images.get(config.backend) == image:
            for capability, why in required_capabilities(config).items():
                needs.setdefault(capability, why)
    return needs


def check_capabilities(
    client: Any, image: str, needs: Mapping[str, str], errors: tuple[type[BaseException], ...]
) -> list[PreFlightFailure]:
    """One failure per needed feature the image's capabilities label does not list."""
    if not needs:
        return []
    try:
        labels = engine_of(client).image_labels(image)
    except errors as e:
        return [PreFlightFailure("image", f"cannot inspect image {image}: {e}", "check the Docker daemon")]
    has = parse_capabilities(labels.get(CAPABILITIES_LABEL))
    failures = []
    for capability, why in sorted(needs.items()):
        if capability in has:
            continue
        extra = CAPABILITY_EXTRAS[capability]
        carriers = images_with(capability)
        where = (
            f"use an image that has it: {', '.join(carriers)} (set LLEM_IMAGE_<BACKEND>)"
            if carriers
            else f"no published image carries it; build one with `pip install llenergymeasure[{extra}]` on a base "
            "that has a wheel for it (`llem image build <backend> --base IMAGE`), or drop the setting"
        )
        failures.append(
            PreFlightFailure(
                "image capability",
                f"{why} needs the {capability} package, which image {image} does not carry "
                f"(its {CAPABILITIES_LABEL} label: {','.join(sorted(has)) or 'none'})",
                where,
            )
        )
    return failures


def _check_nvidia_runtime(
    client: Any, services: HostServices, errors: tuple[type[BaseException], ...]
) -> list[PreFlightFailure]:
    try:
        info = engine_of(client).info()
    except errors as e:
        return [PreFlightFailure("nvidia runtime", f"cannot read `docker info`: {e}", "check the Docker daemon")]
    if nvidia_runtime(info, services.which) is not None:
        return []
    return [
        PreFlightFailure(
            "nvidia runtime",
            "GPUs are asked for but Docker has no NVIDIA runtime (no 'nvidia' in `docker info` Runtimes, "
            "no nvidia-container-runtime-hook on PATH)",
            "install the NVIDIA Container Toolkit, then `sudo nvidia-ctk runtime configure --runtime=docker` "
            "and restart Docker",
        )
    ]


#: NVIDIA Container Toolkit programs: any of them on PATH means device requests reach the driver
NVIDIA_HOOKS = ("nvidia-container-runtime-hook", "nvidia-container-runtime", "nvidia-ctk")


def nvidia_runtime(info: Mapping[str, Any], which: Callable[[str], str | None] = shutil.which) -> str | None:
    """How GPU device requests reach the driver on this Docker host, or None when they cannot.

    ``"runtime"``: the daemon lists an ``nvidia`` runtime (``docker info`` Runtimes or
    DefaultRuntime); ``"hook"``: the NVIDIA container hook is installed (CDI / toolkit).
    The one rule used by pre-flight and ``llem config``.
    """
    runtimes = set((info.get("Runtimes") or {}).keys()) | {str(info.get("DefaultRuntime", ""))}
    if "nvidia" in runtimes:
        return "runtime"
    if any(which(h) for h in NVIDIA_HOOKS):
        return "hook"
    return None


def check_image(client: Any, image: str, errors: tuple[type[BaseException], ...]) -> list[PreFlightFailure]:
    try:
        found = engine_of(client).get_image(image)
    except errors as e:
        if type(e).__name__ == "ImageNotFound":
            return [
                PreFlightFailure(
                    "image",
                    f"image {image} is not present on this host",
                    f"`docker pull {image}` (`llem image pull` pulls every default image), or build it here "
                    "(`llem image build <backend>`; `make image-cpu` for the CPU image), "
                    "or point LLEM_IMAGE_<BACKEND> at an image you have",
                )
            ]
        return [PreFlightFailure("image", f"cannot inspect image {image}: {e}", "check the Docker daemon")]
    label = (getattr(found, "labels", None) or {}).get(PROTOCOL_LABEL)
    if label != str(PROTOCOL_VERSION):
        what = "has no protocol label" if label is None else f"speaks protocol {label}"
        return [
            PreFlightFailure(
                "image protocol",
                f"image {image} {what}; this llem speaks protocol {PROTOCOL_VERSION} ({PROTOCOL_LABEL})",
                "rebuild the image from this version of llenergymeasure, or install the llem version matching the image",
            )
        ]
    return []


def nvml_init_failure(nvml_error: str) -> PreFlightFailure:
    """A GPU host whose NVML does not initialise: named, with the fixes (pre-flight and ``llem config``)."""
    return PreFlightFailure(
        "gpus",
        f"the NVIDIA driver library is installed but NVML fails to initialise ({nvml_error}); "
        "experiments would run on CPU with no energy measurement",
        "check `nvidia-smi`: a driver/library version mismatch needs a reboot or a driver reinstall; "
        "'insufficient permissions' needs access to /dev/nvidia* (run as a user in the video group); "
        "on a host meant to run on CPU, uninstall the NVIDIA driver library",
    )


def _check_gpus(plan: PreflightPlan, services: HostServices) -> list[PreFlightFailure]:
    failures: list[PreFlightFailure] = []
    nvml_error = getattr(services.gpus, "nvml_error", None)
    if nvml_error:
        return [nvml_init_failure(nvml_error)]
    count = services.gpus.device_count()
    asked = sorted({i for e in plan.experiments if e.gpus for i in e.gpus})
    if asked and count == 0:
        failures.append(
            PreFlightFailure(
                "gpus",
                f"gpus {asked} are asked for but this host has no NVIDIA GPU (NVML finds none)",
                "remove `gpus:` from the config to run on CPU, or run on a GPU host",
            )
        )
        return failures
    missing = [i for i in asked if i >= count]
    if missing:
        failures.append(
            PreFlightFailure(
                "gpus", f"GPU indices {missing} do not exist (this host has {count})", f"use indices 0..{count - 1}"
            )
        )
    used = sorted({i for ids in plan.host_device_ids for i in ids if i < count})
    own = frozenset({os.getpid()})
    for index in used:
        try:
            foreign = services.gpus.foreign_processes(index, own)
        except Exception as e:  # NVMLError: the query is unsupported on this device; not a reason to refuse
            logger.debug("cannot list processes on GPU %d: %s", index, e)
            continue
        if foreign:
            failures.append(
                PreFlightFailure(
                    "gpus",
                    f"GPU {index} is busy: compute processes {foreign} would distort the energy measurement",
                    "stop them (nvidia-smi shows them) or pin the study to other GPUs with `gpus:`",
                )
            )
    return failures


def _check_disk(output_dir: Path, min_free: int) -> list[PreFlightFailure]:
    probe = output_dir.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError as e:
        return [PreFlightFailure("disk", f"cannot read free space at {probe}: {e}", "check --output")]
    if free < min_free:
        return [
            PreFlightFailure(
                "disk",
                f"only {free / 1024**3:.2f} GiB free at {probe} (need {min_free / 1024**3:.2f} GiB)",
                "free some space or choose another --output",
            )
        ]
    return []


def _check_inputs(plan: PreflightPlan, services: HostServices) -> list[PreFlightFailure]:
    failures: list[PreFlightFailure] = []
    seen: set[tuple[str, str, str | None]] = set()
    for config in plan.experiments:
        for inp in experiment_inputs(config, plan.cwd):
            revision = config.model_revision if inp.kind == "model" else None
            if (inp.kind, inp.value, revision) in seen:
                continue
            seen.add((inp.kind, inp.value, revision))
            if inp.is_local:
                failure = _check_local(inp, config.backend, revision)
            else:
                failure = _ensure_cached(inp, plan, services, revision)
            if failure is not None:
                failures.append(failure)
    return failures


def _check_local(inp: HostInput, backend: str, revision: str | None = None) -> PreFlightFailure | None:
    path = inp.local_path
    assert path is not None
    if revision is not None:  # a bare name that is an existing directory here: the schema could not tell
        return PreFlightFailure(
            "model",
            f"model_revision {revision} is set but model {inp.value} is the local directory {path}",
            "remove model_revision (a local directory has no revisions) or give a hub id as model",
        )
    if inp.kind == "dataset":
        if not path.is_file():
            return PreFlightFailure("dataset", f"dataset file {path} does not exist", "fix the `dataset:` path")
        return None
    if not path.is_dir():
        return PreFlightFailure(
            inp.kind, f"{inp.kind} directory {path} does not exist", f"fix the `{_field(inp)}:` path"
        )
    marker = "adapter_config.json" if inp.kind == "adapter" else "config.json"
    if backend != "tensorrt" and not (path / marker).is_file():
        return PreFlightFailure(
            inp.kind, f"{path} has no {marker}: not a saved model", "point it at a directory written by save_pretrained"
        )
    return None


def _ensure_cached(
    inp: HostInput, plan: PreflightPlan, services: HostServices, revision: str | None = None
) -> PreFlightFailure | None:
    """Hub id: present in the host cache (at `revision`), or fetched into it now (once, on the host)."""
    if hub_snapshot(plan.hf_cache_dir, inp.value, revision) is not None:
        return None
    at = f" at revision {revision}" if revision else ""
    if _offline(services):
        download = f"huggingface-cli download {inp.value}" + (f" --revision {revision}" if revision else "")
        return PreFlightFailure(
            inp.kind,
            f"{inp.value}{at} is not in the HF cache {plan.hf_cache_dir} and HF_HUB_OFFLINE is set",
            f"fetch it on a connected host (`{download}`) or unset HF_HUB_OFFLINE",
        )

    def fetch_from_env(repo_id: str, cache_dir: Path) -> Path:
        env = services.env
        return fetch_with_hub(
            repo_id,
            cache_dir,
            revision,
            endpoint=env.get("HF_ENDPOINT") or None,
            token=env.get("HF_TOKEN") or None,
            attempts=1,  # one layer of retries: services.retry, below, around any fetcher
        )

    fetch = services.fetch_model or fetch_from_env
    try:
        services.retry.call(
            lambda: fetch(inp.value, plan.hf_cache_dir),
            is_transient=is_transient_download_error,
            what=f"fetching {inp.value}",
        )
    except HubFetchError as e:
        return PreFlightFailure(inp.kind, f"{e.message}; it is not in the HF cache {plan.hf_cache_dir}", e.fix)
    except Exception as e:  # huggingface_hub raises many classes (network, auth, not found): all mean "not fetched"
        return PreFlightFailure(
            inp.kind,
            f"{inp.value}{at} is not in the HF cache {plan.hf_cache_dir} and fetching it failed: "
            f"{type(e).__name__}: {e}",
            "check the id and your network, set HF_TOKEN for gated models, or pass a local directory",
        )
    if hub_snapshot(plan.hf_cache_dir, inp.value, revision) is None:
        return PreFlightFailure(
            inp.kind,
            f"{inp.value}{at} was fetched but no snapshot appeared in {plan.hf_cache_dir}",
            "check HF_HUB_CACHE",
        )
    logger.info("fetched %s%s into %s", inp.value, at, plan.hf_cache_dir)
    return None


def _offline(services: HostServices) -> bool:
    return services.env.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _check_builtin_dataset(plan: PreflightPlan, services: HostServices) -> list[PreFlightFailure]:
    """The built-in dataset prepared in the host dataset cache (downloaded once; kept while it matches the pin)."""
    if plan.dataset_cache_dir is None or not any(c.dataset == "aienergyscore" for c in plan.experiments):
        return []
    cache_dir = plan.dataset_cache_dir
    pin = DatasetPin()

    def prepare_from_env(offline: bool) -> Path:
        env = services.env
        return prepare_dataset(
            cache_dir,
            plan.hf_cache_dir,
            pin,
            endpoint=env.get("HF_ENDPOINT") or None,
            token=env.get("HF_TOKEN") or None,
            offline=offline,
            attempts=services.retry.attempts,
            sleep=services.retry.sleep,
        )

    prepare = services.prepare_dataset or prepare_from_env
    try:
        prepare(_offline(services))
    except HubFetchError as e:
        return [PreFlightFailure("dataset", f"aienergyscore: {e.message}", e.fix)]
    except Exception as e:  # network, file and parquet errors: all mean "not prepared"
        return [
            PreFlightFailure(
                "dataset",
                f"aienergyscore ({pin.repo} revision {pin.revision[:12]}) could not be prepared in {cache_dir}: "
                f"{type(e).__name__}: {e}",
                "check your network and HF_ENDPOINT, or set dataset to a local JSONL file",
            )
        ]
    return []


def _field(inp: HostInput) -> str:
    return {"model": "model", "adapter": "lora.adapter", "dataset": "dataset"}[inp.kind]
