"""A fake Docker client of our own: the few SDK calls the orchestrator uses, with scripted containers.

A container's *behaviour* is a function run in a thread when it starts. It gets a
`Sandbox` (the job, the host path mounted at /results, ways to print on stdout
or stderr, and a `killed` event) and returns an exit code. Errors are the SDK's
own exception classes, so the code under test translates the real ones.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from llenergymeasure.schemas.job import ExperimentJob, from_env

_EOF = object()
_ids = itertools.count(1)


@dataclass
class Sandbox:
    job: ExperimentJob
    results: Path
    env: dict[str, str]
    killed: threading.Event
    out: Callable[[str], None]
    err: Callable[[str], None]
    oom: list[bool] = field(default_factory=lambda: [False])


Behaviour = Callable[[Sandbox], int]


class _Stream:
    """Iterator of byte chunks, like the SDK's CancellableStream."""

    def __init__(self, q: queue.Queue[object]) -> None:
        self._q = q
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while not self.closed:
            item = self._q.get()
            if item is _EOF:
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self.closed = True
        self._q.put(_EOF)


class FakeContainer:
    def __init__(self, client: FakeDockerClient, kwargs: dict[str, Any], behaviour: Behaviour) -> None:
        self.client = client
        self.kwargs = kwargs
        self.id = f"c{next(_ids):04d}"
        self.name: str = kwargs["name"]
        self.labels: dict[str, str] = dict(kwargs.get("labels") or {})
        self.status = "created"
        self.attrs: dict[str, Any] = {"State": {"OOMKilled": False, "Status": "created"}}
        self.exit_code: int | None = None
        self.removed = False
        self.calls: list[str] = []
        self._behaviour = behaviour
        self._killed = threading.Event()
        self._exited = threading.Event()
        self._listeners: dict[str, list[queue.Queue[object]]] = {"stdout": [], "stderr": []}
        self._history: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        self._lock = threading.Lock()

    # -- SDK surface ----------------------------------------------------------------------------
    def start(self) -> None:
        self._check()
        self.client.fail_if_scripted("start")
        self.calls.append("start")
        self.status = "running"
        env = dict(self.kwargs["environment"])
        results = next(Path(h) for h, b in self.kwargs["volumes"].items() if b["bind"] == "/results")
        box = Sandbox(
            from_env(env),
            results,
            env,
            self._killed,
            lambda s: self._emit("stdout", s),
            lambda s: self._emit("stderr", s),
        )

        def main() -> None:
            code = self._behaviour(box)
            self._exit(137 if self._killed.is_set() else code, oom=box.oom[0])

        threading.Thread(target=main, daemon=True).start()

    def logs(self, *, stream: bool, follow: bool, stdout: bool = True, stderr: bool = True) -> _Stream:
        self._check()
        assert stream
        assert follow
        assert stdout != stderr
        which = "stdout" if stdout else "stderr"
        q: queue.Queue[object] = queue.Queue()
        with self._lock:
            for chunk in self._history[which]:
                q.put(chunk)
            if self._exited.is_set():
                q.put(_EOF)
            else:
                self._listeners[which].append(q)
        return _Stream(q)

    def wait(self, timeout: float | None = None) -> dict[str, int]:
        self._check()
        if not self._exited.wait(timeout):
            raise requests.exceptions.ReadTimeout("container did not exit")
        return {"StatusCode": int(self.exit_code if self.exit_code is not None else -1)}

    def stop(self, timeout: int = 10) -> None:
        self._check()
        self.calls.append(f"stop({timeout})")
        self._killed.set()
        self._exited.wait(5)

    def kill(self) -> None:
        self._check()
        self.calls.append("kill")
        self._killed.set()
        self._exited.wait(5)

    def remove(self, force: bool = False) -> None:
        self._check()
        self.calls.append(f"remove(force={force})")
        if self.status == "running" and not force:
            raise docker.errors.APIError("You cannot remove a running container")
        self._killed.set()
        if "start" in self.calls:
            self._exited.wait(5)
        self.removed = True
        self.client._containers.pop(self.name, None)

    def reload(self) -> None:
        self._check()

    # -- internals ------------------------------------------------------------------------------
    def _check(self) -> None:
        if self.removed:
            raise docker.errors.NotFound(f"No such container: {self.name}")

    def _emit(self, which: str, text: str) -> None:
        data = (text if text.endswith("\n") else text + "\n").encode()
        with self._lock:
            self._history[which].append(data)
            for q in self._listeners[which]:
                q.put(data)

    def _exit(self, code: int, *, oom: bool) -> None:
        with self._lock:
            self.exit_code = code
            self.status = "exited"
            self.attrs = {"State": {"OOMKilled": oom, "Status": "exited", "ExitCode": code}}
            self._exited.set()
            for qs in self._listeners.values():
                for q in qs:
                    q.put(_EOF)
                qs.clear()


class FakeImage:
    def __init__(self, tag: str, labels: dict[str, str]) -> None:
        self.tags = [tag]
        self.labels = labels


class _Images:
    def __init__(self) -> None:
        self.known: dict[str, FakeImage] = {}

    def get(self, name: str) -> FakeImage:
        if name not in self.known:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return self.known[name]


