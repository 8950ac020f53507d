"""Runners: *how* a run is isolated (docker, local subprocess), chosen per backend.

Resolution, highest first:

- runner kind: ``LLEM_RUNNER_<BACKEND>`` > user config ``runners.<backend>`` > ``docker``;
- image: ``LLEM_IMAGE_<BACKEND>`` > user config ``runners.images.<backend>`` >
  ``[<registry>/]llenergymeasure/<backend>:<version>-<variant>`` (`llenergymeasure.images.image_ref`;
  registry: ``LLEM_REGISTRY`` > ``runners.registry``), where the variant is ``cpu`` on
  a host without NVIDIA GPUs and ``cuda<major>`` of the backend's base image otherwise.

The environment overrides are applied by `load_user_config(env)`; this module
only reads the effective values. Nothing here imports docker: the concrete
runners are imported when one is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from llenergymeasure.images import host_variant
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig, load_user_config

RunnerKind = Literal["docker", "local"]


@dataclass(frozen=True)
class RunnerChoice:
    """The runner kind and (for docker) the image of one backend, with where each came from."""

    backend: str
    kind: RunnerKind
    image: str | None
    kind_source: str
    image_source: str


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
    image = effective.image_for(backend, host_variant(backend, gpu_count)) if kind == "docker" else None
    return RunnerChoice(
        backend=backend,
        kind=kind,
        image=image,
        kind_source=effective.source_of(f"runners.{backend}"),
        image_source=effective.source_of(f"runners.images.{backend}"),
    )
