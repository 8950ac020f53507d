"""Which node runs the next run, and what a node ran before and beside it: pure bookkeeping, no Ray.

`NodeBook` holds the usable nodes of a cluster (probed at start), which device sets
each is running now, and when each device set last finished a run:

- placement: the first node (in a round-robin from the node after the last one used,
  so runs spread over the cluster) that has the run's device ids and has them free
  under the study's ``execution.concurrency`` — ``node``: nothing else runs on the
  node; ``device_set``: nothing else on the node uses any of those GPUs. A node
  without GPUs is eligible only when no node has any (an all-CPU cluster, as in CI):
  a GPU experiment never lands on a CPU-only head.
- gaps are per device set: the gap before a run counts from the last run that
  finished on the same node and shared a GPU with it (any run on the node under
  ``node`` concurrency);
- neighbours: the runs that were on the same node while a run ran, for its result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llenergymeasure.schemas.study import Concurrency

RunKey = tuple[int, int]  # (experiment index, cycle)


@dataclass(frozen=True)
class ClusterNode:
    """One usable node: its Ray id (or ``local``), host name, GPU UUIDs, and GPUs as Ray counts them."""

    node_id: str
    host_name: str
    gpu_uuids: tuple[str, ...] = ()
    ray_gpus: float = 0.0

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_uuids)

    @property
    def label(self) -> str:
        return self.host_name if self.node_id == "local" else f"{self.host_name}/{self.node_id[:8]}"


@dataclass(frozen=True)
class Placement:
    """A run's node and the host GPU ids it gets there."""

    node: ClusterNode
    device_ids: tuple[int, ...]

    @property
    def device_uuids(self) -> list[str]:
        return [self.node.gpu_uuids[i] for i in self.device_ids if i < self.node.gpu_count]


@dataclass
class _Running:
    key: RunKey
    name: str
    devices: frozenset[int]
    neighbours: set[str] = field(default_factory=set)


@dataclass
class _Finished:
    key: RunKey
    devices: frozenset[int]
    at_s: float


class NoEligibleNode(Exception):
    """No usable node of the cluster can ever run this experiment (too few GPUs everywhere)."""


class NodeBook:
    """Occupancy, per-device-set history and neighbours of the usable nodes (module docstring)."""

    def __init__(self, nodes: Sequence[ClusterNode], concurrency: Concurrency) -> None:
        self.nodes: list[ClusterNode] = list(nodes)
        self.concurrency = concurrency
        self._running: dict[str, list[_Running]] = {n.node_id: [] for n in self.nodes}
        self._finished: dict[str, list[_Finished]] = {n.node_id: [] for n in self.nodes}
        self._next = 0

    # -- placement ------------------------------------------------------------------------------

    def eligible(self, device_ids_for: Callable[[int], list[int]]) -> list[Placement]:
        """Every node that could ever run it, with its device ids there (busy or not)."""
        any_gpus = any(n.gpu_count for n in self.nodes)
        out = []
        for node in self.nodes:
            if any_gpus and node.gpu_count == 0:
                continue
            ids = device_ids_for(node.gpu_count)
            if all(0 <= i < node.gpu_count for i in ids):
                out.append(Placement(node, tuple(ids)))
        return out

    def place(self, device_ids_for: Callable[[int], list[int]]) -> Placement | None:
        """A node where the run can start now; None when every eligible node is busy.

        Raises `NoEligibleNode` when no node could ever run it."""
        candidates = self.eligible(device_ids_for)
        if not candidates:
            raise NoEligibleNode(self._why_none(device_ids_for))
        count = len(self.nodes)
        order = {n.node_id: (i - self._next) % count for i, n in enumerate(self.nodes)}
        for p in sorted(candidates, key=lambda p: order[p.node.node_id]):
            if self._free(p):
                return p
        return None

    def _free(self, p: Placement) -> bool:
        running = self._running.get(p.node.node_id, [])
        if self.concurrency == "node":
            return not running
        return all(not (r.devices & set(p.device_ids)) for r in running) and not (
            not p.device_ids and running  # a CPU-only run shares the node's CPU with everything: alone
        )

    def _why_none(self, device_ids_for: Callable[[int], list[int]]) -> str:
        if not self.nodes:
            return "the cluster has no usable node"
        sizes = ", ".join(f"{n.label}: {n.gpu_count} GPU(s)" for n in self.nodes)
        wanted = device_ids_for(max(n.gpu_count for n in self.nodes))
        return f"no usable node has GPUs {wanted} ({sizes})"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, p: Placement, key: RunKey, name: str) -> None:
        entry = _Running(key, name, frozenset(p.device_ids))
        if p.node in self.nodes:
            self._next = (self.nodes.index(p.node) + 1) % len(self.nodes)
        for other in self._running[p.node.node_id]:
            other.neighbours.add(name)
            entry.neighbours.add(other.name)
        self._running[p.node.node_id].append(entry)

    def finish(self, p: Placement, key: RunKey, at_s: float) -> list[str]:
        """Mark `key` done on its node at monotonic time `at_s`; the names of the runs that ran beside it."""
        running = self._running.get(p.node.node_id, [])
        for entry in running:
            if entry.key == key:
                running.remove(entry)
                self._finished[p.node.node_id].append(_Finished(key, entry.devices, at_s))
                return sorted(entry.neighbours)
        return []

    def previous_on(self, p: Placement) -> tuple[RunKey, float] | None:
        """The last run that finished on this device set (any run on the node under ``node`` concurrency)."""
        devices = set(p.device_ids)
        for done in reversed(self._finished.get(p.node.node_id, [])):
            if self.concurrency == "node" or not devices or not done.devices or done.devices & devices:
                return done.key, done.at_s
        return None

    def running_count(self) -> int:
        return sum(len(v) for v in self._running.values())

    def remove_node(self, node_id: str) -> None:
        """A node that left the cluster: never placed on again."""
        self.nodes = [n for n in self.nodes if n.node_id != node_id]
        self._running.pop(node_id, None)
        self._finished.pop(node_id, None)
        self._next = 0
