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
  is an error;
- the grid's size is computed before it is expanded: above
  ``execution.max_grid_points`` (default 1000) the study is refused with the count.

Every problem of the file is collected and reported at once, each issue naming its
field as the file spells it (``sweep.precision``, ``experiments[2].n``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.schemas._base import INCOMPATIBLE
from llenergymeasure.schemas._issues import issues_from_validation, nested_model, suggest
from llenergymeasure.schemas._study_parts import (
    STUDY_KEYS,
    Problems,
    execution_section,
    header,
    kind,
    shared_fields,
    short,
)
from llenergymeasure.schemas.config.capabilities import BACKENDS
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.study import SkippedPoint, StudyConfig

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
    """A new dict: `over` merged into `base`, recursing into nested mappings.

    A mapping never replaces a value of another shape (``decoder: 5`` stays 5, so validation
    reports it) — a section of the wrong shape is an error, not silently replaced.
    """
    out: dict[str, Any] = _copy(base)
    for key, value in over.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = deep_merge(current, value)
        elif isinstance(value, Mapping) and current is not None and key in out:
            continue
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
            child = node.setdefault(p, {})
            if not isinstance(child, dict):  # "a" and "a.b" both set: the sweep refuses that before
                raise ValueError(f"{key!r} overlaps a key that sets {p!r} itself")
            node = child
        node[leaf] = value
    return out


def sweep_key_issue(key: str) -> ConfigIssue | None:
    """None if `key` names a field of `ExperimentConfig` (dotted paths allowed), else the issue."""
    model: type[BaseModel] | None = ExperimentConfig
    walked: list[str] = []
    for part in key.split("."):
        if model is None:
            if walked and walked[0] == "passthrough_kwargs":
                return None  # free-form mapping: any sub-key is allowed
            return ConfigIssue(f"sweep.{key}", f"'{'.'.join(walked)}' has no sub-fields", "remove the extra part")
        field_info = model.model_fields.get(part)
        if field_info is None:
            close = suggest(part, model.model_fields)
            where = ".".join(walked) or "the experiment"
            return ConfigIssue(
                f"sweep.{key}",
                f"{where} has no field {part!r}",
                f"did you mean {'.'.join([*walked, close])!r}?" if close else "check the config reference",
            )
        walked.append(part)
        model = nested_model(field_info.annotation)
    return None


def check_sweep_key(key: str, source: str | None = None) -> None:
    """Raise `ConfigError` unless `key` names a field of `ExperimentConfig` (dotted paths allowed)."""
    issue = sweep_key_issue(key)
    if issue is not None:
        raise ConfigError("unknown sweep key", source=source, issues=[issue])


Dims = list[tuple[str, list[Any]]]


def _sweep_dims(sweep: Any, problems: Problems) -> tuple[Dims, dict[str, Dims]]:
    """Split the sweep into universal dimensions and backend-scoped ones (problems collected)."""
    universal: Dims = []
    scoped: dict[str, Dims] = {}
    if not isinstance(sweep, Mapping) or not sweep:
        problems.add(
            "the sweep is empty or not a mapping",
            ConfigIssue(
                "sweep",
                f"expected a mapping of field → list of values, got {kind(sweep)}",
                "e.g. sweep: {precision: [fp16, bf16]}, or remove sweep:",
            ),
        )
        return universal, scoped
    keys = [str(k) for k in sweep]
    for key in keys:
        for other in keys:
            if other.startswith(key + "."):
                problems.add(
                    "overlapping sweep keys",
                    ConfigIssue(
                        f"sweep.{other}",
                        f"overlaps sweep.{key}, which sets the whole of {key!r}",
                        f"sweep either {key} or {other}, not both",
                    ),
                )
    for raw_key, values in sweep.items():
        key = str(raw_key)
        if not isinstance(values, list):
            problems.add(
                "sweep values must be lists",
                ConfigIssue(
                    f"sweep.{key}",
                    f"sweep values must be lists, got {kind(values)}",
                    f"write {key}: [{short(values)}]",
                ),
            )
            continue
        if not values:
            problems.add(
                "empty sweep list",
                ConfigIssue(f"sweep.{key}", "the list of values is empty", "give at least one value or remove the key"),
            )
            continue
        issue = sweep_key_issue(key)
        if issue is not None:
            problems.add("unknown sweep key", issue)
            continue
        head, _, rest = key.partition(".")
        if head in BACKENDS and rest:
            scoped.setdefault(head, []).append((key, values))
        else:
            universal.append((key, values))
    return universal, scoped


def grid_size(universal: Dims, scoped: Mapping[str, Dims], shared_backend: str) -> int:
    """Number of grid points, computed from the list lengths (nothing is expanded)."""
    backends = next((v for k, v in universal if k == "backend"), [shared_backend])
    others = math.prod(len(v) for k, v in universal if k != "backend")
    return sum(others * math.prod(len(v) for _, v in scoped.get(str(b), [])) for b in backends)


def _product(dims: Dims) -> list[dict[str, Any]]:
    keys = [k for k, _ in dims]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in dims))]


