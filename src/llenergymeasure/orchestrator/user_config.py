"""The user's own settings: ``<XDG config dir>/llenergymeasure/config.yaml``.

A missing file means defaults. Precedence, highest first, for every setting that
has an environment variable: the variable > the file > the default.

=========================  ===========================================
variable                   setting
=========================  ===========================================
``LLEM_CONFIG``            path of the user config file itself
``LLEM_RUNNER_<BACKEND>``  runners.<backend> (``docker`` or ``local``)
``LLEM_IMAGE_<BACKEND>``   runners.images.<backend>
``LLEM_REGISTRY``          runners.registry
``LLEM_OUTPUT_DIR``        output.results_dir
``LLEM_CARBON_INTENSITY``  measurement.carbon_intensity_gco2_per_kwh
``LLEM_DATACENTER_PUE``    measurement.datacenter_pue
``LLEM_NO_PROMPT``         execution.no_prompt (any non-empty value)
=========================  ===========================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from llenergymeasure._version import __version__
from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.images import image_ref
from llenergymeasure.schemas._base import StrictModel
from llenergymeasure.schemas._issues import issues_from_validation, suggest
from llenergymeasure.schemas.config.capabilities import BACKENDS

RunnerKind = Literal["docker", "local"]
APP_NAME = "llenergymeasure"

#: Docker's size syntax (go-units RAMInBytes): a number, an optional unit, optional "i" and "b"
_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s?[kKmMgGtTpP]?[iI]?[bB]?$")


class _Section(StrictModel):
    """A user-config section: unknown keys are errors, numbers must be finite."""

    model_config = ConfigDict(allow_inf_nan=False)


class OutputSection(_Section):
    results_dir: str = Field("results", description="Where study directories are created (relative to the cwd).")


class DockerSection(_Section):
    network: Literal["none", "bridge", "host"] | None = Field(
        None, description="Container network; null = 'none' once weights are cached, else 'bridge'."
    )
    shm_size: str | None = Field(None, description="Shared memory size, e.g. '8g'; null = Docker's default (64m).")
    extra_env_allowlist: list[str] = Field(
        default_factory=list, description="More host variables forwarded into containers when set (e.g. secrets)."
    )

    @field_validator("shm_size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and not _SIZE_RE.match(v.strip()):
            raise ValueError(f"not a size: {v!r}; fix: write a number with a unit, e.g. '8g' or '512m'")
        return v


class RaySection(_Section):
    address: str | None = Field(
        None,
        description="Ray cluster every study runs on, as for llem run --ray: auto, ray://host:port, host:port or "
        "local; null = no cluster (this host). --ray wins over it.",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from llenergymeasure.orchestrator.cluster.address import AddressError, parse_ray_address

        try:
            parse_ray_address(v)
        except AddressError as e:
            raise ValueError(str(e)) from None
        return v


class RunnersSection(_Section):
    pytorch: RunnerKind = Field("docker", description="How pytorch experiments run.")
    vllm: RunnerKind = Field("docker", description="How vllm experiments run.")
    tensorrt: RunnerKind = Field("docker", description="How tensorrt experiments run.")
    images: dict[str, str] = Field(default_factory=dict, description="Image per backend (overrides the default tag).")
    registry: str | None = Field(
        None,
        description="Registry (host[:port][/path]) the default images are pulled from, for mirrors and private "
        "registries: images become <registry>/llenergymeasure/<backend>:<tag>; null = the Docker engine's default.",
    )
    docker: DockerSection = Field(default_factory=DockerSection, description="Docker runner options.")
    ray: RaySection = Field(default_factory=RaySection, description="Ray cluster options (llem run --ray).")

    @field_validator("images")
    @classmethod
    def _known_backends(cls, v: dict[str, str]) -> dict[str, str]:
        for name, image in v.items():
            if name not in BACKENDS:
                close = suggest(name, BACKENDS)
                hint = f"did you mean {close!r}?" if close else f"use one of {', '.join(BACKENDS)}"
                raise ValueError(f"unknown backend {name!r} under runners.images; fix: {hint}")
            if not image.strip() or any(c.isspace() for c in image):
                raise ValueError(f"image name {image!r} for {name} is not a valid tag; fix: e.g. org/name:tag")
        return v


class MeasurementSection(_Section):
    carbon_intensity_gco2_per_kwh: float | None = Field(
        None, ge=0, le=5000, description="Grid carbon intensity for CO2 estimates, gCO2e/kWh."
    )
    datacenter_pue: float = Field(1.0, ge=1.0, le=10.0, description="Power usage effectiveness multiplier (unitless).")


class ExecutionSection(_Section):
    no_prompt: bool = Field(False, description="Never ask for confirmation (CI, scripts).")
    config_gap_seconds: float | None = Field(
        None, ge=0, le=86_400, description="Default gap between experiments, seconds."
    )
    cycle_gap_seconds: float | None = Field(None, ge=0, le=86_400, description="Default gap between cycles, seconds.")


class UserConfig(_Section):
    """The user config file's content."""

    output: OutputSection = Field(default_factory=OutputSection)
    runners: RunnersSection = Field(default_factory=RunnersSection)
    measurement: MeasurementSection = Field(default_factory=MeasurementSection)
    execution: ExecutionSection = Field(default_factory=ExecutionSection)


