"""The simulated-GPU spec: the file ``LLEM_SIMULATE_GPUS`` points at (docs/user-guide.md, "Simulated GPUs").

Each device has an analytic power trace; the simulated driver (``llenergymeasure.simgpu``)
answers NVML calls from it. Time ``t`` is seconds since the simulated driver started
in the harness process (its sampler process keeps that origin). Device *i* of the list is NVML index *i*.

```json
{"devices": [
  {"name": "Sim H100", "memory_mib": 81559,
   "power": {"kind": "constant", "watts": 250},
   "energy_counter": {"update_period_s": 0.02},
   "faults": [{"call": "energy", "nth": 2, "error": "unknown"}]}
]}
```
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, FiniteFloat

from llenergymeasure.schemas._base import StrictModel

#: the host variable naming the spec file; set inside the container to the mounted copy
SIMULATE_GPUS_ENV_VAR = "LLEM_SIMULATE_GPUS"
#: where the Docker runner mounts the spec (read-only) inside the container
CONTAINER_SIMULATED_GPUS_SPEC = "/llem/simulated-gpus.json"

Watts = Annotated[FiniteFloat, Field(ge=0)]


class _SpecModel(StrictModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class ConstantPower(_SpecModel):
    """P(t) = watts."""

    kind: Literal["constant"]
    watts: Watts = Field(description="Power draw, watts.")


class SquarePower(_SpecModel):
    """P(t) = high_w during the first half of each period (rising edges at t = phase_s + k / hz), else low_w."""

    kind: Literal["square"]
    low_w: Watts = Field(description="Power in the second half of each period, watts.")
    high_w: Watts = Field(description="Power in the first half of each period, watts.")
    hz: FiniteFloat = Field(gt=0, description="Frequency of the wave, hertz.")
    phase_s: FiniteFloat = Field(0.0, description="Time of a rising edge, seconds since the driver started.")


class RampPower(_SpecModel):
    """P(t) = max(0, start_w + w_per_s × t)."""

    kind: Literal["ramp"]
    start_w: Watts = Field(description="Power at t = 0, watts.")
    w_per_s: FiniteFloat = Field(description="Slope, watts per second (negative ramps stop at 0 W).")


PowerTrace = Annotated[ConstantPower | SquarePower | RampPower, Field(discriminator="kind")]


class EnergyCounter(_SpecModel):
    """The cumulative total-energy counter (mJ): the exact integral of power, updated every period."""

    update_period_s: FiniteFloat = Field(0.02, gt=0, description="Counter update period, seconds.")


class Fault(_SpecModel):
    """The `nth` call (1-based, per device) of kind `call` raises the NVML error `error`."""

    call: Literal["energy", "power", "any"] = Field(
        description="energy: total-energy reads; power: instant-power reads; any: every driver call on the device."
    )
    nth: int = Field(ge=1, description="Which call of that kind fails, counted from 1 per device.")
    error: Literal["unknown", "not_supported", "gpu_is_lost"] = Field(description="The NVML error raised.")


class SimulatedDevice(_SpecModel):
    """One simulated GPU."""

    name: str = Field("Simulated GPU", min_length=1, description="Device name reported by the driver.")
    memory_mib: int = Field(81559, gt=0, description="Total device memory, MiB.")
    power: PowerTrace = Field(description="The power trace: constant, square or ramp.")
    energy_counter: EnergyCounter | Literal[False] = Field(
        default_factory=EnergyCounter,
        description="The total-energy counter, or false for a device without one (pre-Volta: instant power only).",
    )
    faults: list[Fault] = Field(default_factory=list, description="Injected driver errors.")


class SimulatedGpuSpec(_SpecModel):
    """The devices of a simulated host."""

    devices: list[SimulatedDevice] = Field(min_length=1, description="Device i is NVML index i.")
