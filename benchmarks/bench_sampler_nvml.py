#!/usr/bin/env python3
"""Cost of the power-timeline sampler on generation, on 8 simulated GPUs whose NVML calls take 100 µs each.

The sampler reads the devices through the real device adapter (`PynvmlProvider`) over the simulated
NVML driver (``llenergymeasure.simgpu``) with ``call_latency_s=1e-4``, in its own process as the harness
runs it (the child opens the same simulated driver: same time origin, shared call counts).

How the 100 µs call is modelled: the driver *sleeps* 100 µs inside each call. A pynvml call is a ctypes
call into libnvidia-ml, and ctypes releases the GIL for the duration of the foreign call; the time is
spent waiting on the kernel driver (an ioctl), not running Python. A sleep has the same two costs for
the generating thread — the GIL is handed back and forth once per call, and the sampler thread is woken
by the kernel — and no others. A Python busy loop would instead hold the GIL for 100 µs per call and
measure a cost the real driver does not have. (The sleep overshoots by the kernel's timer slack, so a
call lasts ~150 µs of wall time: the sampler's tick gets longer, not its CPU or GIL time.)

Arms, on the tiny model's ``generate`` inside the harness's window loop (a new sampler per run, started
and stopped as the harness does):

- **sampler on**: the sampler as the harness runs it — its own process, one ``nvmlDeviceGetFieldValues``
  call per device per 100 ms tick (instant power + energy counter), the slow readings once a second;
- **sampler off**: no sampler;
- **in a thread** (``--thread``): the same ticks in a thread of the generating process (the fallback when
  the sampler process cannot start): every driver call hands the GIL back and forth with ``generate``;
- **7 calls per tick** (``--legacy``): in a thread, every quantity read with its own call at every tick.

Trustworthy on a noisy machine: the arms run as interleaved pairs in one process (off/on, then on/off,
alternating so a steady drift cancels), each run long enough to span many ticks and several full reads
(``--prompts``; the default is ~2 s of generation). The figure is the **median of the
per-pair ratios** (tokens/s on ÷ tokens/s off, measured in the same minute), printed with its spread:
quartiles, min–max, and a distribution-free 95 % confidence interval of the median (order statistics).
Target: median paired wall-clock ratio ≥ 0.995. The script prints; ``--check`` makes it exit 1 below the
target. Alongside, the same statistics for tokens per CPU-second of the generating process (all its
threads; a sampler thread's included, the sampler process's not — its share is measured on its own,
below): a run that other processes push off the cores loses wall time but hardly CPU time, so this
ratio stays readable when the wall-clock spread shows the machine was busy.

Generation runs on ONE torch thread by default (``--threads``), as it does on a GPU host: there one
Python thread drives ``generate`` (launching kernels; the arithmetic is on the GPU) and the host has
cores to spare, so what the sampler can cost the generating thread is its GIL hand-offs, not CPU time.
``--threads N`` (e.g. every core of a CPU-only machine) instead lets torch's worker threads take every
core: then the sampler's CPU time is taken from them too, and the ratio cannot be better than about
1 − the sampler's CPU share, which the script measures on its own (nothing else running; this
process's and the sampler process's CPU time, Python plus the kernel's sleeps and wake-ups).

usage: python benchmarks/bench_sampler_nvml.py [--pairs 21] [--devices 8] [--latency-us 100] [--threads 1]
                                               [--thread] [--legacy] [--check]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_harness_overhead import MODELS, TEXT, Arm, harness_loop, load_backend
from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.energy.device import MeasuredDevice, PynvmlProvider
from llenergymeasure.harness.energy.sampler import PowerSample, PowerSampler
from llenergymeasure.harness.energy.sampler_process import ChildDevices
from llenergymeasure.harness.tiny_model import build_tiny_llama
from llenergymeasure.harness.warmup import full_length
from llenergymeasure.schemas.simulated_gpus import SimulatedGpuSpec
from llenergymeasure.simgpu import SimulatedNvml


def simulated_devices(count: int, latency_s: float) -> tuple[PynvmlProvider, list[MeasuredDevice], ChildDevices]:
    """The provider, its devices, and how the sampler process opens them."""
    spec = SimulatedGpuSpec.model_validate({"devices": [{"power": {"kind": "constant", "watts": 300}}] * count})
    provider = PynvmlProvider(SimulatedNvml(spec, call_latency_s=latency_s))
    devices = [MeasuredDevice(i, (d := provider.device(i)).uuid, d) for i in range(count)]
    driver = provider.sampler_driver()
    assert driver is not None
    return provider, devices, ChildDevices(driver=driver, device_ids=list(range(count)), host_ids=list(range(count)))


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


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds of this process, plus those of the sampler process `pid` (from /proc) when there is one."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sampler_cpu_share(make_sampler: Callable[[], PowerSampler], seconds: float) -> float:
    """CPU seconds per wall second the running sampler takes on its own (nothing else running; a sampler
    process's start — its imports — left out: it happens before the baseline, not in the window)."""
    sampler = make_sampler()
    sampler.start()
    pid = sampler.process_id
    c0, t0 = process_cpu_s(pid), time.perf_counter()
    time.sleep(seconds)
    c1, t1 = process_cpu_s(pid), time.perf_counter()
    sampler.stop()
    return (c1 - c0) / (t1 - t0)


def paired_runs(arms: dict[str, Arm], pairs: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall-clock tokens/s, tokens per process CPU-second) of each arm, run as interleaved pairs; the order
    alternates every pair."""
    names = list(arms)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for p in range(pairs):
        for name in names if p % 2 == 0 else names[::-1]:
            tokens, wall_s, cpu_s = arms[name]()
            wall[name].append(tokens / wall_s)
            cpu[name].append(tokens / cpu_s)
    return wall, cpu


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median: the order statistics x(j), x(n-1-j) (binomial, p = ½)."""
    x = sorted(values)
    n = len(x)
    j = 0
    # widen from the extremes inward while the two tails together stay under 1 − confidence
    while j + 1 < n - 1 - (j + 1) and 2 * sum(math.comb(n, i) for i in range(j + 2)) / 2**n <= 1 - confidence:
        j += 1
    return x[j], x[n - 1 - j]


def pair_ratio_summary(on: list[float], off: list[float]) -> dict[str, float]:
    """Median, quartiles, min, max and 95 % CI of the median of the per-pair ratios on ÷ off."""
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    low, high = median_interval(ratios)
    return {
        "median": statistics.median(ratios),
        "q1": q1,
        "q3": q3,
        "min": min(ratios),
        "max": max(ratios),
        "ci_low": low,
        "ci_high": high,
    }


def print_pairs(
    title: str, rates: tuple[dict[str, list[float]], dict[str, list[float]]], a: str, b: str, target: float
) -> float:
    """Print the paired comparison of arm `a` against arm `b`; returns the median paired wall-clock ratio."""
    print(f"  {title}  ({len(rates[0][a])} pairs; target: wall-clock median ≥ {target})")
    medians = []
    for label, per_arm in zip(("wall-clock tokens/s", "tokens per CPU-s"), rates, strict=True):
        summary = pair_ratio_summary(per_arm[a], per_arm[b])
        medians.append(summary["median"])
        print(
            f"    {label} (measured): median {a} {statistics.median(per_arm[a]):.1f} | "
            f"{b} {statistics.median(per_arm[b]):.1f}"
        )
        print(
            f"      ratio {a} ÷ {b} per pair: median {summary['median']:.4f} "
            f"| 95 % CI of the median [{summary['ci_low']:.4f}, {summary['ci_high']:.4f}] "
            f"| quartiles [{summary['q1']:.4f}, {summary['q3']:.4f}] | min–max [{summary['min']:.4f}, {summary['max']:.4f}]"
        )
    print(f"    verdict: {'OK' if medians[0] >= target else 'BELOW TARGET'} (wall-clock median paired ratio)")
    return medians[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=21, help="interleaved (off, on) pairs")
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--latency-us", type=float, default=100.0)
    parser.add_argument("--prompts", type=int, default=256, help="prompts per run (the default: ~2 s per run)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--target", type=float, default=0.995)
    parser.add_argument("--thread", action="store_true", help="also measure the sampler in a thread of this process")
    parser.add_argument("--legacy", action="store_true", help="also measure a 7-calls-per-tick sampler (a thread)")
    parser.add_argument("--alone-s", type=float, default=10.0, help="seconds to run each sampler on its own")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1: one generating thread, as on a GPU)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the median paired ratio is below --target")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")

    import torch

    torch.set_num_threads(args.threads)
    provider, devices, child = simulated_devices(args.devices, args.latency_us * 1e-6)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu; {args.devices} simulated GPUs, "
        f"{args.latency_us:.0f} µs per NVML call (simulated); {args.prompts} prompts × {args.max_new_tokens} new "
        f"tokens, batch {args.batch_size}, {args.pairs} pairs"
    )
    samplers: dict[str, Callable[[], PowerSampler]] = {"sampler on": lambda: PowerSampler(devices, 0.1, child=child)}
    if args.thread:
        samplers["in a thread"] = lambda: PowerSampler(devices, 0.1)
    if args.legacy:
        samplers["7 calls/tick"] = lambda: SevenCallSampler(devices, 0.1)
    for label, make in samplers.items():
        share = sampler_cpu_share(make, args.alone_s)
        print(
            f"  {label}, alone: {100 * share:.3f} % of one core (measured, CPU s per wall s) "
            f"→ bound when generation keeps every core busy ≈ {1 - share:.4f}"
        )
    with tempfile.TemporaryDirectory(prefix="llem-bench-") as tmp:
        backend = load_backend(build_tiny_llama(Path(tmp) / "tiny", MODELS["tiny"]), [], args.batch_size)
        raw = [Prompt(TEXT, args.max_new_tokens, max_input_tokens=64) for _ in range(args.prompts)]
        prompts = full_length(backend.prepare(raw), args.max_new_tokens)
        arms: dict[str, Arm] = {"sampler off": harness_loop(backend, prompts, None)}
        arms |= {label: harness_loop(backend, prompts, make) for label, make in samplers.items()}
        for arm in arms.values():  # warm every path
            arm()
        rates = paired_runs(arms, args.pairs)
        median = print_pairs(
            "sampler on (its own process, one field-values call per device per tick) vs off",
            rates,
            "sampler on",
            "sampler off",
            args.target,
        )
        if args.thread:
            print_pairs("the same sampler in a thread vs off", rates, "in a thread", "sampler off", args.target)
        if args.legacy:
            print_pairs(
                "7 calls per device per tick (a thread) vs off", rates, "7 calls/tick", "sampler off", args.target
            )
        backend.close()
    provider.close()
    return 1 if args.check and median < args.target else 0


if __name__ == "__main__":
    raise SystemExit(main())
