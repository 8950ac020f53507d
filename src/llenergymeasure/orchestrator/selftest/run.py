"""``llem self-test --gpu``: validate a GPU host end to end and write ``<output>/report.json`` + ``summary.txt``.

Steps, each reported:

1. a GPU must be visible to NVML (else one line and exit 1: `require_visible_gpu`);
2. the images: present, else pulled, else built from the package (`image_ops`);
3. the counter phase test: ``python -m llenergymeasure.harness.phase_probe`` in
   the PyTorch image on the GPUs (on simulated GPUs: the spec's square waves),
   analysed here (`phase.analyse`);
4. model runs: every model on every backend for ``cycles`` cycles (plus tensor
   parallel 2 on vLLM and TensorRT-LLM where two GPUs exist), one study through
   the normal `run_study` path (pre-flight fetches hub models once on the host);
5. the report: J/output token with its CV per (backend, model, TP), timeline vs
   counter, baseline, the environment, every warning, the GPU test tier's
   counts (from its JUnit file), verdicts against the thresholds of `report`.

Under ``LLEM_SIMULATE_GPUS`` the same code runs on the simulated devices (the
model computes on CPU; the report says ``simulated``): that is how ``make test``
exercises the whole check without a GPU.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llenergymeasure.errors import LLEMError
from llenergymeasure.images import host_variant
from llenergymeasure.orchestrator.runners.docker_spec import simulated_gpu_spec
from llenergymeasure.orchestrator.runners.gpus import GpuProbe, probe_gpus
from llenergymeasure.orchestrator.selftest import require_visible_gpu
from llenergymeasure.orchestrator.selftest.phase import Phase, PhaseResult, analyse
from llenergymeasure.orchestrator.selftest.report import GpuCheckReport, judge, render, summarize
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.simulated_gpus import CONTAINER_SIMULATED_GPUS_SPEC, SIMULATE_GPUS_ENV_VAR
from llenergymeasure.schemas.study import StudyConfig

#: the ~0.5 B instruct model of the check (fetched once on the host by pre-flight)
SMALL_INSTRUCT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
#: `models` entry meaning "a tiny random-weight Llama built in the PyTorch image"
TINY = "tiny"

LineSink = Callable[[str], None]


class SelfTestError(LLEMError):
    """A step of the GPU check could not run (not a threshold failure: those are in the report)."""


@dataclass
class SelfTestOptions:
    output_dir: Path = Path("gpu-check")
    backends: Sequence[str] = ("pytorch", "vllm", "tensorrt")
    models: Sequence[str] = (TINY, SMALL_INSTRUCT_MODEL)
    cycles: int = 5
    n_prompts: int = 200
    output_tokens: int = 128
    phase_window_s: float = 12.0
    baseline_s: float = 15.0
    tests_junit: Path | None = None
    pull: bool = True
    project_wheel: Path | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def run_gpu_check(
    opts: SelfTestOptions, *, docker_client: Any = None, gpu_probe: GpuProbe | None = None, on_line: LineSink = print
) -> GpuCheckReport:
    gpus = gpu_probe if gpu_probe is not None else probe_gpus(opts.env)
    count = require_visible_gpu(gpus)
    simulated = bool(opts.env.get(SIMULATE_GPUS_ENV_VAR, "").strip())
    on_line(f"{count} {'simulated ' if simulated else ''}GPU(s) visible to NVML")
    client = docker_client if docker_client is not None else _connect()
    opts.output_dir.mkdir(parents=True, exist_ok=True)

    images = _images(client, opts, count, on_line)
    warnings: list[str] = []
    phase_rows = _phase_test(client, images["pytorch"], opts, simulated, on_line)
    if not phase_rows:
        warnings.append("counter phase test: no wave to probe (simulated devices need a 'square' power trace)")
    models = [_tiny_model(client, images["pytorch"], opts, on_line) if m == TINY else m for m in opts.models]
    results = _model_runs(opts, models, count, on_line, warnings)

    runs = summarize(results)
    verdicts = judge(runs)
    tests = _junit_counts(opts.tests_junit) if opts.tests_junit else None
    for s in runs:
        warnings += [f"{s.backend} {s.model}: {w}" for w in dict.fromkeys(s.warnings)]
    env = results[-1].environment_snapshot if results else None
    report = GpuCheckReport(
        created_at=datetime.now(timezone.utc),
        host_gpus=[g.name for g in env.gpus] if env else [],
        driver_version=env.driver_version if env else None,
        cuda_version=env.cuda_version if env else None,
        simulated=simulated,
        images=images,
        gpu_tests=tests,
        phase_test=phase_rows,
        runs=runs,
        verdicts=verdicts,
        warnings=warnings,
        passed=bool(verdicts) and all(v.passed for v in verdicts) and not (tests or {}).get("failed"),
    )
    (opts.output_dir / "report.json").write_text(report.model_dump_json(indent=2) + "\n")
    (opts.output_dir / "summary.txt").write_text(render(report))
    return report


def _connect() -> Any:
    from llenergymeasure.orchestrator.runners.factory import connect_docker

    client, why = connect_docker()
    if client is None:
        raise SelfTestError(f"cannot reach the Docker daemon: {why}; start Docker (systemctl start docker)")
    return client


def _images(client: Any, opts: SelfTestOptions, gpu_count: int, on_line: LineSink) -> dict[str, str]:
    """backend → image: present, else pulled, else built here from the package's Dockerfile."""
    from llenergymeasure.orchestrator.image_ops import ImageError, build_image, plan_build, pull_image
    from llenergymeasure.orchestrator.preflight import check_image
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions
    from llenergymeasure.orchestrator.user_config import load_user_config

    user = load_user_config(opts.env)
    wanted = dict.fromkeys(["pytorch", *opts.backends])  # the phase test and the tiny model need pytorch's
    images: dict[str, str] = {}
    for backend in wanted:
        variant = host_variant(backend, 0 if opts.env.get(SIMULATE_GPUS_ENV_VAR) else gpu_count)  # simulated: CPU
        ref = user.image_for(backend, variant)
        if check_image(client, ref, docker_exceptions()) and opts.pull:
            try:
                pull_image(client, ref, on_line)
            except ImageError as e:
                on_line(f"{e.message}; building it here instead")
                plan = plan_build(backend, variant, registry=user.config.runners.registry, tag=ref,
                                  project_wheel=opts.project_wheel)  # fmt: skip
                build_image(client, plan, on_line)
        failures = check_image(client, ref, docker_exceptions())
        if failures:
            raise SelfTestError(f"{failures[0].message} (fix: {failures[0].fix})")
        on_line(f"image {backend}: {ref}")
        images[backend] = ref
    return images