class _Api:
    """The low-level API calls `llem image` makes: streamed pull and build, scripted per test.

    `pull_events[ref]` / `build_events` are the decoded JSON chunks the engine would
    stream; a pull that ends without an ``error`` chunk adds the image (with
    `pull_labels`); a build records its keyword arguments and a copy of its context.
    """

    def __init__(self, client: FakeDockerClient) -> None:
        self._client = client
        self.pull_events: dict[str, list[dict[str, Any]]] = {}
        self.pull_labels: dict[str, dict[str, str]] = {}
        self.build_events: list[dict[str, Any]] = [{"stream": "Successfully built 0123abcd\n"}]
        self.builds: list[dict[str, Any]] = []
        self.build_contexts: list[dict[str, str]] = []

    def pull(self, repository: str, tag: str | None = None, *, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        assert stream
        assert decode
        ref = f"{repository}:{tag}"
        if ref not in self.pull_events:
            raise docker.errors.NotFound(f"pull access denied for {repository}, repository does not exist")
        events = self.pull_events[ref]
        yield from events
        if not any("error" in e for e in events):
            self._client.add_image(ref, self.pull_labels.get(ref, {}))

    def build(self, *, path: str, decode: bool, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert decode
        root = Path(path)
        files = {str(f.relative_to(root)): f.read_text() if f.suffix in ("", ".txt") else "<binary>"
                 for f in sorted(root.rglob("*")) if f.is_file()}  # fmt: skip
        self.build_contexts.append(files)
        self.builds.append(kwargs)
        yield from self.build_events
        if not any("error" in e for e in self.build_events):
            self._client.add_image(kwargs["tag"], {f"io.llenergymeasure.{k.lower()}": v
                                                   for k, v in kwargs["buildargs"].items()})  # fmt: skip


class _Containers:
    def __init__(self, client: FakeDockerClient) -> None:
        self._client = client

    def create(self, **kwargs: Any) -> FakeContainer:
        self._client.fail_if_scripted("create")
        name = kwargs["name"]
        if name in self._client._containers:
            raise docker.errors.APIError(f'Conflict. The container name "/{name}" is already in use')
        image = kwargs["image"]
        self._client.images.get(image)
        behaviour = self._client.behaviour_for(kwargs)
        c = FakeContainer(self._client, kwargs, behaviour)
        self._client._containers[name] = c
        self._client.created.append(c)
        return c

    def get(self, name: str) -> FakeContainer:
        try:
            return self._client._containers[name]
        except KeyError:
            raise docker.errors.NotFound(f"No such container: {name}") from None

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[FakeContainer]:
        wanted = (filters or {}).get("label", [])
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        out = []
        for c in list(self._client._containers.values()):
            if not all and c.status != "running":
                continue
            ok = True
            for w in wanted:
                key, _, value = w.partition("=")
                if key not in c.labels or (value and c.labels[key] != value):
                    ok = False
            if ok:
                out.append(c)
        return out


class FakeDockerClient:
    """`behaviours` maps a container name substring → behaviour; `default` runs otherwise."""

    def __init__(
        self, default: Behaviour | None = None, *, reachable: bool = True, runtimes: dict[str, Any] | None = None
    ) -> None:
        self.default = default
        self.behaviours: list[tuple[Callable[[dict[str, Any]], bool], Behaviour]] = []
        self.images = _Images()
        self.api = _Api(self)
        self.containers = _Containers(self)
        self._containers: dict[str, FakeContainer] = {}
        self.created: list[FakeContainer] = []
        self.reachable = reachable
        self.runtimes = runtimes if runtimes is not None else {"runc": {}}
        self.faults: dict[str, list[BaseException]] = {}
        self.calls: list[str] = []

    def fail_next(self, call: str, *errors: BaseException) -> None:
        """The next ``len(errors)`` calls of `call` ("create" or "start") raise these errors, in order."""
        self.faults.setdefault(call, []).extend(errors)

    def fail_if_scripted(self, call: str) -> None:
        self.calls.append(call)
        pending = self.faults.get(call)
        if pending:
            raise pending.pop(0)

    def add_image(self, tag: str, labels: dict[str, str] | None = None) -> None:
        self.images.known[tag] = FakeImage(tag, labels or {})

    def when(self, predicate: Callable[[dict[str, Any]], bool], behaviour: Behaviour) -> None:
        self.behaviours.append((predicate, behaviour))

    def behaviour_for(self, kwargs: dict[str, Any]) -> Behaviour:
        for predicate, behaviour in self.behaviours:
            if predicate(kwargs):
                return behaviour
        assert self.default is not None, f"no behaviour for {kwargs['name']}"
        return self.default

    def ping(self) -> bool:
        if not self.reachable:
            raise docker.errors.DockerException("Error while fetching server API version")
        return True

    def info(self) -> dict[str, Any]:
        return {"Runtimes": self.runtimes, "DefaultRuntime": "runc"}

    def live(self) -> list[FakeContainer]:
        return list(self._containers.values())


def http_error(status: int, message: str = "Server Error") -> docker.errors.APIError:
    """The SDK's APIError for an HTTP answer with `status` (what the daemon says, e.g. 500 or 404)."""
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} {message}", response=response, explanation=message)


def connection_reset() -> requests.exceptions.ConnectionError:
    """What the SDK raises when the daemon drops the connection (e.g. it restarts)."""
    return requests.exceptions.ConnectionError(
        "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"
    )
