#!/usr/bin/env python3
"""Cost of the power-timeline sampler on generation, on 8 simulated GPUs whose NVML calls take 100 µs each.

The sampler reads the devices through the real device adapter (`PynvmlProvider`) over the simulated
NVML driver (``llenergymeasure.simgpu``) with ``call_latency_s=1e-4``: each driver call waits 100 µs,
sleeping (a real ctypes call into libnvidia-ml releases the GIL the same way). Arms, run A/B interleaved
(alternating order every round) on the tiny model's ``generate`` inside the harness's window loop:

- **sampler on**: the current sampler — one ``nvmlDeviceGetFieldValues`` call per device per 100 ms
  tick (instant power + energy counter), the slow readings once a second;
- **sampler off**: no sampler thread;
- **7 calls per tick** (``--legacy``): a sampler reading every quantity with its own call at every
  tick, as before — the reference the one-call read is measured against.

Target: wall-clock tokens/s with the sampler on ≥ 0.995 × off. Prints medians and ratios.

On a shared or small machine the A/B ratio is dominated by other processes, so the script also
measures what the sampler itself takes, with nothing else running in the process: CPU seconds per
wall second of the sampler thread alone (its share of one core, GIL held for most of it). The
tokens/s ratio cannot be better than about 1 − that share on a CPU-bound loop, so it is the
noise-free bound of the figure.

usage: python benchmarks/bench_sampler_nvml.py [--rounds 11] [--devices 8] [--latency-us 100] [--legacy]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_harness_overhead import MODELS, TEXT, Arm, harness_loop, interleave, load_backend, report
from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.energy.device import MeasuredDevice, PynvmlProvider
from llenergymeasure.harness.energy.sampler import PowerSample, PowerSampler
from llenergymeasure.harness.tiny_model import build_tiny_llama
from llenergymeasure.harness.warmup import full_length
from llenergymeasure.schemas.simulated_gpus import SimulatedGpuSpec
from llenergymeasure.simgpu import SimulatedNvml


def simulated_devices(count: int, latency_s: float) -> list[MeasuredDevice]:
    spec = SimulatedGpuSpec.model_validate({"devices": [{"power": {"kind": "constant", "watts": 300}}] * count})
    provider = PynvmlProvider(SimulatedNvml(spec, call_latency_s=latency_s))
    return [MeasuredDevice(i, (d := provider.device(i)).uuid, d) for i in range(count)]


class SevenCallSampler(PowerSampler):
    """The sampler as it was: every reading its own driver call, every tick."""

    def sample_now(self, full: bool = True) -> float:
        t, unix = self._clock(), self._wall_clock()
        batch = []
        for dev in self.devices:
            d = dev.device
            power = d.power_instant_mw()
            batch.append(
                PowerSample(
                    t,
                    unix,
                    dev.host_index,
                    dev.uuid,
                    None if power is None else power / 1000.0,
                    d.energy_mj(),
                    d.temperature_c(),
                    d.sm_clock_mhz(),
                    d.memory_used_mb(),
                    d.utilization_pct(),
                    d.throttle_reasons(),
                )
            )
        with self._lock:
            self._samples.extend(batch)
        return t


def sampler_cpu_share(devices: list[MeasuredDevice], sampler_type: type[PowerSampler], seconds: float) -> float:
    """CPU seconds per wall second the sampler thread takes on its own (process CPU time, nothing else running)."""
    sampler = sampler_type(devices, 0.1)
    c0, t0 = time.process_time(), time.perf_counter()
    sampler.start()
    time.sleep(seconds)
    sampler.stop()
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--latency-us", type=float, default=100.0)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--legacy", action="store_true", help="also measure a 7-calls-per-tick sampler")
    parser.add_argument("--alone-s", type=float, default=10.0, help="seconds to run each sampler on its own")
    args = parser.parse_args(argv)

    import torch

    devices = simulated_devices(args.devices, args.latency_us * 1e-6)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu; {args.devices} simulated GPUs, "
        f"{args.latency_us:.0f} µs per NVML call; {args.prompts} prompts × {args.max_new_tokens} new tokens, "
        f"batch {args.batch_size}, {args.rounds} rounds"
    )
    for label, kind in (("one call per tick", PowerSampler), ("7 calls per tick", SevenCallSampler)):
        share = sampler_cpu_share(devices, kind, args.alone_s)
        print(f"  sampler alone, {label}: {100 * share:.3f} % of one core → tokens/s ratio bound ≈ {1 - share:.4f}")
    with tempfile.TemporaryDirectory(prefix="llem-bench-") as tmp:
        backend = load_backend(build_tiny_llama(Path(tmp) / "tiny", MODELS["tiny"]), [], args.batch_size)
        raw = [Prompt(TEXT, args.max_new_tokens, max_input_tokens=64) for _ in range(args.prompts)]
        prompts = full_length(backend.prepare(raw), args.max_new_tokens)
        arms: dict[str, Arm] = {
            "sampler on": harness_loop(backend, prompts, devices),
            "sampler off": harness_loop(backend, prompts, None),
        }
        if args.legacy:
            arms["7 calls/tick"] = harness_loop(backend, prompts, devices, sampler_type=SevenCallSampler)
        for arm in arms.values():  # warm every path
            arm()
        rates = interleave(arms, args.rounds)
        report(
            "sampler on vs off, one field-values call per device per tick", rates, "sampler on", "sampler off", 0.995
        )
        if args.legacy:
            report("7 calls per device per tick vs off", rates, "7 calls/tick", "sampler off", 0.995)
        backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
