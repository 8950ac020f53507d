"""Resolve a study YAML (shared fields + ``sweep:`` + ``experiments:``) into a `StudyConfig`.

Resolution works on the raw dicts, before validation:

- top-level keys other than ``name``, ``description``, ``sweep``, ``experiments``
  and ``execution`` are *shared* fields, applied to every experiment;
- ``sweep:`` maps a field (``precision``), a dotted path (``decoder.temperature``)
  or a *backend-scoped* dotted path (``pytorch.batch_size``,
  ``vllm.engine.block_size``) to a non-empty list; the grid is the Cartesian
  product, where a backend-scoped key multiplies only the points of that backend;
- ``experiments:`` entries are merged over the shared fields and appended after
  the grid points;
- a shared backend section (``pytorch: {...}``) applies only to points of that
  backend;
- a point that fails a cross-validator (an *incompatible combination*, such as
  vllm × fp32) is skipped and reported; any other validation error is fatal;
  a point identical to an earlier one is dropped; a study with no valid point
  is an error.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.schemas._base import INCOMPATIBLE
from llenergymeasure.schemas._issues import issues_from_validation, nested_model, suggest
from llenergymeasure.schemas.config.capabilities import BACKENDS
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.study import ExecutionConfig, SkippedPoint, StudyConfig

STUDY_KEYS = frozenset({"name", "description", "sweep", "experiments", "execution"})
_DEFAULT_BACKEND = str(ExperimentConfig.model_fields["backend"].default)


def is_study(raw: Mapping[str, Any]) -> bool:
    """A study file has a ``sweep:`` or ``experiments:`` key; an experiment file has neither."""
    return "sweep" in raw or "experiments" in raw


def _copy(value: Any) -> Any:
    """A copy of parsed-YAML data (mappings, lists, scalars) sharing nothing mutable with `value`."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `over` merged into `base`, recursing into nested mappings."""
    out: dict[str, Any] = _copy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = _copy(value)
    return out


def unflatten(dotted_values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"vllm.engine.block_size": 16}`` → ``{"vllm": {"engine": {"block_size": 16}}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted_values.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def check_sweep_key(key: str, source: str | None = None) -> None:
    """Raise `ConfigError` unless `key` names a field of `ExperimentConfig` (dotted paths allowed)."""
    model: type[BaseModel] | None = ExperimentConfig
    walked: list[str] = []
    for part in key.split("."):
        if model is None:
            if walked and walked[0] == "passthrough_kwargs":
                return  # free-form mapping: any sub-key is allowed
            raise ConfigError(
                "invalid sweep key",
                source=source,
                issues=[
                    ConfigIssue(f"sweep.{key}", f"'{'.'.join(walked)}' has no sub-fields", "remove the extra part")
                ],
            )
        field = model.model_fields.get(part)
        if field is None:
            close = suggest(part, model.model_fields)
            where = ".".join(walked) or "the experiment"
            raise ConfigError(
                "unknown sweep key",
                source=source,
                issues=[
                    ConfigIssue(
                        f"sweep.{key}",
                        f"{where} has no field {part!r}",
                        f"did you mean {'.'.join([*walked, close])!r}?" if close else "check the config reference",
                    )
                ],
            )
        walked.append(part)
        model = nested_model(field.annotation)


def _sweep_dims(
    sweep: Any, source: str | None
) -> tuple[list[tuple[str, list[Any]]], dict[str, list[tuple[str, list[Any]]]]]:
    """Split the sweep into universal dimensions and backend-scoped ones."""
    if not isinstance(sweep, Mapping) or not sweep:
        raise ConfigError(
            "the sweep is empty or not a mapping",
            source=source,
            issues=[
                ConfigIssue(
                    "sweep", "expected a mapping of field → list of values", "e.g. sweep: {precision: [fp16, bf16]}"
                )
            ],
        )
    universal: list[tuple[str, list[Any]]] = []
    scoped: dict[str, list[tuple[str, list[Any]]]] = {}
    for key, values in sweep.items():
        key = str(key)
        if not isinstance(values, list):
            raise ConfigError(
                "sweep values must be lists",
                source=source,
                issues=[
                    ConfigIssue(f"sweep.{key}", f"got {type(values).__name__} {values!r}", f"write {key}: [{values!r}]")
                ],
            )
        if not values:
            raise ConfigError(
                "empty sweep list",
                source=source,
                issues=[
                    ConfigIssue(
                        f"sweep.{key}", "the list of values is empty", "give at least one value or remove the key"
                    )
                ],
            )
        check_sweep_key(key, source)
        head, _, rest = key.partition(".")
        if head in BACKENDS and rest:
            scoped.setdefault(head, []).append((key, values))
        else:
            universal.append((key, values))
    return universal, scoped


def _product(dims: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    keys = [k for k, _ in dims]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in dims))]


