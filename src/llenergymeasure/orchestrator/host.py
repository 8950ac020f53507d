"""The host side of a run, shared by `run_study` and `run_experiment`: runners, pre-flight, reaping.

One policy for the CLI and the library: each backend's runner is resolved
(``LLEM_RUNNER_<BACKEND>`` > user config ``runners.<backend>`` > docker) unless one is
given; the multi-backend rule is checked (never skippable); the host pre-flight runs
(every failure at once; skipped only with ``skip_preflight``); containers left by dead
llem processes are reaped. Nothing here knows about studies or cycles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llenergymeasure.errors import ConfigError, PreFlightError, PreFlightFailure
from llenergymeasure.orchestrator.preflight import (
    HostServices,
    ModelFetcher,
    PreflightPlan,
    check_multi_backend,
    device_ids_for,
    run_preflight,
)
from llenergymeasure.orchestrator.runners import RunnerChoice, resolve_runner
from llenergymeasure.orchestrator.runners.base import Runner
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.factory import (
    build_runners,
    connect_docker,
    docker_options_from,
    host_dataset_cache,
)
from llenergymeasure.orchestrator.runners.gpus import GpuProbe, probe_gpus
from llenergymeasure.orchestrator.runners.inputs import host_hf_cache
from llenergymeasure.orchestrator.runners.reaper import reap_orphans
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig, load_user_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR

logger = logging.getLogger(__name__)

RunnerInput = Runner | Mapping[str, Runner] | None


@dataclass
class HostOptions:
    """Keyword arguments shared by `run_study` and `run_experiment`.

    - ``runner``: a `Runner` for every backend, or a mapping backend → `Runner`;
      default: resolved per backend (``LLEM_RUNNER_<BACKEND>`` > user config > docker).
    - ``skip_preflight``: skip the host pre-flight (the multi-backend rule still applies).
    - ``user_config``, ``docker_client``, ``docker_options``, ``gpu_probe``, ``fetch_model``,
      ``env``: injected collaborators (tests, embedding); each defaults to the real one for this host.
    - ``dataset_cache_dir``: the host dataset cache pre-flight prepares the built-in dataset in and
      containers mount (a run context's ``dataset_cache_dir``); default: the user cache's.
    """

    runner: RunnerInput = None
    skip_preflight: bool = False
    user_config: EffectiveUserConfig | None = None
    docker_client: Any = None
    docker_options: DockerOptions | None = None
    gpu_probe: GpuProbe | None = None
    fetch_model: ModelFetcher | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    dataset_cache_dir: Path | None = None


@dataclass
class PreparedHost:
    """What a run needs from the host once it passed pre-flight."""

    user: EffectiveUserConfig
    gpu_count: int
    runners: HostRunners


def prepare_host(
    experiments: Sequence[ExperimentConfig],
    output_dir: Path,
    opts: HostOptions,
    user: EffectiveUserConfig | None = None,
) -> PreparedHost:
    """Resolve runners, check the multi-backend rule, run the pre-flight, reap orphans (module docstring)."""
    user = user or opts.user_config or load_user_config(opts.env)
    gpus = opts.gpu_probe or probe_gpus()
    gpu_count = gpus.device_count()
    hf_cache = host_hf_cache(opts.env)
    docker_options = opts.docker_options or docker_options_from(user, hf_cache, opts.env)
    if opts.dataset_cache_dir is not None:  # one folder: prepared by pre-flight, read by the harness
        docker_options = replace(docker_options, dataset_cache_dir=opts.dataset_cache_dir)
    runners = _resolve_runners(experiments, opts, user, gpu_count, docker_options)
    check_multi_backend(runners.kinds)

    if not opts.skip_preflight:
        plan = PreflightPlan(
            experiments=experiments,
            runner_kinds=runners.kinds,
            images=runners.images,
            host_device_ids=[device_ids_for(e, gpu_count) for e in experiments],
            output_dir=output_dir,
            hf_cache_dir=docker_options.hf_cache_dir or hf_cache,
            dataset_cache_dir=docker_options.dataset_cache_dir or host_dataset_cache(opts.env),
        )
        services = HostServices(
            gpus=gpus,
            docker_client=runners.client,
            docker_error=runners.docker_error,
            fetch_model=opts.fetch_model,
            env=opts.env,
        )
        run_preflight(plan, services)
    elif runners.docker_error is not None:
        why = f"cannot reach the Docker daemon: {runners.docker_error}"
        raise PreFlightError([PreFlightFailure("docker daemon", why, "start Docker")])
    if runners.client is not None:
        _reap(runners.client)
    return PreparedHost(user, gpu_count, runners)


@dataclass
class HostRunners:
    """The runner of each backend, its kind and image, and the Docker client behind them (if any)."""

    kinds: dict[str, str]
    images: dict[str, str]
    runner_for: Callable[[str], Runner]
    client: Any = None
    docker_error: str | None = None


def _resolve_runners(
    experiments: Sequence[ExperimentConfig],
    opts: HostOptions,
    user: EffectiveUserConfig,
    gpu_count: int,
    docker_options: DockerOptions,
) -> HostRunners:
    backends = sorted({str(e.backend) for e in experiments})
    if opts.runner is not None:
        given = {b: opts.runner for b in backends} if isinstance(opts.runner, Runner) else dict(opts.runner)
        missing = sorted(set(backends) - set(given))
        if missing:
            raise ConfigError(f"no runner given for backend(s) {missing}")
        images: dict[str, str] = {}
        client = None
        for backend in backends:
            if isinstance(given[backend], DockerRunner):
                docker_runner = given[backend]
                assert isinstance(docker_runner, DockerRunner)
                client = docker_runner.client
                images[backend] = docker_runner.image_for(backend)
        return HostRunners({b: given[b].name for b in backends}, images, lambda b: given[b], client)

    # simulated GPUs are not CUDA devices: the model runs on CPU, so the image is the CPU variant
    cuda_gpus = 0 if opts.env.get(SIMULATE_GPUS_ENV_VAR) else gpu_count
    choices: dict[str, RunnerChoice] = {b: resolve_runner(b, user, gpu_count=cuda_gpus) for b in backends}
    kinds = {b: str(c.kind) for b, c in choices.items()}
    images = {b: c.image for b, c in choices.items() if c.image is not None}
    client, docker_error = None, None
    if any(k == "docker" for k in kinds.values()):
        client, docker_error = connect_docker(opts.docker_client)
    if docker_error is not None:  # pre-flight reports it (with everything else) before any runner is used
        return HostRunners(kinds, images, _unavailable, None, docker_error)
    built = build_runners(choices, docker_client=client, docker_options=docker_options)
    return HostRunners(kinds, images, lambda b: built[b], client)


def _unavailable(backend: str) -> Runner:
    raise PreFlightError([PreFlightFailure("docker daemon", "the Docker daemon is unreachable", "start Docker")])


def _reap(client: Any) -> None:
    reaped = reap_orphans(client)
    if reaped:
        logger.warning(
            "removed %d container(s) left by a llem process that is gone: %s", len(reaped), ", ".join(reaped)
        )