def _shared_for(shared: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """Shared fields with the sections of other backends removed."""
    return {k: v for k, v in shared.items() if k not in BACKENDS or k == backend}


@dataclass
class _Point:
    """One experiment to validate: its raw fields, the overrides that made it, where they were written."""

    fields: dict[str, Any]
    overrides: dict[str, Any]
    entry: int | None = None  # index in experiments:, if it came from there


def _points(raw: Mapping[str, Any], shared: dict[str, Any], max_points: int, problems: Problems) -> list[_Point]:
    """A `_Point` for every grid point, then every explicit entry (or the file itself, for an experiment file)."""
    shared_backend = str(shared.get("backend", _DEFAULT_BACKEND))
    if not is_study(raw):
        return [_Point(dict(shared), {})]
    points: list[_Point] = []
    used_backends: set[str] = set()
    scoped: dict[str, Dims] = {}

    explicit = raw.get("experiments")
    n_explicit = len(explicit) if isinstance(explicit, list) else 0
    universal: Dims = []
    if "sweep" in raw:
        universal, scoped = _sweep_dims(raw["sweep"], problems)
    size = grid_size(universal, scoped, shared_backend) if "sweep" in raw else 0
    if size + n_explicit > max_points:
        parts = [f"{size:,} grid points"] * ("sweep" in raw) + [f"{n_explicit:,} explicit experiments"] * (
            n_explicit > 0
        )
        problems.add(
            "the study is too large",
            ConfigIssue(
                "sweep" if "sweep" in raw else "experiments",
                f"{' + '.join(parts)}, more than the limit of {max_points:,}",
                "sweep fewer values, or raise execution.max_grid_points if you mean it",
            ),
        )
        return []
    if "sweep" in raw and not any(i.field.startswith("sweep") for _, i in problems.items):
        for combo in _product(universal):
            backend = str(combo.get("backend", shared_backend))
            used_backends.add(backend)
            base = deep_merge(_shared_for(shared, backend), unflatten(combo))
            for scoped_combo in _product(scoped.get(backend, [])) or [{}]:
                points.append(_Point(deep_merge(base, unflatten(scoped_combo)), {**combo, **scoped_combo}))
    if "experiments" in raw:
        points.extend(_explicit(explicit, shared, shared_backend, used_backends, problems))

    unused = sorted(set(scoped) - used_backends)
    for b in unused:
        for k, _ in scoped[b]:
            problems.add(
                "backend-scoped sweep keys for a backend no experiment uses",
                ConfigIssue(
                    f"sweep.{k}",
                    f"applies to backend {b} only, and no experiment uses {b}",
                    f"add {b} to backend or remove the key",
                ),
            )
    return points


def _explicit(
    explicit: Any, shared: dict[str, Any], shared_backend: str, used_backends: set[str], problems: Problems
) -> list[_Point]:
    if not isinstance(explicit, list) or not explicit:
        problems.add(
            "experiments must be a non-empty list",
            ConfigIssue(
                "experiments",
                f"expected a non-empty list of mappings, got {kind(explicit)}",
                "e.g. experiments: [{precision: fp16}]",
            ),
        )
        return []
    points = []
    for i, entry in enumerate(explicit):
        if not isinstance(entry, Mapping):
            problems.add(
                "invalid experiment entry",
                ConfigIssue(f"experiments[{i}]", f"expected a mapping, got {kind(entry)}", "write {field: value, ...}"),
            )
            continue
        nested = sorted(str(k) for k in entry if k in STUDY_KEYS)
        for k in nested:
            problems.add(
                "invalid experiment entry",
                ConfigIssue(f"experiments[{i}].{k}", f"{k!r} belongs at the top level of the file", "move it there"),
            )
        entry = {k: v for k, v in entry.items() if k not in STUDY_KEYS}
        backend = str(entry.get("backend", shared_backend))
        used_backends.add(backend)
        points.append(_Point(deep_merge(_shared_for(shared, backend), entry), {f"experiments[{i}]": dict(entry)}, i))
    return points


_TOP = re.compile(r"[.\[]")


def _locate(issue: ConfigIssue, point: _Point) -> ConfigIssue:
    """The issue with its field as the file spells it: ``experiments[i].x`` or ``sweep.x`` when it came from there."""
    top = _TOP.split(issue.field, maxsplit=1)[0]
    if point.entry is not None:
        entry = point.overrides[f"experiments[{point.entry}]"]
        if top in entry:
            return ConfigIssue(f"experiments[{point.entry}].{issue.field}", issue.message, issue.fix, issue.line)
        if issue.field == "<top level>":
            return ConfigIssue(f"experiments[{point.entry}]", issue.message, issue.fix, issue.line)
        return issue
    for key in point.overrides:
        if issue.field == key or issue.field.startswith(key + "."):
            value = short(point.overrides[key])
            return ConfigIssue(f"sweep.{key}", f"{issue.message} (value {value})", issue.fix, issue.line)
    return issue


def resolve_study(raw: Mapping[str, Any], source: str | None = None) -> StudyConfig:
    """Resolve a study (or experiment) mapping, already parsed from YAML, into a validated `StudyConfig`.

    Raises one `ConfigError` holding every problem found in the file.
    """
    study = is_study(raw)
    problems = Problems()
    name, description = header(raw, "study" if study else "experiment", problems)
    execution = execution_section(raw, problems)
    shared = shared_fields(raw, study, problems)
    points = _points(raw, shared, execution.max_grid_points, problems)

    experiments: list[ExperimentConfig] = []
    skipped: list[SkippedPoint] = []
    seen: dict[tuple[str, str], int] = {}
    for point in points:
        if problems.full:
            break
        try:
            cfg = ExperimentConfig.model_validate(point.fields)
        except ValidationError as e:
            if study and all(err["type"] == INCOMPATIBLE for err in e.errors()):
                reason = "; ".join(
                    i.message + (f" (fix: {i.fix})" if i.fix else "")
                    for i in issues_from_validation(e, ExperimentConfig)
                )
                skipped.append(SkippedPoint(overrides=point.overrides, reason=reason))
                continue
            head = "invalid experiment config" if not study else "invalid experiment"
            problems.add(head, *(_locate(i, point) for i in issues_from_validation(e, ExperimentConfig)))
            continue
        identity = (cfg.measurement_config_hash(), str(cfg.gpus))
        if identity in seen:
            skipped.append(
                SkippedPoint(overrides=point.overrides, reason=f"duplicate of experiment #{seen[identity] + 1}")
            )
            continue
        seen[identity] = len(experiments)
        experiments.append(cfg)

    problems.raise_if_any(source)
    if not experiments:
        reasons = sorted({s.reason for s in skipped})
        raise ConfigError(
            "the study has no valid experiment",
            source=source,
            issues=[
                ConfigIssue("sweep", r, "change the values so that at least one combination is valid") for r in reasons
            ]
            or [ConfigIssue("sweep", "nothing to run", "add sweep values or experiments")],
        )
    try:
        return StudyConfig(
            name=name, description=description, experiments=experiments, execution=execution, skipped=skipped
        )
    except ValidationError as e:
        raise ConfigError("invalid study", source=source, issues=issues_from_validation(e, StudyConfig)) from None


def experiment_as_study(config: ExperimentConfig, name: str | None = None) -> StudyConfig:
    """Wrap a single experiment into a one-experiment study."""
    return StudyConfig(name=name or "experiment", experiments=[config])
