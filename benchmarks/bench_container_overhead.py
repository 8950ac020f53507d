"""Container overhead of one run, measured side by side with a bare container, in one process.

    python benchmarks/bench_container_overhead.py [--pairs 10] [--image llenergymeasure/pytorch:2.0.0-cpu]

Per pair (interleaved, so drift in the daemon or the page cache hits both arms):

- **llem**: the container `DockerRunner` would create for a real job (same spec:
  init, host uid:gid, /results mount, network none, labels, LLEM_EXPERIMENT),
  timed from ``containers.create`` → start → the first harness event parsed on
  stdout → ``remove(force=True)`` returned. The harness prints its first event
  before it loads any model, so model load is excluded by construction.
- **bare**: ``docker run --rm IMAGE true`` done with the same SDK calls
  (create → start → wait → remove).

Printed: median of each arm, median of the per-pair differences (llem − bare)
and the ratio of medians. The target is a difference ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llenergymeasure.orchestrator.runners.base import RunRequest, run_name
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions, build_spec, default_user
from llenergymeasure.orchestrator.runners.reaper import owner_labels
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.events import parse_event_line
from llenergymeasure.schemas.job import ExperimentJob, RunContext

DEFAULT_IMAGE = "llenergymeasure/pytorch:2.0.0-cpu"


def _job_spec(image: str, run_dir: Path, model_dir: Path, i: int) -> dict[str, Any]:
    config = ExperimentConfig(
        model=str(model_dir), precision="fp32", n=1, dataset={"synthetic": True, "input_tokens": 8, "output_tokens": 2}
    )
    job = ExperimentJob(config=config, context=RunContext(study_id="bench", experiment_id="bench", cycle=1))
    request = RunRequest(job=job, run_dir=run_dir, name=run_name("bench", os.getpid(), i), labels=owner_labels())
    spec = build_spec(request, image, DockerOptions(), host_env={}, host_user=default_user(os.getuid(), os.getgid()))
    return spec.create_kwargs()


def time_llem(client: Any, kwargs: dict[str, Any]) -> float:
    """create → first harness event on stdout → removed, seconds."""
    t0 = time.perf_counter()
    container = client.containers.create(**kwargs)
    try:
        container.start()
        buffer = b""
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=False):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            if any(parse_event_line(line.decode(errors="replace")) is not None for line in lines):
                break
        else:
            raise RuntimeError("the harness exited without printing an event; see `docker logs`")
    finally:
        container.remove(force=True)
    return time.perf_counter() - t0


def time_bare(client: Any, image: str, i: int) -> float:
    """``docker run --rm IMAGE true`` through the SDK: create → start → wait → remove, seconds."""
    t0 = time.perf_counter()
    container = client.containers.create(
        image=image, entrypoint=["true"], command=[], name=run_name("bench-bare", os.getpid(), i)
    )
    try:
        container.start()
        container.wait()
    finally:
        container.remove(force=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    args = parser.parse_args(argv)

    import docker

    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="llem-bench-") as tmp:
        model_dir = Path(tmp) / "model"  # never loaded: the run is cut at the first event
        model_dir.mkdir()
        (model_dir / "config.json").write_text("{}")
        llem_s: list[float] = []
        bare_s: list[float] = []
        # one unmeasured round of each, so the first pair does not pay for a cold page cache
        time_llem(client, _job_spec(args.image, _run_dir(tmp, -1), model_dir, -1))
        time_bare(client, args.image, -1)
        for i in range(args.pairs):
            first_llem = i % 2 == 0  # alternate which arm goes first
            for arm in ("llem", "bare") if first_llem else ("bare", "llem"):
                if arm == "llem":
                    llem_s.append(time_llem(client, _job_spec(args.image, _run_dir(tmp, i), model_dir, i)))
                else:
                    bare_s.append(time_bare(client, args.image, i))
    diffs = [a - b for a, b in zip(llem_s, bare_s, strict=True)]
    med_llem, med_bare, med_diff = statistics.median(llem_s), statistics.median(bare_s), statistics.median(diffs)
    print(f"image: {args.image}   pairs: {args.pairs} (interleaved, order alternating)")
    print(
        f"llem run   (create → first harness event → removed): median {med_llem:.3f} s  [{min(llem_s):.3f} … {max(llem_s):.3f}]"
    )
    print(
        f"bare run   (create → start → wait(true) → removed):  median {med_bare:.3f} s  [{min(bare_s):.3f} … {max(bare_s):.3f}]"
    )
    print(f"overhead   median of per-pair differences: {med_diff:.3f} s   ratio of medians: {med_llem / med_bare:.2f}x")
    verdict = "PASS" if med_diff <= 0.5 else "FAIL"
    print(f"target     ≤ 0.500 s median difference, model load excluded: {verdict}")
    return 0 if verdict == "PASS" else 1


def _run_dir(tmp: str, i: int) -> Path:
    d = Path(tmp) / f"run{i}"
    d.mkdir(exist_ok=True)
    return d


if __name__ == "__main__":
    sys.exit(main())
