"""Energy measurement: one `EnergyMeter` interface, a probing factory, and a power-timeline sampler.

Submodules: `base` (interface), `device` (NVML seam), `nvml`, `zeus`, `codecarbon`,
`null` (meters), `sampler` (timeline), `sampler_process` (its own process), `integrate` (numerics),
`factory`.
Optional packages (zeus, codecarbon, pynvml, pyarrow) are imported lazily.
"""

from llenergymeasure.harness.energy.base import DeviceWindowEnergy, EnergyMeter, WindowEnergy
from llenergymeasure.harness.energy.factory import create_meter

__all__ = ["DeviceWindowEnergy", "EnergyMeter", "WindowEnergy", "create_meter"]
