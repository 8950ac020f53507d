"""Counter phase probe: a busy/idle square wave read by the energy counter at every edge and by sampled power.

``python -m llenergymeasure.harness.phase_probe [--window-s S] [--frequencies 0.5,1,2,5,10,20]``
prints one JSON object per (device, frequency) on stdout:
``{"device", "frequency_hz", "simulated", "phases": [[start_s, end_s, busy], ...],
"counter_j": [...], "samples": [[t_s, power_w], ...]}`` — the counter at each phase
edge (joules) and the instant-power samples, all on one clock. The host analyses
them (``llenergymeasure.orchestrator.selftest.phase``); this module only measures.

- Real GPU (device 0): the load is back-to-back matrix multiplications on the
  GPU during the busy halves and nothing during the idle halves, one frequency
  after another. Needs torch with CUDA (the PyTorch image).
- Simulated GPUs (``LLEM_SIMULATE_GPUS``): the wave is the spec's own (a device
  whose power is ``square``), so nothing is loaded; every such device is probed
  at its frequency, all at once, aligned to the simulated driver's clock.

The sampler reads on an absolute schedule (``t0 + k × period``) starting 20 ms
after the first edge, so a wave whose period divides the sampling period is
always sampled at the same phase (the aliasing the probe exists to expose).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.harness.energy.device import NvmlDevice, PynvmlProvider, open_nvml
from llenergymeasure.simgpu import simulated_nvml

SAMPLE_PERIOD_S = 0.1
SAMPLE_OFFSET_S = 0.02
DEFAULT_FREQUENCIES_HZ = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


@dataclass
class Probe:
    device: int
    frequency_hz: float
    edges_s: list[float]  # phase edges on the monotonic clock; phase k is busy when k is even
    simulated: bool
    counter_j: list[float] = field(default_factory=list)
    samples: list[tuple[float, float]] = field(default_factory=list)

    def to_json(self) -> str:
        phases = [[a, b, k % 2 == 0] for k, (a, b) in enumerate(zip(self.edges_s, self.edges_s[1:], strict=False))]
        return json.dumps(
            {
                "device": self.device,
                "frequency_hz": self.frequency_hz,
                "simulated": self.simulated,
                "phases": phases,
                "counter_j": self.counter_j,
                "samples": self.samples,
            }
        )


def edges(first_s: float, frequency_hz: float, window_s: float) -> list[float]:
    half = 0.5 / frequency_hz
    n = max(2, round(window_s / half))
    return [first_s + k * half for k in range(n + 1)]


def _sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


def run(device: NvmlDevice, probe: Probe, set_busy: Callable[[bool], None] | None = None) -> Probe:
    """Read the counter at every edge of `probe` and sample power in a thread, toggling `set_busy` at the edges."""
    stop = threading.Event()

    def sample() -> None:
        t = probe.edges_s[0] + SAMPLE_OFFSET_S
        while not stop.is_set() and t <= probe.edges_s[-1]:
            _sleep_until(t)
            mw = device.power_instant_mw()
            if mw is not None:
                probe.samples.append((t, mw / 1000.0))
            t += SAMPLE_PERIOD_S

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for k, edge in enumerate(probe.edges_s):
            _sleep_until(edge)
            mj = device.energy_mj()
            probe.counter_j.append(mj / 1000.0 if mj is not None else float("nan"))
            if set_busy is not None:
                set_busy(k % 2 == 0 and k < len(probe.edges_s) - 1)
    finally:
        stop.set()
        sampler.join()
        if set_busy is not None:
            set_busy(False)
    return probe


def simulated_probes(nvml: Any, window_s: float, lead_s: float = 0.3) -> list[Probe]:
    """One probe per simulated device with a square-wave trace, starting at its first rising edge after `lead_s`."""
    offset = time.monotonic() - nvml.elapsed_s()  # driver time t is monotonic time offset + t
    probes = []
    for index, spec in enumerate(nvml.spec.devices):
        power = spec.power
        if power.kind != "square":
            continue
        period = 1.0 / power.hz
        now = nvml.elapsed_s() + lead_s
        k = -(-(now - power.phase_s) // period)  # ceil: the next rising edge
        first = offset + power.phase_s + k * period
        probes.append(Probe(index, power.hz, edges(first, power.hz, window_s), simulated=True))
    return probes


class GpuLoad:
    """Matrix multiplications on one CUDA device while busy is set (torch, imported here)."""

    def __init__(self, index: int) -> None:
        import torch

        self._torch = torch
        self._device = torch.device(f"cuda:{index}")
        self._a = torch.randn(4096, 4096, device=self._device, dtype=torch.float16)
        self._busy = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._busy.wait(0.01):
                (self._a @ self._a).sum().item()  # .item() waits: no queue runs past the busy half

    def set_busy(self, busy: bool) -> None:
        (self._busy.set if busy else self._busy.clear)()

    def close(self) -> None:
        self._stop.set()
        self._busy.clear()
        self._thread.join()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llenergymeasure.harness.phase_probe")
    parser.add_argument("--window-s", type=float, default=12.0, help="Window per frequency, seconds.")
    parser.add_argument("--frequencies", default=",".join(f"{f:g}" for f in DEFAULT_FREQUENCIES_HZ))
    args = parser.parse_args(argv)
    simulated = simulated_nvml(os.environ)
    provider = PynvmlProvider(simulated) if simulated is not None else open_nvml()
    if provider is None or provider.device_count() == 0:
        print("error: no NVIDIA GPU is visible to NVML", file=sys.stderr)
        return 1
    try:
        return _probe(provider, simulated, args.window_s, [float(f) for f in args.frequencies.split(",") if f])
    finally:
        provider.close()


def _probe(provider: PynvmlProvider, simulated: Any, window_s: float, frequencies: list[float]) -> int:
    if simulated is not None:
        probes = simulated_probes(simulated, window_s)
        threads = [threading.Thread(target=run, args=(provider.device(p.device), p)) for p in probes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        load = GpuLoad(0)
        device = provider.device(0)
        probes = []
        try:
            for f in frequencies:
                time.sleep(2.0)  # settle between frequencies
                probe = Probe(0, f, edges(time.monotonic() + 0.5, f, window_s), simulated=False)
                probes.append(run(device, probe, load.set_busy))
        finally:
            load.close()
    for p in probes:
        print(p.to_json(), flush=True)
    return 0 if probes else 1


if __name__ == "__main__":
    sys.exit(main())
