"""GPU index spaces, defined once for both wings, and the one translation between them.

Two numberings of the same GPUs cross the host ↔ harness wall:

- **host index** (`HostGpuIndex`): the GPU's NVML index on the host, in PCI bus
  order. Users write it (``gpus: [2, 3]``), the host assigns it
  (`orchestrator.gpu_assignment`), pins it (docker device request), keys the
  baseline cache with it, and results report it (``device_index``,
  ``RunContext.host_device_ids``).
- **worker index** (`WorkerGpuIndex`): the same GPU's index as the harness process
  sees it, NVML's and CUDA's alike (the harness runs CUDA with
  ``CUDA_DEVICE_ORDER=PCI_BUS_ID``). It is what ``RunContext.device_ids`` carries.

The translation depends on one fact only: whether the launcher *pins* the set, so
that the harness sees those GPUs and no other. Pinned (a container with a device
request, or ``CUDA_VISIBLE_DEVICES`` listing exactly the set) → the set is
renumbered ``0..n-1`` in the order given. Not pinned (a local subprocess, simulated
GPUs, which every container sees whole) → worker index = host index.

Runners translate once, when they hand the job to the harness (`worker_device_ids`);
the harness maps each worker index back to its host index for results
(`host_index_pairs`), and translates once more, with the same function, to CUDA
ordinals after it pins ``CUDA_VISIBLE_DEVICES`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NewType

#: a GPU's NVML index on the host (PCI bus order)
HostGpuIndex = NewType("HostGpuIndex", int)
#: the same GPU's index as the harness process sees it (NVML = CUDA under PCI_BUS_ID ordering)
WorkerGpuIndex = NewType("WorkerGpuIndex", int)


def worker_device_ids(host_ids: Sequence[int], *, pinned: bool) -> list[int]:
    """The worker indices of `host_ids`: ``0..n-1`` when the launcher pins the set, else the host indices."""
    return list(range(len(host_ids))) if pinned else list(host_ids)


def host_index_pairs(worker_ids: Sequence[int], host_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(worker index, host index) of each GPU of the set.

    `host_ids` is the host's record of the same set, in the same order; when it is
    missing or does not match in length (a job written by hand, an old host) the
    worker indices are taken as host indices (the unpinned case).
    """
    hosts = list(host_ids) if len(host_ids) == len(worker_ids) else list(worker_ids)
    return list(zip(worker_ids, hosts, strict=True))
