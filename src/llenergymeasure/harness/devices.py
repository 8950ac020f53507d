"""The device set of an experiment: which GPUs its energy is read on.

An experiment's energy is the sum over the GPUs its backend actually runs on,
and only those. This module decides that set, once, before anything is loaded:

    provider = open_nvml()                            # energy.device.NvmlProvider, or a fake
    devices = resolve_device_set(job.config, job.context.device_ids, provider,
                                 host_device_ids=job.context.host_device_ids)
    warnings = device_set_warnings(devices)           # MIG, GPUs assigned but not used
    measured = measured_devices(provider, devices.device_ids, devices.host_device_ids)
    # the energy meter reads its counters back-to-back on `measured` at each edge of
    # the window and reports one DeviceEnergy per GPU (device_index = host index);
    # GPUs outside the set are never read.

Decisions:

- **Size of the set** = the GPUs the backend uses: tensor × pipeline parallel for
  vLLM and TensorRT-LLM (``ExperimentConfig.device_count()``); for PyTorch the
  pinned ``gpus`` list, else one GPU — except ``pytorch.device_map: auto`` (or
  ``balanced*``/``sequential``), which spreads the model over every GPU the job
  was given, so all of them are in the set.
- **Which GPUs**: the first N of the job's ``device_ids`` (worker indices: NVML's
  as this process sees them, in PCI bus order; the index spaces and their one
  translation are in `schemas.devices`). vLLM and TensorRT-LLM place rank *r* on CUDA device
  *r*; `cuda_environment` gives the ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` and
  ``CUDA_VISIBLE_DEVICES`` that make CUDA's numbering equal NVML's, to be set
  before the framework initialises CUDA. GPUs given to the job beyond N are
  *unused*: never measured, and reported as an info warning.
- **Too few GPUs, unknown indices, duplicates** → `PreFlightError` (the run
  cannot measure what it claims to). vLLM and TensorRT-LLM with no GPU at all →
  `PreFlightError`; PyTorch with no GPU → an empty set (CPU run, energy
  unavailable).
- **MIG**: NVML's energy counter and power readings belong to the *physical*
  GPU, so on a MIG-enabled GPU they include every other instance's work. Such a
  device is flagged (`mig_warnings`, severity ``warning``); ``refuse_mig=True``
  turns that into a `PreFlightError` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llenergymeasure.errors import PreFlightError, PreFlightFailure
from llenergymeasure.schemas.config.capabilities import CPU_CAPABLE
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import MeasurementWarning

logger = logging.getLogger(__name__)

#: PyTorch device_map values that spread the model over every visible GPU
SPREADING_DEVICE_MAPS = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})


class ProbedDevice(Protocol):
    """What the device set reads of one GPU (`energy.device.NvmlDevice` has this shape)."""

    @property
    def uuid(self) -> str: ...

    def mig_mode(self) -> bool | None:
        """True if MIG mode is currently on; None if unknown or MIG is not supported."""
        ...


class DeviceProbe(Protocol):
    """Opens GPUs by container-side NVML index (`energy.device.NvmlProvider` has this shape)."""

    def device_count(self) -> int: ...

    def device(self, index: int) -> ProbedDevice: ...


@dataclass(frozen=True)
class DeviceSet:
    """The GPUs an experiment runs on and is measured on."""

    device_ids: tuple[int, ...]
    """Container-side NVML indices of the measured GPUs, in rank order."""
    host_device_ids: tuple[int, ...]
    """The same GPUs' host indices (what results report as ``device_index``)."""
    uuids: tuple[str, ...]
    mig_enabled: tuple[bool | None, ...]
    unused_device_ids: tuple[int, ...] = ()
    """Container-side indices given to the job but not used by the backend: never measured."""

    @property
    def is_cpu(self) -> bool:
        """No GPU: energy is unavailable."""
        return not self.device_ids

    def host_index(self, device_id: int) -> int:
        """Host index of the measured GPU with container-side index `device_id`."""
        return self.host_device_ids[self.device_ids.index(device_id)]


def required_device_count(config: ExperimentConfig, assigned: int) -> int:
    """GPUs the backend of `config` will use when the job was given `assigned` of them."""
    section = config.pytorch
    spreads = section is not None and section.device_map in SPREADING_DEVICE_MAPS
    if config.backend == "pytorch" and config.gpus is None and spreads:
        return max(assigned, 1)
    return config.device_count()


