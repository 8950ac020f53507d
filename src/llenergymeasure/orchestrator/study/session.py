"""Wiring of one `run_study` call: config → runners → pre-flight → study directory → loop → result.

Order matters and is deliberate:
1. the multi-backend rule (never skippable), then pre-flight (all failures at
   once; skippable only with ``skip_preflight=True``);
2. orphan containers of dead llem processes are reaped *before* a resume looks
   at run directories, so nothing is still writing into them;
3. ``--resume`` adopts results written just before a crash before planning what
   is left;
4. ``study_result.json`` and the manifest's final status are written in a
   ``finally``, whatever ended the loop (success, circuit breaker, Ctrl-C).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llenergymeasure.errors import ConfigError, PreFlightError, PreFlightFailure
from llenergymeasure.orchestrator.display import StudyDisplay, make_display
from llenergymeasure.orchestrator.preflight import (
    HostServices,
    ModelFetcher,
    PreflightPlan,
    check_multi_backend,
    device_ids_for,
    run_preflight,
)
from llenergymeasure.orchestrator.runners import RunnerChoice, resolve_runner
from llenergymeasure.orchestrator.runners.base import EventCallback, Runner
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.factory import build_runners, connect_docker, docker_options_from
from llenergymeasure.orchestrator.runners.gpus import GpuProbe, probe_gpus
from llenergymeasure.orchestrator.runners.inputs import host_hf_cache
from llenergymeasure.orchestrator.runners.reaper import reap_orphans
from llenergymeasure.orchestrator.study.baseline_cache import BaselineCache
from llenergymeasure.orchestrator.study.gaps import GapWaiter
from llenergymeasure.orchestrator.study.layout import (
    MANIFEST_FILE,
    STUDY_YAML_FILE,
    atomic_write_text,
    create_study_dir,
)
from llenergymeasure.orchestrator.study.lock import StudyLock
from llenergymeasure.orchestrator.study.loop import LoopServices, StudyLoop
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.orchestrator.study.outcome import build_study_result, write_study_result
from llenergymeasure.orchestrator.study.resume import adopt_finished_runs, require_resumable
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig, load_user_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import carbon_intensity_warning
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.schemas.study_result import StudyResult
from llenergymeasure.schemas.sweep import experiment_as_study

logger = logging.getLogger(__name__)

StudyInput = StudyConfig | ExperimentConfig | str | Path | Mapping[str, Any]
RunnerInput = Runner | Mapping[str, Runner] | None


@dataclass
class SessionOptions:
    """The keyword arguments of `run_study` (`llenergymeasure.orchestrator.api.run_study`).

    - ``output_dir``: where the study directory is created (default: user config
      ``output.results_dir``); with ``resume`` it is searched for the study to continue
      and may name the study directory itself.
    - ``runner``: a `Runner` for every backend, or a mapping backend → `Runner`;
      default: resolved per backend (``LLEM_RUNNER_<BACKEND>`` > user config > docker).
    - ``no_gaps``: skip the pauses between runs; ``resume``: continue the latest
      unfinished study of the same design (see docs/study-directory.md).
    - ``quiet`` / ``verbose``: no progress on stderr / also every harness log line.
    - ``skip_preflight``: skip the host pre-flight (the multi-backend rule still applies).
    - ``user_config``, ``docker_client``, ``docker_options``, ``gpu_probe``,
      ``fetch_model``, ``display``, ``env``: injected collaborators (tests, embedding);
      each defaults to the real one for this host.
    - ``on_event``: called with every progress event of every run.
    """

    output_dir: str | Path | None = None
    runner: RunnerInput = None
    no_gaps: bool = False
    resume: bool = False
    quiet: bool = False
    verbose: bool = False
    skip_preflight: bool = False
    user_config: EffectiveUserConfig | None = None
    docker_client: Any = None
    docker_options: DockerOptions | None = None
    gpu_probe: GpuProbe | None = None
    fetch_model: ModelFetcher | None = None
    on_event: EventCallback | None = None
    display: StudyDisplay | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def as_study(config: StudyInput) -> StudyConfig:
    """A `StudyConfig` from a config object, a YAML path or a raw mapping."""
    from llenergymeasure.orchestrator.loader import load_study_config, study_from_mapping

    if isinstance(config, StudyConfig):
        return config
    if isinstance(config, ExperimentConfig):
        return experiment_as_study(config)
    if isinstance(config, (str, Path)):
        return load_study_config(config)
    if isinstance(config, Mapping):
        return study_from_mapping(config, "<dict>")
    raise ConfigError(f"run_study expects a StudyConfig, a path or a dict, got {type(config).__name__}")


def run_study_session(config: StudyInput, opts: SessionOptions) -> StudyResult:
    study = as_study(config)
    user = opts.user_config or load_user_config(opts.env)
    gpus = opts.gpu_probe or probe_gpus(opts.env)
    gpu_count = gpus.device_count()
    output_dir = Path(opts.output_dir if opts.output_dir is not None else user.config.output.results_dir)
    hf_cache = host_hf_cache(opts.env)
    docker_options = opts.docker_options or docker_options_from(user, hf_cache)
    runners = _resolve_runners(study, opts, user, gpu_count, docker_options)
    check_multi_backend(runners.kinds)

    if not opts.skip_preflight:
        plan = PreflightPlan(
            experiments=study.experiments,
            runner_kinds=runners.kinds,
            images=runners.images,
            host_device_ids=[device_ids_for(e, gpu_count) for e in study.experiments],
            output_dir=output_dir,
            hf_cache_dir=docker_options.hf_cache_dir or hf_cache,
        )
        services = HostServices(
            gpus=gpus,
            docker_client=runners.client,
            docker_error=runners.docker_error,
            fetch_model=opts.fetch_model,
            env=opts.env,
        )
        run_preflight(plan, services)
    elif runners.docker_error is not None:
        why = f"cannot reach the Docker daemon: {runners.docker_error}"
        raise PreFlightError([PreFlightFailure("docker daemon", why, "start Docker")])
    if runners.client is not None:
        _reap(runners.client)

    study_dir, store, lock = _open_study(study, output_dir, resume=opts.resume)
    try:
        return _run_loop(study, study_dir, store, runners, opts, gpu_count, user)
    finally:
        lock.release()


def _run_loop(
    study: StudyConfig,
    study_dir: Path,
    store: ManifestStore,
    runners: _Runners,
    opts: SessionOptions,
    gpu_count: int,
    user: EffectiveUserConfig,
) -> StudyResult:
    atomic_write_text(study_dir / STUDY_YAML_FILE, yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False))
    display = opts.display or make_display(quiet=opts.quiet, verbose=opts.verbose)
    measurement = user.config.measurement
    intensity_warning = carbon_intensity_warning(measurement.carbon_intensity_gco2_per_kwh)
    if intensity_warning:
        logger.warning("%s", intensity_warning)
    services = LoopServices(
        runner_for=runners.runner_for,
        image_for=lambda b: runners.images.get(b) or runners.kinds.get(b, "runner"),
        device_ids_for=lambda e: device_ids_for(e, gpu_count),
        display=display,
        gaps=GapWaiter(enabled=not opts.no_gaps, on_tick=display.gap_tick),
        baselines=BaselineCache(),
        log_level="DEBUG" if opts.verbose else "INFO",
        on_event=opts.on_event,
        carbon_intensity_gco2_per_kwh=measurement.carbon_intensity_gco2_per_kwh,
        datacenter_pue=measurement.datacenter_pue,
    )
    display.study_started(store.manifest.study_id, len(store.manifest.entries), store.count("completed"))
    try:
        StudyLoop(study, study_dir, store, services).run()
    finally:
        display.close()
        if store.manifest.status == "running":  # left by an exception the loop did not classify
            store.set_status("failed")
        result = build_study_result(study, store, study_dir, runners.kinds.values())
        write_study_result(result, study_dir)
    return result


@dataclass
class _Runners:
    """The runner of each backend, its kind and image, and the Docker client behind them (if any)."""

    kinds: dict[str, str]
    images: dict[str, str]
    runner_for: Callable[[str], Runner]
    client: Any = None
    docker_error: str | None = None


def _resolve_runners(
    study: StudyConfig, opts: SessionOptions, user: EffectiveUserConfig, gpu_count: int, docker_options: DockerOptions
) -> _Runners:
    backends = sorted({str(e.backend) for e in study.experiments})
    if opts.runner is not None:
        given = {b: opts.runner for b in backends} if isinstance(opts.runner, Runner) else dict(opts.runner)
        missing = sorted(set(backends) - set(given))
        if missing:
            raise ConfigError(f"no runner given for backend(s) {missing}")
        images: dict[str, str] = {}
        client = None
        for backend in backends:
            if isinstance(given[backend], DockerRunner):
                docker_runner = given[backend]
                assert isinstance(docker_runner, DockerRunner)
                client = docker_runner.client
                images[backend] = docker_runner.image_for(backend)
        return _Runners({b: given[b].name for b in backends}, images, lambda b: given[b], client)

    choices: dict[str, RunnerChoice] = {b: resolve_runner(b, user, gpu_count=gpu_count) for b in backends}
    kinds = {b: str(c.kind) for b, c in choices.items()}
    images = {b: c.image for b, c in choices.items() if c.image is not None}
    client, docker_error = None, None
    if any(k == "docker" for k in kinds.values()):
        client, docker_error = connect_docker(opts.docker_client)
    if docker_error is not None:  # pre-flight reports it (with everything else) before any runner is used
        return _Runners(kinds, images, _unavailable, None, docker_error)
    built = build_runners(choices, docker_client=client, docker_options=docker_options)
    return _Runners(kinds, images, lambda b: built[b], client)


def _unavailable(backend: str) -> Runner:
    raise PreFlightError([PreFlightFailure("docker daemon", "the Docker daemon is unreachable", "start Docker")])


def _reap(client: Any) -> None:
    reaped = reap_orphans(client)
    if reaped:
        logger.warning(
            "removed %d container(s) left by a llem process that is gone: %s", len(reaped), ", ".join(reaped)
        )


def _open_study(study: StudyConfig, output_dir: Path, *, resume: bool) -> tuple[Path, ManifestStore, StudyLock]:
    """The study directory (new, or the one to resume), its manifest, and the lock held on it."""
    if resume:
        study_dir = require_resumable(output_dir, study.study_design_hash)
        lock = StudyLock(study_dir).acquire()  # before reading the manifest: nobody else may be writing it
        try:
            store = ManifestStore.load(study_dir / MANIFEST_FILE)
            adopt_finished_runs(store, study_dir)
            store.reconcile(study)
        except BaseException:
            lock.release()
            raise
        logger.info(
            "resuming %s: %d of %d runs already completed",
            study_dir,
            store.count("completed"),
            len(store.manifest.entries),
        )
        return study_dir, store, lock
    study_dir = create_study_dir(output_dir, study.name)
    lock = StudyLock(study_dir).acquire()
    return study_dir, ManifestStore.create(study_dir, study_dir.name, study), lock
