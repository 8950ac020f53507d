"""`DockerEngine`: every call llem makes on a Docker SDK client, in one place.

The SDK client (``docker.from_env()``, constructed only by
`runners.factory.connect_docker`, or a fake of the same shape in tests) is wrapped
here; pre-flight, ``llem config``, the image commands, the self-test, the reaper and
the docker runner call these methods instead of reaching into ``client.containers``,
``client.images`` or ``client.api``. Errors are the SDK's, unchanged: callers catch
`DockerEngine.errors` (`docker_errors.docker_exceptions`) and translate them where
they know what failed. A container handle returned by `create_container` /
`get_container` / `list_containers` is the SDK's own object: its lifecycle
(start, logs, wait, stop, kill, remove) belongs to the docker runner.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions


class DockerEngine:
    """A Docker SDK client behind the few calls llem makes (module docstring)."""

    def __init__(self, sdk: Any) -> None:
        self.sdk = sdk

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """What the SDK raises for an expected failure (API and transport errors)."""
        return docker_exceptions()

    def ping(self) -> None:
        self.sdk.ping()

    def info(self) -> dict[str, Any]:
        """``docker info``."""
        return dict(self.sdk.info())

    def get_image(self, ref: str) -> Any:
        """The local image `ref` (raises the SDK's ImageNotFound when absent)."""
        return self.sdk.images.get(ref)

    def image_labels(self, ref: str) -> dict[str, str]:
        """The labels of the local image `ref` ({} when it has none)."""
        return dict(getattr(self.get_image(ref), "labels", None) or {})

    def create_container(self, **kwargs: Any) -> Any:
        return self.sdk.containers.create(**kwargs)

    def get_container(self, name: str) -> Any:
        return self.sdk.containers.get(name)

    def list_containers(self, labels: Sequence[str]) -> list[Any]:
        """Every container, running or not, carrying all `labels` (``key`` or ``key=value``)."""
        return list(self.sdk.containers.list(all=True, filters={"label": list(labels)}))

    def run_container(self, image: str, **kwargs: Any) -> bytes:
        """Run a container to completion and return its stdout (``containers.run``)."""
        return bytes(self.sdk.containers.run(image, **kwargs))

    def pull(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        """``docker pull``, as decoded progress events."""
        return iter(self.sdk.api.pull(repository, tag=tag, stream=True, decode=True))

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """``docker build``, as decoded output chunks."""
        return iter(self.sdk.api.build(decode=True, **kwargs))


def engine_of(client: Any) -> DockerEngine:
    """`client` as a `DockerEngine` (an engine is returned as is)."""
    return client if isinstance(client, DockerEngine) else DockerEngine(client)