def resolve_device_set(
    config: ExperimentConfig,
    context_device_ids: Sequence[int],
    nvml: DeviceProbe | None,
    *,
    host_device_ids: Sequence[int] | None = None,
    refuse_mig: bool = False,
) -> DeviceSet:
    """The device set of `config` given the job's (container-side) `context_device_ids`.

    `nvml` None (no NVML in this container) with GPUs in the job is a failure: their energy
    could not be read. Raises `PreFlightError` when the job's GPUs cannot hold the experiment.
    """
    ids = list(context_device_ids)
    failures: list[PreFlightFailure] = []
    if not ids:
        if config.backend not in CPU_CAPABLE:
            raise _fail(
                f"backend {config.backend} needs {config.device_count()} GPU(s) but none were given to this run",
                "run on a host with NVIDIA GPUs and the NVIDIA container runtime",
            )
        return DeviceSet((), (), (), (), ())
    if len(set(ids)) != len(ids) or min(ids) < 0:
        raise _fail(f"device ids {ids} are not distinct non-negative indices", "pass each GPU once")
    if nvml is None:
        raise _fail(
            f"the run was given GPU(s) {ids} but NVML is unavailable in this container",
            "use the NVIDIA container runtime (--gpus) and an image with nvidia-ml-py",
        )
    visible = nvml.device_count()
    unknown = [i for i in ids if i >= visible]
    if unknown:
        failures.append(
            PreFlightFailure(
                "device_set",
                f"device index(es) {unknown} do not exist: NVML sees {visible} GPU(s) in this container",
                "check the GPU pinning of the run",
            )
        )
    required = required_device_count(config, len(ids))
    if len(ids) < required:
        failures.append(
            PreFlightFailure(
                "device_set",
                f"the experiment needs {required} GPU(s) (tensor × pipeline parallel) but the run was given {len(ids)}",
                "give the run more GPUs or lower tensor/pipeline parallelism",
            )
        )
    if failures:
        raise PreFlightError(failures, where="container")

    hosts = list(host_device_ids) if host_device_ids else ids
    if len(hosts) != len(ids):
        raise _fail(
            f"host_device_ids {hosts} and device_ids {ids} differ in length",
            "the runner must list one host index per pinned GPU",
        )
    used = ids[:required]
    probed = [nvml.device(i) for i in used]
    mig = tuple(d.mig_mode() for d in probed)
    devices = DeviceSet(
        device_ids=tuple(used),
        host_device_ids=tuple(hosts[:required]),
        uuids=tuple(d.uuid for d in probed),
        mig_enabled=mig,
        unused_device_ids=tuple(ids[required:]),
    )
    if refuse_mig and any(mig):
        flagged = [h for h, m in zip(devices.host_device_ids, mig, strict=True) if m]
        raise _fail(
            f"GPU(s) {flagged} have MIG enabled: NVML energy covers the whole physical GPU, not this instance",
            "measure on GPUs with MIG disabled (nvidia-smi -mig 0) or accept the flag instead of refusing",
        )
    logger.info(
        "device set: %s (host %s), unused %s", devices.device_ids, devices.host_device_ids, devices.unused_device_ids
    )
    return devices


def mig_warnings(devices: DeviceSet) -> list[MeasurementWarning]:
    """One warning per MIG-enabled GPU of the set (its energy includes other MIG instances' work)."""
    return [
        MeasurementWarning(
            code="mig_enabled",
            message=f"GPU {host} has MIG enabled: NVML energy and power cover the whole physical GPU, including "
            "other MIG instances; the energy figures are an upper bound for this experiment",
            severity="warning",
        )
        for host, on in zip(devices.host_device_ids, devices.mig_enabled, strict=True)
        if on
    ]


def unused_device_warnings(devices: DeviceSet) -> list[MeasurementWarning]:
    """An info note when the run was given GPUs its backend does not use (they are not measured)."""
    if not devices.unused_device_ids:
        return []
    return [
        MeasurementWarning(
            code="unused_gpus",
            message=f"container GPU(s) {list(devices.unused_device_ids)} were given to the run but the backend uses "
            f"only {len(devices.device_ids)}; they are not measured",
            severity="info",
        )
    ]


def device_set_warnings(devices: DeviceSet) -> list[MeasurementWarning]:
    """Every warning the device set carries into the result."""
    return mig_warnings(devices) + unused_device_warnings(devices)


def cuda_environment(devices: DeviceSet) -> dict[str, str]:
    """Variables that make CUDA number exactly the measured GPUs, in NVML (PCI bus) order."""
    return {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in devices.device_ids),
    }


def _fail(message: str, fix: str) -> PreFlightError:
    return PreFlightError([PreFlightFailure("device_set", message, fix)], where="container")