def _container(client: Any, image: str, command: list[str], opts: SelfTestOptions, **kwargs: Any) -> str:
    """Run `command` in `image` on the host's GPUs (or the simulated ones); its stdout. Raises `SelfTestError`."""
    from llenergymeasure.orchestrator.runners.docker_engine import engine_of
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions

    volumes = dict(kwargs.pop("volumes", {}))
    env = {"PYTHONUNBUFFERED": "1"}
    spec = simulated_gpu_spec(opts.env)
    if spec is not None:
        volumes[str(spec)] = {"bind": CONTAINER_SIMULATED_GPUS_SPEC, "mode": "ro"}
        env[SIMULATE_GPUS_ENV_VAR] = CONTAINER_SIMULATED_GPUS_SPEC
    else:
        import docker.types

        kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    try:
        out = engine_of(client).run_container(
            image, entrypoint=command[:1], command=command[1:], environment=env, volumes=volumes,
            remove=True, network_mode="none", user=f"{os.getuid()}:{os.getgid()}", **kwargs,
        )  # fmt: skip
    except docker_exceptions() as e:
        stderr = getattr(e, "stderr", b"") or b""
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:] if isinstance(stderr, bytes) else []
        raise SelfTestError(f"{' '.join(command)} failed in {image}: {e}" + "".join(f"\n  {t}" for t in tail)) from e
    return out.decode()


