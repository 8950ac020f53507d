"""Which host GPUs an experiment runs on: the assignment policy, in one place.

Host indices (`schemas.devices.HostGpuIndex`: NVML's, PCI bus order) only; the
runners translate them to what the harness sees (`schemas.devices.worker_device_ids`).

Policy:
- no GPU on the host (``gpu_count <= 0``) → ``[]``: a CPU run;
- the config pins ``gpus`` → exactly those, in that order (pre-flight checks they
  exist and run no foreign compute process);
- otherwise the first ``config.device_count()`` GPUs (tensor × pipeline parallel,
  or one), capped at what the host has; the harness refuses a set too small for
  the backend.

Every experiment of a study is assigned independently: runs are sequential, so
they do not compete for GPUs.
"""

from __future__ import annotations

from llenergymeasure.schemas.config.experiment import ExperimentConfig


def device_ids_for(config: ExperimentConfig, gpu_count: int) -> list[int]:
    """The host GPU indices `config` runs on, on a host with `gpu_count` GPUs (module docstring)."""
    if gpu_count <= 0:
        return []
    if config.gpus:
        return list(config.gpus)
    return list(range(min(config.device_count(), gpu_count)))
