#!/usr/bin/env python3
"""Overhead of the harness's measured loop, measured side by side in one run (A/B interleaved).

1. **harness loop vs bare loop** — the same prompts, batches and ``generate``
   arguments, run (A) through `llenergymeasure.harness.window.run_window` exactly
   as the harness runs its window (pre-tokenised prompts, per-batch padding and
   exact token counting inside `PyTorchBackend.generate`, throttled progress
   events, a heartbeat thread, the energy meter's edges) and (B) as a bare loop of
   ``model.generate`` over pre-built tensors. Target: tokens/s ratio A/B ≥ 0.99.
2. **sampler on vs off** — the harness loop with the power-timeline sampler
   running at its default 100 ms vs not running. Target ≥ 0.995. With ``--gpu``
   the sampler reads the GPU through NVML in its own process, as the harness
   runs it. Without an NVIDIA GPU it reads a *fake* device in a thread of this
   process (a fake cannot be opened from another process): by default each
   reading is a ctypes call into libc (``usleep``, 20 µs) — like pynvml, a
   foreign call that releases the GIL for its duration; ``--fake-device python``
   uses pure-Python readings that hold the GIL instead (a pessimistic stand-in).
   `bench_sampler_nvml.py` measures the sampler process on simulated GPUs.

Each round runs both arms in alternating order (ABBA…) so drift and background
load hit both; the script prints per-arm medians, the ratio of medians, the
median of per-round paired ratios and the ratio of the best rounds (the least
disturbed by other processes) — for wall-clock tokens/s (the figure that
matters) and for tokens per CPU-second of the whole process, all threads
included (less sensitive to other processes competing for the cores).

usage: python benchmarks/bench_harness_overhead.py [--models tiny small] [--rounds 15] [--gpu]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.backends.pytorch import PyTorchBackend
from llenergymeasure.harness.energy.device import MeasuredDevice, open_nvml
from llenergymeasure.harness.energy.null import NullMeter
from llenergymeasure.harness.energy.sampler import PowerSampler
from llenergymeasure.harness.energy.sampler_process import ChildDevices
from llenergymeasure.harness.events import EventEmitter, Heartbeat, ThrottledProgress
from llenergymeasure.harness.tiny_model import TinyModelSpec, build_tiny_llama
from llenergymeasure.harness.warmup import full_length
from llenergymeasure.harness.window import run_window
from llenergymeasure.schemas.config.experiment import ExperimentConfig

MODELS = {
    "tiny": TinyModelSpec(),  # ~82 k non-embedding params
    "small": TinyModelSpec(
        hidden_size=512, intermediate_size=1376, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=8
    ),  # ~19 M non-embedding params
}
TEXT = "The energy efficiency of language model inference is measured in joules per output token. " * 8


class PythonFakeDevice:
    """A pure-Python stand-in for an NVML device (constant readings, a little work per call)."""

    uuid = "GPU-bench"
    name = "bench"

    def _work(self) -> int:
        return sum(range(200))  # ~5 µs of interpreter time, GIL held

    def power_and_energy(self) -> tuple[int | None, int | None]:
        return self._work(), 1  # one driver call in NVML: one unit of work here

    def read_failures(self) -> dict[str, int]:
        return {}

    def energy_mj(self) -> int | None:
        return self._work()

    def power_instant_mw(self) -> int | None:
        return self._work()

    def temperature_c(self) -> float | None:
        return 50.0 + self._work() * 0

    def sm_clock_mhz(self) -> int | None:
        return self._work()

    def memory_used_mb(self) -> float | None:
        return float(self._work())

    def memory_total_mb(self) -> float | None:
        return 80_000.0

    def utilization_pct(self) -> int | None:
        return self._work() % 100

    def throttle_reasons(self) -> int | None:
        return 0

    def power_limit_w(self) -> float | None:
        return 700.0

    def persistence_mode(self) -> bool | None:
        return True

    def mig_mode(self) -> bool | None:
        return False

    def compute_pids(self) -> list[int] | None:
        return []


class CtypesFakeDevice(PythonFakeDevice):
    """Each reading is a 20 µs foreign call through ctypes (which releases the GIL), as pynvml's are."""

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        self._libc = ctypes.CDLL(ctypes.util.find_library("c"))

    def _work(self) -> int:
        self._libc.usleep(20)
        return 1

    def power_and_energy(self) -> tuple[int | None, int | None]:
        return self._work(), 1  # one foreign call, like nvmlDeviceGetFieldValues


def load_backend(model_dir: Path, device_ids: list[int], batch_size: int) -> PyTorchBackend:
    cfg = ExperimentConfig(model=str(model_dir), precision="bf16", pytorch={"batch_size": batch_size})
    backend = PyTorchBackend(cfg, cfg.pytorch, device_ids)
    backend.load()
    return backend


Arm = Callable[[], tuple[int, float, float]]


def bare_loop(backend: PyTorchBackend, prompts: list[Prompt]) -> Arm:
    """A closure running plain ``model.generate`` over pre-built tensors: (output tokens, wall s, CPU s)."""
    import torch

    model = backend.model
    size = backend.preferred_batch_size
    batches = []
    for i in range(0, len(prompts), size):
        group = prompts[i : i + size]
        rows = [list(p.token_ids or ()) for p in group]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[backend._pad_id] * (width - len(r)) + r for r in rows], device=model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
        batches.append((ids, mask, backend.generation_kwargs(group[0])))

    def run() -> tuple[int, float, float]:
        tokens = 0
        backend.synchronize()
        c0, t0 = time.process_time(), time.perf_counter()
        with torch.inference_mode():
            for ids, mask, kwargs in batches:
                out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
                tokens += (out.shape[1] - ids.shape[1]) * out.shape[0]
        backend.synchronize()
        return tokens, time.perf_counter() - t0, time.process_time() - c0

    return run


