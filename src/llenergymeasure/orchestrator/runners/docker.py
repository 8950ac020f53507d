"""`DockerRunner`: one ephemeral container per (experiment, cycle), the docker SDK, docs/contract.md.

Lifecycle of one run::

    spec = build_spec(request, image, options)      # pure translation (docker_spec.py)
    container = containers.create(**spec)           # labels tie it to this process (reaper.py)
    container.start()
    follow stdout/stderr until exit                 # events → callback, lines → harness.log
        wall-clock deadline · silence deadline      # kill (stop → kill) when one passes
    exit code, State.OOMKilled
    finally: stop → kill → remove(force=True)       # idempotent, escalating, even on Ctrl-C
    collect result.json / error.json                # collect.py (shared with the local runner)

Decisions:
- The docker client is injected (``docker.from_env()`` is called by `factory.connect_docker`,
  never here), so tests drive the runner with a fake client of our own.
- stdout and stderr are followed by two reader threads feeding one queue; the
  calling thread waits on the queue with a timeout, so the wall-clock and silence
  deadlines are checked while the container is quiet, and Ctrl-C lands in the
  calling thread. Output on *either* stream counts as a sign of life.
- A timeout stops the container gracefully first (SIGTERM via tini, the harness
  may write error.json), then kills; Ctrl-C skips the grace and removes at once.
  A second Ctrl-C during clean-up is deferred until the container is gone.
- A container user other than the invoking user (the ``user`` option) gets a
  world-writable run directory; otherwise it could not write its result.
- ``create`` and ``start`` are retried (`RetryPolicy`: backoff + jitter, each retry
  logged) when the daemon fails transiently (connection reset or refused, 5xx). A
  name conflict with a container llem left behind (its owner process is gone, or it
  is this process's own never-started container from a create whose answer was
  lost) removes that container and creates again; any other conflict is an error.
  A failure that outlives the retries is an `ExperimentError` marked ``transient``,
  which the study loop may run again (``execution.max_attempts``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from llenergymeasure.errors import ExperimentError, ExperimentFailure, LLEMError
from llenergymeasure.orchestrator.retry import RetryPolicy
from llenergymeasure.orchestrator.runners.base import PreflightNeeds, RunDeadlines, Runner, RunRequest
from llenergymeasure.orchestrator.runners.collect import StreamHandler, collect_result
from llenergymeasure.orchestrator.runners.docker_engine import engine_of
from llenergymeasure.orchestrator.runners.docker_errors import (
    docker_exceptions,
    is_conflict,
    is_not_found,
    is_transient,
)
from llenergymeasure.orchestrator.runners.docker_spec import (
    ContainerSpec,
    DockerOptions,
    build_spec,
    default_user,
    with_labels,
)
from llenergymeasure.orchestrator.runners.reaper import (
    LABEL_HOST,
    LABEL_HOST_PID,
    LABEL_HOST_PID_START,
    owner_labels,
    process_alive,
    reap_orphans,
)
from llenergymeasure.schemas.results import ExperimentResult

logger = logging.getLogger(__name__)

_EOF = object()


@dataclass
class _Outcome:
    exit_code: int | None = None
    oom_killed: bool = False
    timed_out: str | None = None


class DockerRunner(Runner):
    """Runs the harness in a fresh container per run; see the module docstring."""

    name: ClassVar[str] = "docker"

    def __init__(
        self,
        client: Any,
        images: Mapping[str, str],
        options: DockerOptions | None = None,
        *,
        host_env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait_timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.engine = engine_of(client)
        self.images = dict(images)
        self.options = options or DockerOptions()
        self._host_env = dict(os.environ if host_env is None else host_env)
        self._clock = clock
        self._wait_timeout_s = wait_timeout_s
        self._host_user = default_user(os.getuid(), os.getgid())
        self._errors = docker_exceptions()
        self._retry = retry or RetryPolicy()

    def image_for(self, backend: str) -> str:
        try:
            return self.images[backend]
        except KeyError:
            raise LLEMError(f"no image configured for backend {backend!r}") from None

    def environment_key(self, backend: str) -> str:
        """The image reference: runs of one image share an environment."""
        return self.image_for(backend)

    def label(self, backend: str) -> str:
        return f"docker ({self.image_for(backend)})"

    def reap(self) -> list[str]:
        """Force-remove this host's llem containers whose owner process is gone (`reaper.reap_orphans`)."""
        return reap_orphans(self.client)

    def preflight_needs(self, backend: str) -> PreflightNeeds:
        return PreflightNeeds(image=self.image_for(backend), engine=self.client)

    def spec_for(self, request: RunRequest) -> ContainerSpec:
        """The container this request would get (pure; handy for dry runs and tests)."""
        spec = build_spec(
            request,
            self.image_for(request.job.config.backend),
            self.options,
            host_env=self._host_env,
            host_user=self._host_user,
        )
        return with_labels(spec, owner_labels())

    def run(self, request: RunRequest) -> ExperimentResult:
        request.run_dir.mkdir(parents=True, exist_ok=True)
        spec = self.spec_for(request)
        if spec.user != self._host_user:
            request.run_dir.chmod(0o777)
        config_hash = request.job.config.measurement_config_hash()
        handler = StreamHandler(request.run_dir, request.on_event, request.on_log)
        container: Any = None
        outcome = _Outcome()
        interrupted = False
        try:
            container = self._create(spec, config_hash)
            self._start(container, spec, config_hash)
            outcome = self._follow(container, handler, request)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            handler.close()
            if container is not None:
                self._dispose(container, graceful=not interrupted)
        failure = ExperimentFailure(
            exit_code=outcome.exit_code,
            oom_killed=outcome.oom_killed,
            timed_out=outcome.timed_out,
            phase=handler.last_phase,
            log_tail=handler.log_tail(),
            measurement_config_hash=config_hash,
        )
        return collect_result(request.run_dir, failure)

    # -- steps -----------------------------------------------------------------------------------

    def _create(self, spec: ContainerSpec, config_hash: str) -> Any:
        kwargs = spec.create_kwargs()
        if spec.device_request is not None:
            import docker.types

            kwargs["device_requests"] = [
                docker.types.DeviceRequest(
                    driver=spec.device_request.driver,
                    device_ids=list(spec.device_request.device_ids),
                    capabilities=[list(c) for c in spec.device_request.capabilities],
                )
            ]
        logger.debug("creating container %r", spec)

        def create() -> Any:
            try:
                return self.engine.create_container(**kwargs)
            except self._errors as e:
                if is_conflict(e) and self._remove_stale(spec.name):
                    raise _StaleRemoved(e) from e  # retried after a backoff: the removal may still be under way
                raise

        caught: tuple[type[BaseException], ...] = (*self._errors, _StaleRemoved)
        try:
            return self._retry.call(create, is_transient=_retry_create, what=f"creating container {spec.name}")
        except caught as e:
            cause = e.original if isinstance(e, _StaleRemoved) else e
            raise ExperimentError(
                f"could not create container {spec.name} from image {spec.image}: {_explain(cause)}",
                _container_failure(cause, config_hash),
            ) from cause

    def _remove_stale(self, name: str) -> bool:
        """Remove a container holding `name` if llem left it behind; True when removed (or being removed).

        Ours to remove: its owner process (labels) is gone, or it is this very process and the
        container never started (a create whose answer was lost, then retried). A container of
        another host, of another live process, or without our labels is left alone.
        """
        errors: tuple[type[BaseException], ...] = (*self._errors, ValueError)
        try:
            existing = self.engine.get_container(name)
            labels = existing.labels or {}
            pid = int(labels.get(LABEL_HOST_PID, "0"))
        except errors:
            return False
        if pid <= 0 or labels.get(LABEL_HOST) != socket.gethostname():
            return False  # not ours, or another host's
        own_leftover = pid == os.getpid() and getattr(existing, "status", None) == "created"
        if not own_leftover and process_alive(pid, labels.get(LABEL_HOST_PID_START)):
            return False  # its owner still runs: leave it
        logger.warning("removing stale container %s left by llem process %d", name, pid)
        try:
            existing.remove(force=True)
        except self._errors as e:
            return is_conflict(e)  # "removal already in progress"
        return True

    def _start(self, container: Any, spec: ContainerSpec, config_hash: str) -> None:
        try:
            self._retry.call(container.start, is_transient=is_transient, what=f"starting container {spec.name}")
        except self._errors as e:
            raise ExperimentError(
                f"could not start container {spec.name}: {_explain(e)}", _container_failure(e, config_hash)
            ) from e

    def _follow(self, container: Any, handler: StreamHandler, request: RunRequest) -> _Outcome:
        """Stream output until the container exits or a deadline passes; return how it ended."""
        lines: queue.Queue[tuple[str, object]] = queue.Queue()
        try:
            streams = [
                ("stdout", container.logs(stream=True, follow=True, stdout=True, stderr=False)),
                ("stderr", container.logs(stream=True, follow=True, stdout=False, stderr=True)),
            ]
        except self._errors as e:
            raise ExperimentError(
                f"could not follow the output of {request.name}: {_explain(e)}",
                _container_failure(e, request.job.config.measurement_config_hash()),
            ) from e
        for stream_name, chunks in streams:
            threading.Thread(
                target=_pump, args=(stream_name, chunks, lines), name=f"llem-{stream_name}-{request.name}", daemon=True
            ).start()
        last_output = self._clock()
        deadlines = RunDeadlines.of(request, last_output)
        open_streams = len(streams)
        timed_out: str | None = None
        try:
            while open_streams:
                now = self._clock()
                timed_out = deadlines.expired(now, last_output)
                if timed_out is not None:
                    break
                wait_s = deadlines.wait_s(now, last_output)
                try:
                    stream_name, item = lines.get(timeout=max(0.01, min(wait_s, 1.0)))
                except queue.Empty:
                    continue
                if item is _EOF:
                    open_streams -= 1
                    continue
                last_output = self._clock()
                if stream_name == "stdout":
                    handler.feed_stdout(str(item))
                else:
                    handler.feed_stderr(str(item))
        finally:
            for _, chunks in streams:
                with contextlib.suppress(Exception):
                    chunks.close()
        if timed_out:
            logger.warning("%s: %s timeout, stopping the container", request.name, timed_out.replace("_", "-"))
            self._stop(container)
        exit_code, oom = self._exit_status(container)
        return _Outcome(exit_code=exit_code, oom_killed=oom, timed_out=timed_out)

    def _stop(self, container: Any) -> None:
        try:
            container.stop(timeout=int(max(1, self.options.stop_timeout_s)))
        except self._errors:
            with contextlib.suppress(*self._errors):
                container.kill()

    def _exit_status(self, container: Any) -> tuple[int | None, bool]:
        exit_code: int | None = None
        try:
            status = container.wait(timeout=self._wait_timeout_s)
            exit_code = int(status.get("StatusCode", -1))
        except self._errors as e:  # includes requests' ReadTimeout when it does not exit in time
            logger.warning("could not read the exit status of %s: %s", getattr(container, "name", "?"), e)
        oom = False
        try:
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled", False))
        except self._errors as e:
            logger.warning("could not inspect %s: %s", getattr(container, "name", "?"), e)
        return exit_code, oom

    def _dispose(self, container: Any, *, graceful: bool) -> None:
        """stop → kill → remove(force=True); every step tolerates a container that is already gone."""
        with _defer_sigint():
            name = getattr(container, "name", "?")
            try:
                container.reload()
                running = container.status in {"running", "restarting", "paused", "created"}
            except self._errors as e:
                if is_not_found(e):
                    return
                running = True
            if running:
                if graceful:
                    self._stop(container)
                else:
                    with contextlib.suppress(*self._errors):
                        container.kill()
            try:
                container.remove(force=True)
            except self._errors as e:
                if not is_not_found(e):
                    logger.error("could not remove container %s: %s", name, e)


