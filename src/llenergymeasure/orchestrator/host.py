"""The host side of a run, shared by `run_study` and `run_experiment`: runners, pre-flight, reaping.

One policy for the CLI and the library: each backend's runner is resolved
(``LLEM_RUNNER_<BACKEND>`` > user config ``runners.<backend>`` > docker) unless one is
given (`runners.factory.wire_runners`, the one place runners are wired); the
multi-backend rule is checked (never skippable); the host pre-flight runs (every
failure at once; skipped only with ``skip_preflight``) on what each runner says it
needs (`Runner.preflight_needs`); each runner reaps what dead llem processes left
(`Runner.reap`). Nothing here knows about studies or cycles, nor which runner is Docker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llenergymeasure.errors import PreFlightError, PreFlightFailure
from llenergymeasure.orchestrator.gpu_assignment import device_ids_for
from llenergymeasure.orchestrator.preflight import (
    HostServices,
    ModelFetcher,
    PreflightPlan,
    check_multi_backend,
    run_preflight,
)
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.factory import (
    RunnerInput,
    WiredRunners,
    docker_options_from,
    host_dataset_cache,
    wire_runners,
)
from llenergymeasure.orchestrator.runners.gpus import GpuProbe, probe_gpus
from llenergymeasure.orchestrator.runners.inputs import host_hf_cache
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig, load_user_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR

logger = logging.getLogger(__name__)


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
    runners: WiredRunners


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
    # simulated GPUs are not CUDA devices: the model runs on CPU, so the image is the CPU variant
    cuda_gpus = 0 if opts.env.get(SIMULATE_GPUS_ENV_VAR) else gpu_count
    runners = wire_runners(
        sorted({str(e.backend) for e in experiments}),
        given=opts.runner,
        user=user,
        cuda_gpu_count=cuda_gpus,
        docker_options=docker_options,
        docker_client=opts.docker_client,
    )
    check_multi_backend(runners.kinds)
    for backend, runner in runners.runners.items():
        logger.debug("%s runs with the %s runner: %s", backend, runner.name, runner.label(backend))

    if not opts.skip_preflight:
        plan = PreflightPlan(
            experiments=experiments,
            runner_kinds=runners.kinds,
            images=runners.images(),
            host_device_ids=[device_ids_for(e, gpu_count) for e in experiments],
            output_dir=output_dir,
            hf_cache_dir=docker_options.hf_cache_dir or hf_cache,
            dataset_cache_dir=docker_options.dataset_cache_dir or host_dataset_cache(opts.env),
        )
        services = HostServices(
            gpus=gpus,
            docker_client=runners.engine(),
            docker_error=runners.unavailable,
            fetch_model=opts.fetch_model,
            env=opts.env,
        )
        run_preflight(plan, services)
    elif runners.unavailable is not None:
        why = f"cannot reach the Docker daemon: {runners.unavailable}"
        raise PreFlightError([PreFlightFailure("docker daemon", why, "start Docker")])
    reaped = runners.reap()
    if reaped:
        logger.warning(
            "removed %d container(s) left by a llem process that is gone: %s", len(reaped), ", ".join(reaped)
        )
    return PreparedHost(user, gpu_count, runners)