@contextlib.contextmanager
def harness_threads(sampler: PowerSampler | None, emitter: EventEmitter) -> Iterator[None]:
    """The threads the harness has running during its window: the heartbeat, and the sampler when given."""
    with Heartbeat(emitter, 10.0):
        if sampler is not None:
            sampler.start()
        try:
            yield
        finally:
            if sampler is not None:
                sampler.stop()


def harness_loop(
    backend: PyTorchBackend, prompts: list[Prompt], make_sampler: Callable[[], PowerSampler] | None
) -> Arm:
    """A closure running the harness's measured window: (output tokens, wall s, CPU s); `make_sampler` gives each run
    a new sampler, started and stopped around the window as the harness does."""
    emitter = EventEmitter(io.StringIO())

    def run() -> tuple[int, float, float]:
        sampler = make_sampler() if make_sampler is not None else None
        meter = NullMeter("benchmark")
        with harness_threads(sampler, emitter):
            c0 = time.process_time()
            outcome = run_window(backend, prompts, meter, on_progress=ThrottledProgress(emitter))
            cpu_s = time.process_time() - c0
        return outcome.output_tokens, outcome.duration_s, cpu_s

    return run


def interleave(arms: dict[str, Arm], rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall-clock tokens/s, tokens per CPU-second) of each arm per round, alternating the order every round."""
    names = list(arms)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            tokens, wall_s, cpu_s = arms[name]()
            wall[name].append(tokens / wall_s)
            cpu[name].append(tokens / cpu_s)
    return wall, cpu


def report(
    title: str, rates: tuple[dict[str, list[float]], dict[str, list[float]]], a: str, b: str, target: float
) -> None:
    print(f"  {title}  (target ≥ {target})")
    for label, per_arm in zip(("wall-clock tokens/s", "tokens per CPU-s"), rates, strict=True):
        med_a, med_b = statistics.median(per_arm[a]), statistics.median(per_arm[b])
        paired = statistics.median(x / y for x, y in zip(per_arm[a], per_arm[b], strict=True))
        best = max(per_arm[a]) / max(per_arm[b])
        verdict = "OK" if med_a / med_b >= target else "BELOW TARGET"
        print(
            f"    {label:<20} {a} {med_a:9.1f} | {b} {med_b:9.1f} | ratio of medians {med_a / med_b:.4f} "
            f"| median paired ratio {paired:.4f} | ratio of bests {best:.4f}  {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], choices=sorted(MODELS))
    parser.add_argument("--model-dir", type=Path, help="use this model directory instead of building random ones")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--gpu", action="store_true", help="run on cuda:0 and sample the real GPU through NVML")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--fake-device", choices=["ctypes", "python"], default="ctypes")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device_ids = [0] if args.gpu else []
    sampler_devices: list[MeasuredDevice]
    nvml: Any = open_nvml() if args.gpu else None
    child: ChildDevices | None = None
    if nvml is not None:
        dev = nvml.device(0)
        sampler_devices = [MeasuredDevice(0, dev.uuid, dev)]
        child = ChildDevices(driver=nvml.sampler_driver(), device_ids=[0], host_ids=[0])
        sampler_kind = f"NVML ({dev.name}), in the sampler's own process as the harness runs it"
    elif args.fake_device == "ctypes":
        sampler_devices = [MeasuredDevice(0, CtypesFakeDevice.uuid, CtypesFakeDevice())]
        sampler_kind = "fake device, 20 µs ctypes call per reading (GIL released, like pynvml)"
    else:
        sampler_devices = [MeasuredDevice(0, PythonFakeDevice.uuid, PythonFakeDevice())]
        sampler_kind = "pure-Python fake device (GIL held while reading; pessimistic)"
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {'cuda:0' if args.gpu else 'cpu'}")
    print(
        f"{args.prompts} prompts × {args.max_new_tokens} new tokens, batch {args.batch_size}, {args.rounds} rounds; "
        f"sampler reads a {sampler_kind}"
    )

    with tempfile.TemporaryDirectory(prefix="llem-bench-") as tmp:
        targets = (
            [("model", args.model_dir)]
            if args.model_dir
            else [(name, build_tiny_llama(Path(tmp) / name, MODELS[name])) for name in args.models]
        )
        for name, model_dir in targets:
            backend = load_backend(model_dir, device_ids, args.batch_size)
            raw = [Prompt(TEXT, args.max_new_tokens, max_input_tokens=64) for _ in range(args.prompts)]
            prompts = full_length(backend.prepare(raw), args.max_new_tokens)  # fixed length: equal work per arm
            counts = backend.parameter_counts()
            print(f"\n[{name}] non-embedding params {counts.body if counts else 'unknown'}")
            harness = harness_loop(backend, prompts, None)
            bare = bare_loop(backend, prompts)
            for _ in range(2):  # warm both paths
                harness()
                bare()
            rates = interleave({"harness": harness, "bare": bare}, args.rounds)
            report("harness loop vs bare generate loop", rates, "harness", "bare", 0.99)
            with_sampler = harness_loop(backend, prompts, lambda: PowerSampler(sampler_devices, 0.1, child=child))
            rates = interleave({"sampler on": with_sampler, "sampler off": harness}, args.rounds)
            report("sampler on vs off (harness loop)", rates, "sampler on", "sampler off", 0.995)
            backend.close()
    if nvml is not None:
        nvml.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
