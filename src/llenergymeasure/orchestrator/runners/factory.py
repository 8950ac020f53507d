"""Wire runners: the one place where each backend of a run gets its `Runner`.

`wire_runners` takes the runners given by the caller (one for every backend, or a
mapping backend → runner) or resolves each backend's choice
(``LLEM_RUNNER_<BACKEND>`` > user config ``runners.<backend>`` > docker) and builds
the runners; it is also the one place the default Docker client is constructed
(`connect_docker`, once per call, injected into `DockerRunner`). One `DockerRunner`
serves every docker backend of a study (it picks the image per backend).

The result, `WiredRunners`, answers what the host needs through the `Runner`
interface only (kinds, pre-flight needs, reaping): nothing outside this module and
the docker runner knows a runner is Docker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.errors import ConfigError, PreFlightError, PreFlightFailure
from llenergymeasure.orchestrator.runners import RunnerChoice, resolve_runner
from llenergymeasure.orchestrator.runners.base import PreflightNeeds, Runner
from llenergymeasure.orchestrator.runners.docker_spec import SECRET_ENV_ALLOWLIST, DockerOptions
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig
from llenergymeasure.schemas.mounts import CACHE_APP_NAME, DATASET_CACHE_SUBDIR, TRT_ENGINE_CACHE_HOME_SUBDIR


def connect_docker(client: Any = None, *, timeout_s: float | None = None) -> tuple[Any, str | None]:
    """(client, None) when the daemon is reachable, else (None, why). An injected `client` is returned as is.

    `timeout_s`: the client's API timeout (the SDK's default when None)."""
    if client is not None:
        return client, None
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions, from_env

    try:
        return (from_env() if timeout_s is None else from_env(timeout=timeout_s)), None
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
        trt_engine_cache_dir=Path.home() / TRT_ENGINE_CACHE_HOME_SUBDIR,
        secret_env_allowlist=allow,
    )


def host_dataset_cache(env: Mapping[str, str] | None = None) -> Path:
    """The host's dataset cache, the same folder the harness uses by default (``<user cache>/llenergymeasure/datasets``).

    ``XDG_CACHE_HOME`` in `env` (the caller's environment) sets the user cache, as it does for platformdirs on Linux.
    """
    if env is not None and env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / CACHE_APP_NAME / DATASET_CACHE_SUBDIR
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(CACHE_APP_NAME)) / DATASET_CACHE_SUBDIR


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


RunnerInput = Runner | Mapping[str, Runner] | None


@dataclass
class WiredRunners:
    """The runner of each backend of a run, and what the host asks of them.

    ``unavailable`` says why no runner could be built (the Docker daemon is unreachable):
    the pre-flight reports it with everything else, and `runner_for` raises it.
    """

    kinds: dict[str, str]
    runners: dict[str, Runner] = field(default_factory=dict)
    needs: dict[str, PreflightNeeds] = field(default_factory=dict)
    unavailable: str | None = None

    def runner_for(self, backend: str) -> Runner:
        if self.unavailable is not None or backend not in self.runners:
            raise PreFlightError(
                [PreFlightFailure("docker daemon", "the Docker daemon is unreachable", "start Docker")]
            )
        return self.runners[backend]

    def images(self) -> dict[str, str]:
        """backend → the container image the pre-flight checks (backends whose runner runs one)."""
        return {b: n.image for b, n in self.needs.items() if n.image is not None}

    def engine(self) -> Any:
        """The container-engine client the pre-flight probes go through, if any runner uses one."""
        return next((n.engine for n in self.needs.values() if n.engine is not None), None)

    def reap(self) -> list[str]:
        """Every distinct runner's `Runner.reap`, once each."""
        reaped: list[str] = []
        seen: set[int] = set()
        for runner in self.runners.values():
            if id(runner) not in seen:
                seen.add(id(runner))
                reaped += runner.reap()
        return reaped


def wire_runners(
    backends: Sequence[str],
    *,
    given: RunnerInput,
    user: EffectiveUserConfig,
    cuda_gpu_count: int,
    docker_options: DockerOptions,
    docker_client: Any = None,
) -> WiredRunners:
    """The runner of each of `backends`: from `given`, else resolved and built (module docstring)."""
    if given is not None:
        chosen = {b: given for b in backends} if isinstance(given, Runner) else dict(given)
        missing = sorted(set(backends) - set(chosen))
        if missing:
            raise ConfigError(f"no runner given for backend(s) {missing}")
        runners = {b: chosen[b] for b in backends}
        return WiredRunners(
            {b: r.name for b, r in runners.items()}, runners, {b: r.preflight_needs(b) for b, r in runners.items()}
        )

    choices = {b: resolve_runner(b, user, gpu_count=cuda_gpu_count) for b in backends}
    kinds = {b: str(c.kind) for b, c in choices.items()}
    client, docker_error = None, None
    if any(k == "docker" for k in kinds.values()):
        client, docker_error = connect_docker(docker_client)
    if docker_error is not None:  # pre-flight reports it (with everything else) before any runner is used
        images = {b: PreflightNeeds(image=c.image) for b, c in choices.items() if c.image is not None}
        return WiredRunners(kinds, {}, images, docker_error)
    built = build_runners(choices, docker_client=client, docker_options=docker_options)
    return WiredRunners(kinds, built, {b: r.preflight_needs(b) for b, r in built.items()})
