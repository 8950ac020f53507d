"""What the head decides before a study goes to a Ray cluster: each backend's image, the docker options.

On a cluster the head runs no container, so it checks neither its own Docker engine nor its
own GPUs (the nodes are probed instead, ray_dispatcher.probe_cluster). It resolves:

- the image of each backend as `resolve_runner` does (``LLEM_IMAGE_<BACKEND>`` >
  ``runners.images`` > the default tag), for a GPU host — the head itself usually has no
  GPU, the nodes do — unless ``LLEM_SIMULATE_GPUS`` is set here (a rehearsal: the CPU image);
- the docker options of the user config (shm size, network, secrets allow-list); each node
  replaces the cache folders with its own.

Every backend must use the docker runner: a ``local`` runner would run in the Ray worker's
own Python environment, outside the container contract; that is a `ConfigError` (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.orchestrator.runners import resolve_runner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.factory import docker_options_from
from llenergymeasure.orchestrator.runners.inputs import host_hf_cache
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR


@dataclass(frozen=True)
class ClusterPlan:
    """backend → image, and the docker options every node starts from."""

    images: dict[str, str]
    docker_options: DockerOptions


def plan_cluster(
    experiments: Sequence[ExperimentConfig],
    user: EffectiveUserConfig,
    env: Mapping[str, str],
    docker_options: DockerOptions | None = None,
) -> ClusterPlan:
    """The `ClusterPlan` of a study (module docstring); `ConfigError` for a backend that is not run in Docker."""
    cuda_gpus = 0 if env.get(SIMULATE_GPUS_ENV_VAR) else 1
    images: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for backend in sorted({str(e.backend) for e in experiments}):
        choice = resolve_runner(backend, user, gpu_count=cuda_gpus)
        if choice.kind != "docker" or choice.image is None:
            issues.append(
                ConfigIssue(
                    f"runners.{backend}",
                    f"{backend} is set to the {choice.kind} runner ({choice.kind_source}); on a Ray cluster every run "
                    "goes into a container on its node",
                    f"unset LLEM_RUNNER_{backend.upper()} / set runners.{backend}: docker, or run without --ray",
                )
            )
            continue
        images[backend] = choice.image
    if issues:
        raise ConfigError("a Ray cluster runs every backend with the docker runner", issues=issues)
    options = docker_options or docker_options_from(user, host_hf_cache(env))
    return ClusterPlan(images, options)
