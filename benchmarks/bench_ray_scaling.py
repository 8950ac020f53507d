"""Scaling of a study over Ray nodes, and the dispatch overhead of Ray over this host's runner, in one run.

    python benchmarks/bench_ray_scaling.py [--experiments 8] [--baseline-s 10] [--nodes 1 2 4]
                                           [--image llenergymeasure/pytorch:2.0.0-cpu]

The study: `--experiments` tiny experiments (a random-weight model, 2 prompts of 4 tokens) whose time
is dominated by idle waiting: each measures a `--baseline-s` idle baseline on a simulated GPU
(``LLEM_SIMULATE_GPUS``, 150 W constant; ``baseline.ttl_seconds`` tiny, so no run reuses another's).
Arms, one after the other in this process, each through ``run_study`` with the docker runner and
the same image:

- **host**: this host's runner, no Ray (the study loop's synchronous dispatcher);
- **ray N**: ``run_study(..., ray_address=...)`` on a `ray.cluster_utils.Cluster` of a head without
  GPUs and N worker nodes (one CPU, one simulated GPU each), started before the clock starts.

Printed, all measured (wall clock, seconds):
- per arm: the study's wall time (``run_study`` call) and the span from the first run's start to the
  last run's end (manifest ``started_at``/``finished_at``), which leaves out connecting and probing;
- speedup(N) = span(ray 1) / span(ray N), against the target 0.85 × N;
- dispatch overhead per experiment = (time(ray 1) − time(host)) / experiments, for the whole call and
  for the span, against the target 0.5 s.

On a machine with few cores the containers of N nodes compete for the CPU while they start and
load the model; read the speedup with the core count (printed) in mind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_IMAGE = os.environ.get("IMAGE_CPU") or "llenergymeasure/pytorch:2.0.0-cpu"
OBJECT_STORE_BYTES = 80 * 1024 * 1024


def study(model: Path, experiments: int, baseline_s: float) -> dict[str, Any]:
    return {
        "name": "ray-scaling",
        "model": str(model),
        "backend": "pytorch",
        "precision": "fp32",
        "gpus": [0],
        "max_output_tokens": 4,
        "dataset": {"synthetic": True, "input_tokens": 8, "output_tokens": 4},
        "warmup": {"n_warmup": 1, "thermal_floor_seconds": 0},
        "baseline": {"duration_seconds": baseline_s, "ttl_seconds": 0.001},
        "experiments": [{"n": 2 + i} for i in range(experiments)],
        "execution": {"n_cycles": 1, "config_gap_seconds": 0, "cycle_gap_seconds": 0},
    }


def span_s(study_dir: Path) -> float:
    """First run's start to last run's end, seconds, from the manifest."""
    from llenergymeasure.schemas.manifest import StudyManifest

    manifest = StudyManifest.model_validate_json((study_dir / "manifest.json").read_text())
    starts = [e.started_at for e in manifest.entries if e.started_at]
    ends = [e.finished_at for e in manifest.entries if e.finished_at]
    assert manifest.status == "completed", f"{study_dir}: {manifest.status}"
    return (max(ends) - min(starts)).total_seconds()


def run_arm(config: dict[str, Any], output: Path, ray_address: str | None) -> tuple[float, float]:
    from llenergymeasure import run_study

    start = time.perf_counter()
    result = run_study(config, output_dir=output, quiet=True, ray_address=ray_address)
    wall = time.perf_counter() - start
    return wall, span_s(Path(result.study_dir))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=8)
    parser.add_argument("--baseline-s", type=float, default=10.0)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    args = parser.parse_args()
    os.environ["LLEM_IMAGE_PYTORCH"] = args.image
    os.environ.setdefault("LLEM_NO_PROMPT", "1")

    from ray.cluster_utils import Cluster

    from llenergymeasure.harness.tiny_model import build_tiny_llama

    work = Path(tempfile.mkdtemp(prefix="llem-bench-ray-"))
    model = build_tiny_llama(work / "tiny-llama")
    for p in [model, *model.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    spec = work / "gpu.json"
    spec.write_text(json.dumps({"devices": [{"name": "Sim 150 W", "power": {"kind": "constant", "watts": 150}}]}))
    spec.chmod(0o644)
    config = study(model, args.experiments, args.baseline_s)
    print(f"{args.experiments} experiments, {args.baseline_s:.0f} s idle baseline each; {os.cpu_count()} CPU cores")

    os.environ["LLEM_SIMULATE_GPUS"] = str(spec)
    host_wall, host_span = run_arm(config, work / "host", None)
    del os.environ["LLEM_SIMULATE_GPUS"]  # the head of each cluster has no GPU; the workers have their own
    print(f"host (no Ray)   : study {host_wall:6.1f} s, runs span {host_span:6.1f} s")

    spans: dict[int, tuple[float, float]] = {}
    for count in args.nodes:
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES}
        )
        for _ in range(count):
            cluster.add_node(
                num_cpus=1,
                num_gpus=1,
                object_store_memory=OBJECT_STORE_BYTES,
                env_vars={"LLEM_SIMULATE_GPUS": str(spec)},
            )
        cluster.wait_for_nodes()
        try:
            spans[count] = run_arm(config, work / f"ray{count}", cluster.address)
        finally:
            cluster.shutdown()
        print(f"ray {count} node(s)  : study {spans[count][0]:6.1f} s, runs span {spans[count][1]:6.1f} s")

    if 1 in spans:
        one_wall, one_span = spans[1]
        for count, (_, span) in sorted(spans.items()):
            speedup = one_span / span
            target = 0.85 * count
            verdict = "ok" if speedup >= target else "below target"
            print(f"speedup {count} node(s): {speedup:4.2f}x (measured, runs span; target >= {target:.2f}x) {verdict}")
        per_exp_wall = (one_wall - host_wall) / args.experiments
        per_exp_span = (one_span - host_span) / args.experiments
        for what, value in (("whole study call", per_exp_wall), ("runs span", per_exp_span)):
            verdict = "ok" if value <= 0.5 else "above target"
            print(
                f"dispatch overhead per experiment, Ray 1 node vs host ({what}): {value:+.2f} s (target <= 0.5 s) {verdict}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