def _shared_for(shared: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """Shared fields with the sections of other backends removed."""
    return {k: v for k, v in shared.items() if k not in BACKENDS or k == backend}


def _points(raw: Mapping[str, Any], source: str | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(experiment dict, overrides)`` for every grid point, then every explicit entry."""
    shared = {k: v for k, v in raw.items() if k not in STUDY_KEYS}
    shared_backend = str(shared.get("backend", _DEFAULT_BACKEND))
    points: list[tuple[dict[str, Any], dict[str, Any]]] = []
    used_backends: set[str] = set()
    scoped: dict[str, list[tuple[str, list[Any]]]] = {}

    if "sweep" in raw:
        universal, scoped = _sweep_dims(raw["sweep"], source)
        for combo in _product(universal):
            backend = str(combo.get("backend", shared_backend))
            used_backends.add(backend)
            base = deep_merge(_shared_for(shared, backend), unflatten(combo))
            for scoped_combo in _product(scoped.get(backend, [])) or [{}]:
                points.append((deep_merge(base, unflatten(scoped_combo)), {**combo, **scoped_combo}))

    explicit = raw.get("experiments")
    if explicit is not None:
        if not isinstance(explicit, list) or not explicit:
            raise ConfigError(
                "experiments must be a non-empty list",
                source=source,
                issues=[
                    ConfigIssue("experiments", "expected a list of mappings", "e.g. experiments: [{precision: fp16}]")
                ],
            )
        for i, entry in enumerate(explicit):
            if not isinstance(entry, Mapping):
                raise ConfigError(
                    "invalid experiment entry",
                    source=source,
                    issues=[
                        ConfigIssue(
                            f"experiments[{i}]",
                            f"expected a mapping, got {type(entry).__name__}",
                            "write {field: value, ...}",
                        )
                    ],
                )
            backend = str(entry.get("backend", shared_backend))
            used_backends.add(backend)
            points.append((deep_merge(_shared_for(shared, backend), entry), {f"experiments[{i}]": dict(entry)}))

    unused = sorted(set(scoped) - used_backends)
    if unused:
        keys = [k for b in unused for k, _ in scoped[b]]
        raise ConfigError(
            "backend-scoped sweep keys for a backend no experiment uses",
            source=source,
            issues=[
                ConfigIssue(
                    f"sweep.{k}",
                    f"applies to backend {k.split('.')[0]} only",
                    f"add {k.split('.')[0]} to backend or remove the key",
                )
                for k in keys
            ],
        )
    return points


def resolve_study(raw: Mapping[str, Any], source: str | None = None) -> StudyConfig:
    """Resolve a study mapping (already parsed from YAML) into a validated `StudyConfig`."""
    name = raw.get("name", "study")
    execution_raw = raw.get("execution") or {}
    try:
        execution = ExecutionConfig.model_validate(execution_raw)
    except ValidationError as e:
        raise ConfigError(
            "invalid execution section", source=source, issues=issues_from_validation(e, ExecutionConfig, "execution")
        ) from None

    experiments: list[ExperimentConfig] = []
    skipped: list[SkippedPoint] = []
    seen: dict[tuple[str, str], int] = {}
    for point, overrides in _points(raw, source):
        try:
            cfg = ExperimentConfig.model_validate(point)
        except ValidationError as e:
            if all(err["type"] == INCOMPATIBLE for err in e.errors()):
                reason = "; ".join(
                    i.message + (f" (fix: {i.fix})" if i.fix else "")
                    for i in issues_from_validation(e, ExperimentConfig)
                )
                skipped.append(SkippedPoint(overrides=overrides, reason=reason))
                continue
            where = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "shared fields"
            raise ConfigError(
                f"invalid experiment ({where})", source=source, issues=issues_from_validation(e, ExperimentConfig)
            ) from None
        identity = (cfg.measurement_config_hash(), str(cfg.gpus))
        if identity in seen:
            skipped.append(SkippedPoint(overrides=overrides, reason=f"duplicate of experiment #{seen[identity] + 1}"))
            continue
        seen[identity] = len(experiments)
        experiments.append(cfg)

    if not experiments:
        reasons = sorted({s.reason for s in skipped})
        raise ConfigError(
            "the study has no valid experiment",
            source=source,
            issues=[ConfigIssue("sweep", r, None) for r in reasons]
            or [ConfigIssue("sweep", "nothing to run", "add sweep values or experiments")],
        )
    try:
        return StudyConfig(
            name=str(name),
            description=raw.get("description"),
            experiments=experiments,
            execution=execution,
            skipped=skipped,
        )
    except ValidationError as e:
        raise ConfigError("invalid study", source=source, issues=issues_from_validation(e, StudyConfig)) from None


def experiment_as_study(config: ExperimentConfig, name: str | None = None) -> StudyConfig:
    """Wrap a single experiment into a one-experiment study."""
    return StudyConfig(name=name or "experiment", experiments=[config])
