"""The library API behind ``llenergymeasure.run_experiment`` / ``run_study``.

`run_experiment` runs one experiment, once, with the runner its backend resolves
to (``LLEM_RUNNER_<BACKEND>`` > user config ``runners.<backend>`` > docker), and
returns the validated `ExperimentResult`. It does no study bookkeeping (no
manifest, no cycles, no gaps) and no host pre-flight: that is `run_study`'s job.

Output:
- ``output_dir=None``: the run happens in a temporary directory that is removed
  afterwards — nothing is left on disk; the power timeline is then not written
  (the sampler still runs for the cross-check), so ``timeseries_file`` is null.
- ``output_dir=PATH``: the run directory ``PATH/<model-slug>_<backend>_<hash8>``
  is created (``_1``, ``_2``... if it exists: never overwritten) and keeps
  ``result.json``, ``timeseries.parquet`` and ``harness.log``.

GPUs: ``config.gpus`` when set, else the first ``config.device_count()`` GPUs
NVML reports on this host, else none (a CPU run).
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llenergymeasure.errors import ConfigError, NotAvailableError
from llenergymeasure.orchestrator.runners.base import EventCallback, LogCallback, Runner, RunRequest
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.schemas.study_result import StudyResult

logger = logging.getLogger(__name__)

ExperimentInput = ExperimentConfig | str | Path | Mapping[str, Any]


def as_experiment_config(config: ExperimentInput) -> ExperimentConfig:
    """An `ExperimentConfig` from a config object, a YAML path or a raw mapping (`ConfigError` otherwise)."""
    from llenergymeasure.orchestrator.loader import load_experiment_config, parse_experiment

    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, (str, Path)):
        return load_experiment_config(config)
    if isinstance(config, Mapping):
        return parse_experiment(config, "<dict>")
    raise ConfigError(f"run_experiment expects an ExperimentConfig, a path or a dict, got {type(config).__name__}")


def default_runner(backend: str, gpu_count: int, env: Mapping[str, str] | None = None) -> Runner:
    """The runner `backend` resolves to on this host (local subprocess or Docker)."""
    from llenergymeasure.orchestrator.runners import resolve_runner
    from llenergymeasure.orchestrator.runners.factory import build_runners, connect_docker, docker_options_from
    from llenergymeasure.orchestrator.runners.inputs import host_hf_cache
    from llenergymeasure.orchestrator.user_config import load_user_config

    env = os.environ if env is None else env
    user = load_user_config(env)
    choice = resolve_runner(backend, user, gpu_count=gpu_count)
    client = None
    if choice.kind == "docker":
        client, why = connect_docker()
        if client is None:
            raise NotAvailableError(
                f"the {backend} backend runs in Docker (runner '{choice.kind}' from {choice.kind_source}) "
                f"but the Docker daemon is unreachable: {why}. fix: start Docker, or set "
                f"LLEM_RUNNER_{backend.upper()}=local to run the harness in this Python environment"
            )
    options = docker_options_from(user, host_hf_cache(env))
    return build_runners({backend: choice}, docker_client=client, docker_options=options)[backend]


def unique_run_dir(parent: Path, name: str) -> Path:
    """``parent/name``, or ``name_1``, ``name_2``... — created here, never an existing directory."""
    parent.mkdir(parents=True, exist_ok=True)
    for i in range(10_000):
        candidate = parent / (name if i == 0 else f"{name}_{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise NotAvailableError(f"too many run directories named {name} in {parent}")


def run_experiment(
    config: ExperimentInput,
    *,
    output_dir: str | Path | None = None,
    runner: Runner | None = None,
    context: RunContext | None = None,
    on_event: EventCallback | None = None,
    on_log: LogCallback | None = None,
    wall_timeout_s: float = 7200.0,
    silence_timeout_s: float = 600.0,
) -> ExperimentResult:
    """Run one experiment and return its validated `ExperimentResult` (raises `ExperimentError` on failure).

    `runner` overrides the resolved runner (it is not closed here); `context`
    overrides the run context (dataset cache dir, heartbeat interval, log
    level...; its device ids win over the host's GPUs when set).
    """
    from llenergymeasure.orchestrator.preflight import device_ids_for
    from llenergymeasure.orchestrator.runners.docker_spec import container_name
    from llenergymeasure.orchestrator.runners.gpus import probe_gpus
    from llenergymeasure.orchestrator.study.layout import model_slug

    cfg = as_experiment_config(config)
    ctx = context or RunContext()
    gpu_count = probe_gpus().device_count() if not ctx.device_ids else len(ctx.device_ids)
    host_ids = list(ctx.device_ids) or device_ids_for(cfg, gpu_count)
    own_runner = runner is None
    active = runner if runner is not None else default_runner(cfg.backend, gpu_count)
    name = f"{model_slug(cfg.model)}_{cfg.backend}_{cfg.measurement_config_hash()[:8]}"

    def run_in(run_dir: Path, keep_timeseries: bool) -> ExperimentResult:
        job_ctx = ctx if keep_timeseries else ctx.model_copy(update={"timeseries": False})
        request = RunRequest(
            job=ExperimentJob(config=cfg, context=job_ctx),
            run_dir=run_dir,
            # unique per call: two run_experiment calls of one config on one host must not fight over a name
            name=container_name(name, os.getpid(), uuid.uuid4().hex[:8]),
            wall_timeout_s=wall_timeout_s,
            silence_timeout_s=silence_timeout_s,
            on_event=on_event,
            on_log=on_log,
            host_device_ids=host_ids,
        )
        logger.info("running %s with the %s runner in %s", cfg.label(), active.name, run_dir)
        return active.run(request)

    try:
        if output_dir is None:
            with tempfile.TemporaryDirectory(prefix="llem-", ignore_cleanup_errors=True) as tmp:
                return run_in(Path(tmp) / name, keep_timeseries=False)
        return run_in(unique_run_dir(Path(output_dir), name), keep_timeseries=True)
    finally:
        if own_runner:
            active.close()


def run_study(
    config: StudyConfig | ExperimentConfig | str | Path | Mapping[str, Any],
    *,
    output_dir: str | Path | None = None,
    **kwargs: Any,
) -> StudyResult:
    """Run a study; see `llenergymeasure.orchestrator.study.session.SessionOptions` for the keyword arguments."""
    from llenergymeasure.orchestrator.study.session import SessionOptions, run_study_session

    return run_study_session(config, SessionOptions(output_dir=output_dir, **kwargs))