class EffectiveUserConfig:
    """The user config with environment overrides applied, and where each value came from."""

    def __init__(self, config: UserConfig, path: Path, file_found: bool, provenance: dict[str, str]) -> None:
        self.config = config
        self.path = path
        self.file_found = file_found
        self.provenance = provenance

    def runner_for(self, backend: str) -> RunnerKind:
        kind: RunnerKind = getattr(self.config.runners, backend)
        return kind

    def image_for(self, backend: str, variant: str) -> str:
        """The image for `backend`: configured, else ``[<registry>/]llenergymeasure/<backend>:<version>-<variant>``."""
        return self.config.runners.images.get(backend) or default_image(backend, variant, self.config.runners.registry)

    def source_of(self, key: str) -> str:
        return self.provenance.get(key, "default")


def default_image(backend: str, variant: str, registry: str | None = None) -> str:
    """The published image of `backend` (see `llenergymeasure.images.image_ref`)."""
    return image_ref(backend, variant, registry, __version__)


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("LLEM_CONFIG"):
        return Path(env["LLEM_CONFIG"])
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME)) / "config.yaml"


def _exists(path: Path) -> bool:
    """Something is at `path` (a file, or a directory/FIFO that the reader then refuses by name)."""
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


def load_user_config(env: Mapping[str, str] | None = None, path: Path | None = None) -> EffectiveUserConfig:
    """Read the user config (missing = defaults) and apply environment overrides."""
    env = os.environ if env is None else env
    path = path or user_config_path(env)
    raw: dict[str, object] = {}
    provenance: dict[str, str] = {}
    explicit = bool(env.get("LLEM_CONFIG")) and path == user_config_path(env)
    found = _exists(path)
    if explicit and not found:
        raise ConfigError(
            "the user config named by LLEM_CONFIG does not exist",
            source=path,
            issues=[ConfigIssue("LLEM_CONFIG", f"no file at {path}", "fix the path, or unset LLEM_CONFIG")],
        )
    if found:
        from llenergymeasure.orchestrator.loader import read_yaml_mapping

        raw, _ = read_yaml_mapping(path, allow_empty=True)
        for section, values in raw.items():
            if isinstance(values, Mapping):
                for key in values:
                    provenance[f"{section}.{key}"] = f"file:{path}"
    data = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}

    def put(section: str, key: str, value: object, var: str) -> None:
        sec = data.setdefault(section, {})
        if isinstance(sec, dict):
            sec[key] = value
        provenance[f"{section}.{key}"] = f"env:{var}"

    for backend in BACKENDS:
        var = f"LLEM_RUNNER_{backend.upper()}"
        if env.get(var):
            put("runners", backend, env[var].strip().lower(), var)
        var = f"LLEM_IMAGE_{backend.upper()}"
        if env.get(var):
            runners = data.setdefault("runners", {})
            if isinstance(runners, dict):
                images = dict(runners.get("images") or {})
                images[backend] = env[var]
                runners["images"] = images
            provenance[f"runners.images.{backend}"] = f"env:{var}"
    if env.get("LLEM_REGISTRY"):
        put("runners", "registry", env["LLEM_REGISTRY"].strip(), "LLEM_REGISTRY")
    if env.get("LLEM_OUTPUT_DIR"):
        put("output", "results_dir", env["LLEM_OUTPUT_DIR"], "LLEM_OUTPUT_DIR")
    if env.get("LLEM_CARBON_INTENSITY"):
        put("measurement", "carbon_intensity_gco2_per_kwh", env["LLEM_CARBON_INTENSITY"], "LLEM_CARBON_INTENSITY")
    if env.get("LLEM_DATACENTER_PUE"):
        put("measurement", "datacenter_pue", env["LLEM_DATACENTER_PUE"], "LLEM_DATACENTER_PUE")
    if env.get("LLEM_NO_PROMPT"):
        put("execution", "no_prompt", True, "LLEM_NO_PROMPT")
    try:
        config = UserConfig.model_validate(data)
    except ValidationError as e:
        issues = issues_from_validation(e, UserConfig)
        for i, issue in enumerate(issues):
            src = provenance.get(issue.field) or next(
                (v for k, v in provenance.items() if k.startswith(issue.field + ".") and v.startswith("env:")), None
            )
            if src and src.startswith("env:"):
                issues[i] = type(issue)(issue.field, f"{issue.message} (set by {src[4:]})", issue.fix)
        raise ConfigError("invalid user config", source=path, issues=issues) from None
    return EffectiveUserConfig(config, path, found, provenance)