def _phase_test(
    client: Any, image: str, opts: SelfTestOptions, simulated: bool, on_line: LineSink
) -> list[PhaseResult]:
    on_line("counter phase test" + (" (simulated square waves)" if simulated else " (busy/idle load, 0.5-20 Hz)"))
    command = ["python", "-m", "llenergymeasure.harness.phase_probe", "--window-s", f"{opts.phase_window_s:g}"]
    rows = []
    for line in _container(client, image, command, opts).splitlines():
        if not line.startswith("{"):
            continue
        raw = json.loads(line)
        phases = [Phase(float(a), float(b), bool(busy)) for a, b, busy in raw["phases"]]
        samples = [(float(t), float(w)) for t, w in raw["samples"]]
        row = analyse(float(raw["frequency_hz"]), phases, [float(c) for c in raw["counter_j"]], samples)
        dev = f"{row.deviation_pct:+.1f} %" if row.deviation_pct is not None else "n/a"
        on_line(f"  {row.frequency_hz:g} Hz: timeline vs counter {dev}, counter saw {row.phases_seen}/{row.phases}")
        rows.append(row)
    return rows


def _tiny_model(client: Any, image: str, opts: SelfTestOptions, on_line: LineSink) -> str:
    target = (opts.output_dir / "tiny-llama").resolve()
    if not (target / "config.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        script = "from llenergymeasure.harness.tiny_model import build_tiny_llama; build_tiny_llama('/out')"
        _container(client, image, ["python", "-c", script], opts, volumes={str(target): {"bind": "/out", "mode": "rw"}})
    on_line(f"tiny model: {target}")
    return str(target)


def experiments_for(opts: SelfTestOptions, models: Sequence[str], gpu_count: int) -> list[dict[str, Any]]:
    """The check's experiments: every model on every backend, plus TP 2 on vLLM/TensorRT-LLM with two GPUs."""
    shared: dict[str, Any] = {
        "precision": "bf16",
        "n": opts.n_prompts,
        "dataset": {"synthetic": True, "input_tokens": 128, "output_tokens": opts.output_tokens},
        "warmup": {"n_warmup": 3},
        "baseline": {"duration_seconds": opts.baseline_s},
    }
    out = []
    for backend in opts.backends:
        for model in models:
            out.append({**shared, "model": model, "backend": backend})
            if gpu_count >= 2 and backend == "vllm":
                out.append(
                    {**shared, "model": model, "backend": backend, "vllm": {"engine": {"tensor_parallel_size": 2}}}
                )
            if gpu_count >= 2 and backend == "tensorrt":
                out.append({**shared, "model": model, "backend": backend, "tensorrt": {"tp_size": 2}})
    return out


def _model_runs(
    opts: SelfTestOptions, models: Sequence[str], gpu_count: int, on_line: LineSink, warnings: list[str]
) -> list[ExperimentResult]:
    from llenergymeasure.orchestrator.api import run_study

    study = StudyConfig.model_validate(
        {
            "name": "gpu-check",
            "experiments": experiments_for(opts, models, gpu_count),
            "execution": {"n_cycles": opts.cycles, "cycle_order": "interleaved",
                          "config_gap_seconds": 0, "cycle_gap_seconds": 0},
        }
    )  # fmt: skip
    on_line(f"model runs: {len(study.experiments)} configuration(s) × {opts.cycles} cycles")
    result = run_study(study, output_dir=opts.output_dir / "runs", no_gaps=True, quiet=True, env=dict(opts.env))
    if result.runs_failed:
        warnings.append(f"{result.runs_failed} of {result.runs_total} model runs failed (see {result.study_dir})")
    study_dir = Path(result.study_dir)
    return [ExperimentResult.model_validate_json((study_dir / f).read_text()) for f in result.result_files]


def _junit_counts(path: Path) -> dict[str, int]:
    """passed/failed/skipped of a pytest JUnit XML file; a missing file counts as one failure."""
    if not path.is_file():
        return {"failed": 1, "passed": 0, "skipped": 0}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}
