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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestrator.display import StudyDisplay, make_display
from llenergymeasure.orchestrator.gpu_assignment import device_ids_for
from llenergymeasure.orchestrator.host import HostOptions, prepare_host
from llenergymeasure.orchestrator.runners.base import EventCallback
from llenergymeasure.orchestrator.runners.factory import WiredRunners
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
    host = prepare_host(study.experiments, output_dir, opts, user)
    runners, gpu_count = host.runners, host.gpu_count

    request = ExecutionRequest(n_cycles=opts.n_cycles, cycle_order=opts.cycle_order)
    study, study_dir, store, lock = _open_study(study, output_dir, user, request, resume=opts.resume)
    try:
        return _run_loop(study, study_dir, store, runners, opts, gpu_count, user)
    finally:
        lock.release()


def _run_loop(
    study: StudyConfig,
    study_dir: Path,
    store: ManifestStore,
    runners: WiredRunners,
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
