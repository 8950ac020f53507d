"""The library API behind ``llenergymeasure.run_experiment`` / ``run_study``.

The library applies the same policy as ``llem run``; the CLI only parses flags.

`run_experiment` runs one experiment, once, with the runner its backend resolves
to (``LLEM_RUNNER_<BACKEND>`` > user config ``runners.<backend>`` > docker), after
the same host pre-flight as a study (`host.prepare_host`), and returns the
validated `ExperimentResult`. It does no study bookkeeping (no manifest, no
cycles, no gaps): that is `run_study`'s job, which also applies the execution
defaults of ``llem run`` (`study.policy`).

Configs: ``run_experiment(model="gpt2", n=20)`` or ``run_experiment("exp.yaml", n=5)``:
keyword arguments that are not options are `ExperimentConfig` fields, merged over the
file, object or mapping given first. The options are named keyword-only parameters;
a unit test keeps their names disjoint from the config's fields.

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
from typing import TYPE_CHECKING, Any

from llenergymeasure.errors import NotAvailableError
from llenergymeasure.orchestrator.gpu_assignment import device_ids_for
from llenergymeasure.orchestrator.preflight import ModelFetcher
from llenergymeasure.orchestrator.runners.base import EventCallback, LogCallback, Runner, RunRequest, run_name
from llenergymeasure.orchestrator.runners.gpus import GpuProbe
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import CycleOrder, StudyConfig
from llenergymeasure.schemas.study_result import StudyResult
from llenergymeasure.util.files import make_unique_directory

if TYPE_CHECKING:
    from llenergymeasure.orchestrator.user_config import EffectiveUserConfig

logger = logging.getLogger(__name__)

ExperimentInput = ExperimentConfig | str | Path | Mapping[str, Any]
StudyInput = StudyConfig | ExperimentConfig | str | Path | Mapping[str, Any]


def as_experiment_config(config: ExperimentInput) -> ExperimentConfig:
    """An `ExperimentConfig` from a config object, a YAML path or a mapping (no extra fields)."""
    return experiment_config(config, {})


def experiment_config(config: ExperimentInput | None, fields: Mapping[str, Any]) -> ExperimentConfig:
    """`config` (object, YAML path, mapping or None) with `fields` merged over it.

    Errors keep the shape of their input: a file is read by the loader (`ConfigError` naming
    the file, the line and the fix); values built in Python (a mapping, keyword fields, or
    both merged over a file or an object) are validated by the model, whose pydantic
    ``ValidationError`` is raised unchanged. Relative local paths among `fields` are resolved
    against the current directory, like the CLI's flags.
    """
    from llenergymeasure.orchestrator.loader import load_experiment_config, resolve_local_paths

    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, ExperimentConfig):
        if not fields:
            return config
        base = config.model_dump(exclude_unset=True)
    elif isinstance(config, (str, Path)):
        loaded = load_experiment_config(config)
        if not fields:
            return loaded
        base = loaded.model_dump(exclude_unset=True)
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise TypeError(f"run_experiment expects an ExperimentConfig, a path or a mapping, got {type(config).__name__}")
    given = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in fields.items()}  # model=Path(...)
    return ExperimentConfig.model_validate(merge_fields(base, resolve_local_paths(given, Path.cwd())))


def merge_fields(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into `base`; where both hold a mapping (a section) the merge recurses."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_fields(out[key], value)
        else:
            out[key] = value
    return out


def unique_run_dir(parent: Path, name: str) -> Path:
    """``parent/name``, or ``name_1``, ``name_2``... — created here, never an existing directory."""
    created = make_unique_directory(parent, name)
    if created is None:
        raise NotAvailableError(f"too many run directories named {name} in {parent}")
    return created


def run_experiment(
    config: ExperimentInput | None = None,
    /,
    *,
    output_dir: str | Path | None = None,
    runner: Runner | None = None,
    context: RunContext | None = None,
    on_event: EventCallback | None = None,
    on_log: LogCallback | None = None,
    wall_timeout_s: float = 7200.0,
    silence_timeout_s: float = 600.0,
    skip_preflight: bool = False,
    user_config: EffectiveUserConfig | None = None,
    docker_client: Any = None,
    gpu_probe: GpuProbe | None = None,
    fetch_model: ModelFetcher | None = None,
    env: Mapping[str, str] | None = None,
    **fields: Any,
) -> ExperimentResult:
    """Run one experiment and return its validated `ExperimentResult` (raises `ExperimentError` on failure).

    ``run_experiment(model="gpt2", n=20)``, ``run_experiment("exp.yaml", n=5)``,
    ``run_experiment(ExperimentConfig(...))`` or ``run_experiment({...})``: `fields` are
    `ExperimentConfig` fields merged over the file, object or mapping (a mapping value
    over a section merges into it). See `experiment_config` for which error each input gives.

    The host pre-flight runs first, as for `run_study` (``skip_preflight=True`` skips it).
    `runner` overrides the resolved runner (it is not closed here); `context` overrides the
    run context (dataset cache dir, heartbeat interval, log level...; its device ids win over
    the host's GPUs when set). ``user_config``, ``docker_client``, ``gpu_probe``,
    ``fetch_model`` and ``env`` inject collaborators (tests, embedding).
    """
    from llenergymeasure.orchestrator.host import HostOptions, prepare_host
    from llenergymeasure.orchestrator.study.layout import model_slug

    cfg = experiment_config(config, fields)
    ctx = context or RunContext()
    opts = HostOptions(
        runner=runner,
        skip_preflight=skip_preflight,
        user_config=user_config,
        docker_client=docker_client,
        gpu_probe=gpu_probe,
        fetch_model=fetch_model,
        env=dict(os.environ if env is None else env),
        dataset_cache_dir=Path(ctx.dataset_cache_dir) if ctx.dataset_cache_dir else None,
    )
    where = Path(output_dir) if output_dir is not None else Path(tempfile.gettempdir())
    host = prepare_host([cfg], where, opts)
    gpu_count = host.gpu_count if not ctx.device_ids else len(ctx.device_ids)
    host_ids = list(ctx.device_ids) or device_ids_for(cfg, gpu_count)
    active = host.runners.runner_for(cfg.backend)
    name = f"{model_slug(cfg.model)}_{cfg.backend}_{cfg.measurement_config_hash()[:8]}"

    def run_in(run_dir: Path, keep_timeseries: bool) -> ExperimentResult:
        job_ctx = ctx if keep_timeseries else ctx.model_copy(update={"timeseries": False})
        request = RunRequest(
            job=ExperimentJob(config=cfg, context=job_ctx),
            run_dir=run_dir,
            # unique per call: two run_experiment calls of one config on one host must not fight over a name
            name=run_name(name, os.getpid(), uuid.uuid4().hex[:8]),
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
        if runner is None:
            active.close()


def run_study(
    config: StudyInput,
    /,
    *,
    output_dir: str | Path | None = None,
    n_cycles: int | None = None,
    cycle_order: CycleOrder | None = None,
    resume: bool = False,
    no_gaps: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    on_event: EventCallback | None = None,
    runner: Runner | Mapping[str, Runner] | None = None,
    skip_preflight: bool = False,
    ray_address: str | None = None,
    **injected: Any,
) -> StudyResult:
    """Run a study (every experiment × cycle) and return its `StudyResult`; always writes the study directory.

    `config`: a `StudyConfig`, an `ExperimentConfig`, a study or experiment YAML path, or a
    mapping. The defaults are those of ``llem run``: 3 cycles when the config sets none,
    gaps from the user config, each backend's runner resolved on this host, the host
    pre-flight. ``n_cycles`` / ``cycle_order`` are ``--cycles`` / ``--order``;
    ``resume=True`` continues the latest unfinished study of the same design with the
    execution settings it was started with. ``ray_address`` (``--ray``: ``auto``, ``local``,
    ``ray://host:port``, ``host:port``; default: user config ``runners.ray.address``) runs the
    study on a Ray cluster, each run in a container on a node, the study directory here
    (docs/campaigns.md); it needs the ``[ray]`` extra. `injected` collaborators (``user_config``,
    ``docker_client``, ``docker_options``, ``gpu_probe``, ``fetch_model``, ``display``,
    ``env``) are described in `llenergymeasure.orchestrator.study.session.SessionOptions`.
    """
    from llenergymeasure.orchestrator.study.session import SessionOptions, run_study_session

    options = SessionOptions(
        output_dir=output_dir,
        n_cycles=n_cycles,
        cycle_order=cycle_order,
        resume=resume,
        no_gaps=no_gaps,
        quiet=quiet,
        verbose=verbose,
        on_event=on_event,
        runner=runner,
        skip_preflight=skip_preflight,
        ray_address=ray_address,
        **injected,
    )
    return run_study_session(config, options)
