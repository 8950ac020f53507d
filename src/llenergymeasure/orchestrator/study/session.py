"""Wiring of one `run_study` call: config → runners → pre-flight → study directory → loop → result.

Order matters and is deliberate:
1. the multi-backend rule (never skippable), then pre-flight (all failures at
   once; skippable only with ``skip_preflight=True``) — `host.prepare_host`, shared
   with `run_experiment`;
2. orphan containers of dead llem processes are reaped *before* a resume looks
   at run directories, so nothing is still writing into them;
3. ``--resume`` adopts results written just before a crash before planning what
   is left;
4. ``study_result.json`` and the manifest's final status are written in a
   ``finally``, whatever ended the loop (success, circuit breaker, Ctrl-C).

On a Ray cluster (``ray_address`` / ``--ray`` / ``runners.ray.address``) step 1 is the
connection and the probe of every node (cluster/ray_dispatcher.py), done *before* the
study directory is created, so a bad address leaves nothing behind; the loop then
dispatches to the nodes, and the connection is closed (each node cleaned of the study's
containers) whatever ended the study.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from llenergymeasure.errors import ConfigError, ConfigIssue, LLEMError
from llenergymeasure.orchestrator.cluster.dispatcher import Dispatcher
from llenergymeasure.orchestrator.display import StudyDisplay, make_display
from llenergymeasure.orchestrator.gpu_assignment import device_ids_for
from llenergymeasure.orchestrator.host import HostOptions, prepare_host
from llenergymeasure.orchestrator.preflight import check_multi_backend
from llenergymeasure.orchestrator.runners.base import EventCallback, Runner
from llenergymeasure.orchestrator.study.baseline_cache import BaselineCache
from llenergymeasure.orchestrator.study.gaps import GapWaiter
from llenergymeasure.orchestrator.study.layout import (
    MANIFEST_FILE,
    STUDY_YAML_FILE,
    create_study_dir,
)
from llenergymeasure.orchestrator.study.lock import StudyLock
from llenergymeasure.orchestrator.study.loop import LoopServices, StudyLoop
from llenergymeasure.orchestrator.study.manifest_store import ManifestStore
from llenergymeasure.orchestrator.study.outcome import build_study_result, write_study_result
from llenergymeasure.orchestrator.study.policy import ExecutionRequest, with_execution_defaults, with_recorded_execution
from llenergymeasure.orchestrator.study.resume import adopt_finished_runs, require_resumable
from llenergymeasure.orchestrator.user_config import EffectiveUserConfig, load_user_config
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import carbon_intensity_warning
from llenergymeasure.schemas.study import CycleOrder, StudyConfig
from llenergymeasure.schemas.study_result import StudyResult
from llenergymeasure.schemas.sweep import experiment_as_study
from llenergymeasure.util.files import atomic_write_text

if TYPE_CHECKING:
    from llenergymeasure.orchestrator.cluster.ray_dispatcher import RayDispatcher

logger = logging.getLogger(__name__)

StudyInput = StudyConfig | ExperimentConfig | str | Path | Mapping[str, Any]


@dataclass
class SessionOptions(HostOptions):
    """The keyword arguments of `run_study` (`llenergymeasure.orchestrator.api.run_study`);
    those shared with `run_experiment` (runner, skip_preflight, injected clients) are `HostOptions`.

    - ``output_dir``: where the study directory is created (default: user config
      ``output.results_dir``); with ``resume`` it is searched for the study to continue
      and may name the study directory itself.
    - ``n_cycles`` / ``cycle_order``: asked for explicitly (``--cycles`` / ``--order``); they win
      over the file. Unset, a new study gets the policy of `study.policy` (3 cycles when the
      file sets none, gaps from the user config); a resumed one runs with what its manifest
      recorded, and an explicit value that contradicts the record is a `ConfigError`.
    - ``no_gaps``: skip the pauses between runs; ``resume``: continue the latest
      unfinished study of the same design (see docs/study-directory.md).
    - ``quiet`` / ``verbose``: no progress on stderr / also every harness log line.
    - ``display``: the progress display (default: stderr, per quiet/verbose).
    - ``on_event``: called with every progress event of every run.
    - ``ray_address``: run on a Ray cluster (``--ray``; default: user config ``runners.ray.address``):
      ``auto``, ``local``, ``ray://host:port`` or ``host:port`` (docs/campaigns.md). The head's own
      pre-flight is then replaced by a probe of every node.
    """

    output_dir: str | Path | None = None
    n_cycles: int | None = None
    cycle_order: CycleOrder | None = None
    no_gaps: bool = False
    resume: bool = False
    quiet: bool = False
    verbose: bool = False
    on_event: EventCallback | None = None
    display: StudyDisplay | None = None
    ray_address: str | None = None


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
    output_dir = Path(opts.output_dir if opts.output_dir is not None else user.config.output.results_dir)
    cluster = _connect_cluster(study, user, opts)  # before the study directory exists: a bad address creates none
    try:
        if cluster is None:
            host = prepare_host(study.experiments, output_dir, opts, user)
            gpu_count = host.gpu_count
            plan = _RunPlan(host.runners.runner_for, list(host.runners.kinds.values()), gpu_count)
        else:
            plan = _RunPlan(_no_host_runner, ["docker"], 0, cluster)
        request = ExecutionRequest(n_cycles=opts.n_cycles, cycle_order=opts.cycle_order)
        study, study_dir, store, lock = _open_study(study, output_dir, user, request, resume=opts.resume)
        try:
            if cluster is not None:
                cluster.bind_study(store.manifest.study_id, study.execution.concurrency)
            return _run_loop(study, study_dir, store, plan, opts, user)
        finally:
            lock.release()
    finally:
        if cluster is not None:
            cluster.close()


@dataclass
class _RunPlan:
    """Where the runs go: this host's runners (one at a time), or a cluster dispatcher."""

    runner_for: Callable[[str], Runner]
    kinds: list[str]
    gpu_count: int
    dispatcher: Dispatcher | None = None


