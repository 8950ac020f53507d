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


def is_transient(exc: BaseException) -> bool:
    """A Docker API error that may pass if the call is made again: the connection to the daemon reset or
    refused (it is restarting), a chunked answer cut short, or a 5xx answer. Never a 4xx (missing image,
    bad request, name conflict: those are answered, not transient)."""
    import requests.exceptions

    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return True
    if isinstance(exc, ConnectionError):  # ConnectionResetError, BrokenPipeError, ... raised below requests
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and status >= 500


def is_conflict(exc: BaseException) -> bool:
    """HTTP 409: a container name already in use (or a removal already in progress)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status == 409 or "Conflict" in str(exc)