def _pump(stream_name: str, chunks: Iterable[bytes], out: queue.Queue[tuple[str, object]]) -> None:
    """Reader thread: split a chunked byte stream into text lines."""
    try:
        for line in _lines(chunks):
            out.put((stream_name, line))
    except Exception as e:  # connection closed when the container is removed
        logger.debug("%s stream ended: %s", stream_name, e)
    finally:
        out.put((stream_name, _EOF))


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk if isinstance(chunk, bytes) else str(chunk).encode()
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", errors="replace").rstrip("\r")
    if buffer:
        yield buffer.decode("utf-8", errors="replace").rstrip("\r")


@contextlib.contextmanager
def _defer_sigint() -> Iterator[None]:
    """Hold SIGINT/SIGTERM arriving during clean-up, then re-deliver them to their own handlers (main thread only).

    A second Ctrl-C (or a scheduler's SIGTERM) must not leave a half-removed container behind; once
    it is gone, each held signal is raised again, so whatever the process had installed (Python's
    KeyboardInterrupt, the CLI's handler, the default action) decides what happens.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    deferred = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in deferred}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


class _StaleRemoved(Exception):
    """A name conflict resolved by removing llem's stale container: create again."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _retry_create(exc: BaseException) -> bool:
    return isinstance(exc, _StaleRemoved) or is_transient(exc)


def _container_failure(exc: BaseException, config_hash: str) -> ExperimentFailure:
    """The facts of a failure to get a container going; transient when the daemon, not the request, failed."""
    return ExperimentFailure(
        phase="container",
        error_type=type(exc).__name__,
        measurement_config_hash=config_hash,
        transient=is_transient(exc),
    )


def _explain(exc: BaseException) -> str:
    """One line from a docker SDK exception, with a hint for the usual causes."""
    text = str(getattr(exc, "explanation", None) or exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
    name = type(exc).__name__
    if name == "ImageNotFound":
        return f"{text} (fix: build or pull the image, e.g. `make image-cpu`)"
    if is_conflict(exc):
        return f"{text} (fix: remove the leftover container, `docker rm -f <name>`)"
    return text
