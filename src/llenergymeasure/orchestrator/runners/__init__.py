"""Runners: *how* a run is isolated (docker, local subprocess), chosen per backend.

Resolution, highest first:

- runner kind: ``LLEM_RUNNER_<BACKEND>`` > user config ``runners.<backend>`` > ``docker``;
- image: ``LLEM_IMAGE_<BACKEND>`` > user config ``runners.images.<backend>`` >
  ``llenergymeasure/<backend>:<version>-<variant>``, where the variant is ``cpu`` on
  a host without NVIDIA GPUs and ``cuda12`` otherwise.

The environment overrides are applied by `load_user_config(env)`; this module
only reads the effective values. Nothing here imports docker: the concrete
runners are imported when one is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from llenergymeasure.orchestrator.user_config import EffectiveUserConfig, load_user_config

RunnerKind = Literal["docker", "local"]
CUDA_VARIANT = "cuda12"
CPU_VARIANT = "cpu"


@dataclass(frozen=True)
class RunnerChoice:
    """The runner kind and (for docker) the image of one backend, with where each came from."""

    backend: str
    kind: RunnerKind
    image: str | None
    kind_source: str
    image_source: str


def host_variant(gpu_count: int) -> str:
    """``cuda12`` where NVIDIA GPUs are visible, ``cpu`` otherwise."""
    return CUDA_VARIANT if gpu_count > 0 else CPU_VARIANT


def resolve_runner(
    backend: str,
    user_config: EffectiveUserConfig | None = None,
    env: Mapping[str, str] | None = None,
    *,
    gpu_count: int = 0,
) -> RunnerChoice:
    """Runner kind and image for `backend` (see the module docstring for the precedence)."""
    effective = user_config if user_config is not None else load_user_config(os.environ if env is None else env)
    kind = effective.runner_for(backend)
    image = effective.image_for(backend, host_variant(gpu_count)) if kind == "docker" else None
    return RunnerChoice(
        backend=backend,
        kind=kind,
        image=image,
        kind_source=effective.source_of(f"runners.{backend}"),
        image_source=effective.source_of(f"runners.images.{backend}"),
    )
