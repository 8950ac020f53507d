"""Build runners from resolved choices; the one place the default Docker client is constructed.

The API layer calls `connect_docker` once per call and injects the client into
`DockerRunner`; one `DockerRunner` serves every docker backend of a study (it
picks the image per backend).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llenergymeasure.orchestrator.runners import RunnerChoice
from llenergymeasure.orchestrator.runners.base import Runner
from llenergymeasure.orchestrator.runners.docker_spec import SECRET_ENV_ALLOWLIST, DockerOptions
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig


def connect_docker(client: Any = None) -> tuple[Any, str | None]:
    """(client, None) when the daemon is reachable, else (None, why). An injected `client` is returned as is."""
    if client is not None:
        return client, None
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions, from_env

    try:
        return from_env(), None
    except docker_exceptions() as e:
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__


def docker_options_from(
    user: EffectiveUserConfig, hf_cache_dir: Path, env: Mapping[str, str] | None = None
) -> DockerOptions:
    """`DockerOptions` from the user config's ``runners.docker`` section (`env`: where the dataset cache is)."""
    section = user.config.runners.docker
    allow = tuple(dict.fromkeys([*SECRET_ENV_ALLOWLIST, *section.extra_env_allowlist]))
    return DockerOptions(
        shm_size=section.shm_size,
        network_mode=section.network,
        hf_cache_dir=hf_cache_dir,
        dataset_cache_dir=host_dataset_cache(env),
        trt_engine_cache_dir=Path("~/.llenergymeasure/trt-engines").expanduser(),
        secret_env_allowlist=allow,
    )


def host_dataset_cache(env: Mapping[str, str] | None = None) -> Path:
    """The host's dataset cache, the same folder the harness uses by default (``<user cache>/llenergymeasure/datasets``).

    ``XDG_CACHE_HOME`` in `env` (the caller's environment) sets the user cache, as it does for platformdirs on Linux.
    """
    if env is not None and env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "llenergymeasure" / "datasets"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("llenergymeasure")) / "datasets"


def build_runners(
    choices: Mapping[str, RunnerChoice], *, docker_client: Any, docker_options: DockerOptions
) -> dict[str, Runner]:
    """backend → runner; docker backends share one `DockerRunner`."""
    runners: dict[str, Runner] = {}
    docker_images = {b: c.image for b, c in choices.items() if c.kind == "docker" and c.image}
    if docker_images:
        from llenergymeasure.orchestrator.runners.docker import DockerRunner

        shared = DockerRunner(docker_client, docker_images, docker_options)
        runners.update({b: shared for b in docker_images})
    for backend, choice in choices.items():
        if choice.kind == "local":
            runners[backend] = _local_runner()
    return runners


def _local_runner() -> Runner:
    from llenergymeasure.orchestrator.runners.local import LocalRunner

    return LocalRunner()
