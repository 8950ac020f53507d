"""`Dispatcher`: how the study loop hands a run to whatever executes it, and learns that it ended.

The loop asks `place` for a node (and device ids there) where the next run may start
now, `submit`s it, and `wait`s for any run to finish; `cancel_all` stops what is in
flight (Ctrl-C, circuit breaker). Two implementations:

- `SyncDispatcher`: this host, one run at a time, through the host's `Runner`
  (docker or local). `submit` runs the run to its end before returning, so the loop
  behaves exactly as a plain for-loop: same order, same gaps, Ctrl-C raised from the
  runner.
- `RayDispatcher` (ray_dispatcher.py): one Ray task per run on a cluster.

A `Completion` carries the validated result or the structured error; a run whose
node left the cluster ends with ``node_lost`` (a transient `ExperimentError`).
"""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable
from dataclasses import dataclass

from llenergymeasure.errors import LLEMError
from llenergymeasure.orchestrator.cluster.placement import ClusterNode, NodeBook, Placement, RunKey
from llenergymeasure.orchestrator.runners.base import Runner, RunRequest
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import ExperimentResult

#: the node id of this host for the synchronous dispatcher
LOCAL_NODE_ID = "local"


@dataclass
class Dispatch:
    """One run handed to a dispatcher."""

    key: RunKey
    request: RunRequest
    placement: Placement


@dataclass
class Completion:
    """How a dispatched run ended: `result` (validated, files in the run directory) or `error`."""

    dispatch: Dispatch
    result: ExperimentResult | None = None
    error: LLEMError | None = None
    node_lost: bool = False
    host_name: str | None = None  # the node's host name as the node reported it


class Dispatcher(abc.ABC):
    """Runs the study's runs somewhere; see the module docstring."""

    #: True when runs may overlap: gaps then count from when the device set's previous run finished
    concurrent: bool = False

    def __init__(self, book: NodeBook) -> None:
        self.book = book

    @abc.abstractmethod
    def place(self, config: ExperimentConfig) -> Placement | None:
        """Where `config` can start now; None when busy. Raises `NoEligibleNode` when nowhere, ever."""

    @abc.abstractmethod
    def env_key(self, placement: Placement, backend: str) -> str:
        """The baseline-cache environment key of a run there: the same node, image/runner and device set."""

    @abc.abstractmethod
    def submit(self, dispatch: Dispatch) -> None:
        """Start the run (the synchronous dispatcher runs it to its end here)."""

    @abc.abstractmethod
    def wait(self, timeout_s: float | None) -> Completion | None:
        """The next run that ended; None when `timeout_s` passed first."""

    def in_flight(self) -> int:
        return self.book.running_count()

    def cancel_all(self) -> list[Dispatch]:
        """Stop every run in flight and leave no container behind; the runs it stopped."""
        return []

    def describe(self, placement: Placement) -> str:
        """Where a run goes, for the progress display (empty for this host)."""
        return ""

    def ray_node_id(self, placement: Placement) -> str | None:
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the cluster connection; idempotent."""


class SyncDispatcher(Dispatcher):
    """This host, one run at a time, through the runner of each backend."""

    def __init__(
        self,
        runner_for: Callable[[str], Runner],
        env_key_for: Callable[[str], str],
        device_ids_for: Callable[[ExperimentConfig], list[int]],
        host_name: str | None = None,
    ) -> None:
        self.node = ClusterNode(LOCAL_NODE_ID, host_name or socket.gethostname())
        super().__init__(NodeBook([self.node], "node"))
        self._runner_for = runner_for
        self._env_key_for = env_key_for
        self._device_ids_for = device_ids_for
        self._done: Completion | None = None

    def place(self, config: ExperimentConfig) -> Placement | None:
        if self.book.running_count():
            return None
        return Placement(self.node, tuple(self._device_ids_for(config)))

    def env_key(self, placement: Placement, backend: str) -> str:
        return self._env_key_for(backend)

    def submit(self, dispatch: Dispatch) -> None:
        runner = self._runner_for(dispatch.request.job.config.backend)
        try:
            result = runner.run(dispatch.request)
        except LLEMError as e:
            self._done = Completion(dispatch, error=e, host_name=self.node.host_name)
            return
        self._done = Completion(dispatch, result=result, host_name=self.node.host_name)

    def wait(self, timeout_s: float | None) -> Completion | None:
        done, self._done = self._done, None
        return done
