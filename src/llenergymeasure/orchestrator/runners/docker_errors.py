"""The Docker SDK's exception classes, imported lazily (``import llenergymeasure`` must not load docker).

Callers catch ``docker_exceptions()`` where they call the SDK and translate to our
errors there, ``raise ... from e``.
"""

from __future__ import annotations

from typing import Any


def docker_exceptions() -> tuple[type[BaseException], ...]:
    """Everything the SDK raises for an expected failure: API errors and transport errors."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException)


def is_not_found(exc: BaseException) -> bool:
    """True for the SDK's NotFound (container/image gone)."""
    import docker.errors

    return isinstance(exc, docker.errors.NotFound)


def from_env(**kwargs: Any) -> Any:
    """``docker.from_env()``, imported lazily; the one place the default client is constructed."""
    import docker

    return docker.from_env(**kwargs)
