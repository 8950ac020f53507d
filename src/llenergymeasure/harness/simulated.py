"""What a run on simulated GPUs (``LLEM_SIMULATE_GPUS``) adds: the warning every result carries, and
what cannot run on them (checked in pre-flight, with the rest).

The simulated devices are read through the same adapter, meter and sampler as real ones; they are not
CUDA devices, so the backend is given none and computes on CPU.
"""

from __future__ import annotations

from llenergymeasure.errors import PreFlightFailure
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import MeasurementWarning

SIMULATED_GPU_WARNING = MeasurementWarning(
    code="simulated_gpu",
    message="the GPUs are simulated (LLEM_SIMULATE_GPUS): every energy and power figure comes from the spec's power "
    "traces, not from hardware, and the model ran on CPU; a rehearsal, never a measurement",
    severity="warning",
)


def simulated_gpu_failures(config: ExperimentConfig) -> list[PreFlightFailure]:
    """What cannot run on simulated GPUs: a meter that reads real hardware, a backend that needs CUDA."""
    out: list[PreFlightFailure] = []
    if config.energy.backend in ("zeus", "codecarbon"):
        out.append(
            PreFlightFailure(
                "energy",
                f"energy.backend {config.energy.backend} reads real hardware, not simulated GPUs",
                "use energy.backend auto or nvml with LLEM_SIMULATE_GPUS",
            )
        )
    if config.backend != "pytorch":
        out.append(
            PreFlightFailure(
                "backend",
                f"backend {config.backend} needs real CUDA GPUs; simulated GPUs run the model on CPU (pytorch only)",
                "rehearse with backend pytorch, or unset LLEM_SIMULATE_GPUS",
            )
        )
    return out