def _connect_cluster(study: StudyConfig, user: EffectiveUserConfig, opts: SessionOptions) -> RayDispatcher | None:
    """The Ray dispatcher when an address is given (``--ray`` wins over the user config), else None."""
    address, source = opts.ray_address, "--ray"
    if address is not None and opts.runner is not None:
        raise ConfigError(
            "a runner and a Ray address exclude each other",
            issues=[ConfigIssue("--ray", "runs on a cluster use the docker runner of each node", "drop one of them")],
        )
    if address is None and opts.runner is None:
        address, source = user.config.runners.ray.address, "runners.ray.address (user config)"
    if address is None:
        return None
    from llenergymeasure.orchestrator.cluster.prepare import plan_cluster
    from llenergymeasure.orchestrator.cluster.ray_dispatcher import open_ray_dispatcher

    check_multi_backend({str(e.backend): "docker" for e in study.experiments})
    cluster_plan = plan_cluster(study.experiments, user, opts.env, opts.docker_options)
    return open_ray_dispatcher(
        address,
        source=source,
        experiments=study.experiments,
        images=cluster_plan.images,
        docker_options=cluster_plan.docker_options,
        device_ids_for=device_ids_for,
        concurrency=study.execution.concurrency,
    )


def _no_host_runner(backend: str) -> Runner:
    raise LLEMError(f"internal: {backend} runs on the Ray cluster, not through a runner of this host")


def _run_loop(
    study: StudyConfig,
    study_dir: Path,
    store: ManifestStore,
    plan: _RunPlan,
    opts: SessionOptions,
    user: EffectiveUserConfig,
) -> StudyResult:
    atomic_write_text(study_dir / STUDY_YAML_FILE, yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False))
    display = opts.display or make_display(quiet=opts.quiet, verbose=opts.verbose)
    measurement = user.config.measurement
    intensity_warning = carbon_intensity_warning(measurement.carbon_intensity_gco2_per_kwh)
    if intensity_warning:
        logger.warning("%s", intensity_warning)
    gpu_count = plan.gpu_count
    services = LoopServices(
        runner_for=plan.runner_for,
        device_ids_for=lambda e: device_ids_for(e, gpu_count),
        display=display,
        gaps=GapWaiter(enabled=not opts.no_gaps, on_tick=display.gap_tick),
        baselines=BaselineCache(),
        log_level="DEBUG" if opts.verbose else "INFO",
        on_event=opts.on_event,
        carbon_intensity_gco2_per_kwh=measurement.carbon_intensity_gco2_per_kwh,
        datacenter_pue=measurement.datacenter_pue,
        dispatcher=plan.dispatcher,
    )
    display.study_started(store.manifest.study_id, len(store.manifest.entries), store.count("completed"))
    try:
        StudyLoop(study, study_dir, store, services).run()
    finally:
        display.close()
        if store.manifest.status == "running":  # left by an exception the loop did not classify
            store.set_status("failed")
        result = build_study_result(study, store, study_dir, plan.kinds)
        write_study_result(result, study_dir)
    return result


def _open_study(
    study: StudyConfig, output_dir: Path, user: EffectiveUserConfig, request: ExecutionRequest, *, resume: bool
) -> tuple[StudyConfig, Path, ManifestStore, StudyLock]:
    """The study with the execution it runs with, its directory (new, or the one to resume),
    its manifest, and the lock held on it."""
    if resume:
        study_dir = require_resumable(output_dir, study.study_design_hash)
        lock = StudyLock(study_dir).acquire()  # before reading the manifest: nobody else may be writing it
        try:
            store = ManifestStore.load(study_dir / MANIFEST_FILE)
            study = with_recorded_execution(study, store.manifest.execution, request, store.path)
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
        return study, study_dir, store, lock
    study = with_execution_defaults(study, user, request)
    study_dir = create_study_dir(output_dir, study.name)
    lock = StudyLock(study_dir).acquire()
    return study, study_dir, ManifestStore.create(study_dir, study_dir.name, study), lock
