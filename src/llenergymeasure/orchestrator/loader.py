"""Load experiment and study YAML files into validated configs.

`yaml.safe_load` only: a tag that would construct Python objects is an error,
never executed. Every failure is a `ConfigError` naming the file, the field
(with its line where the YAML says it) and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.schemas._issues import issues_from_validation
from llenergymeasure.schemas.config.experiment import ExperimentConfig, looks_like_path
from llenergymeasure.schemas.study import ExecutionConfig, StudyConfig
from llenergymeasure.schemas.sweep import STUDY_KEYS, is_study, resolve_study

MAX_CONFIG_BYTES = 4 * 1024 * 1024


def read_yaml_mapping(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse `path` as a YAML mapping; also return a dotted-key → line index for error messages."""
    p = Path(path)
    src = str(p)
    if not p.exists():
        raise ConfigError(
            "file not found", source=src, issues=[ConfigIssue("<file>", "no such file", "check the path")]
        )
    if p.is_dir():
        raise ConfigError(
            "is a directory, not a YAML file",
            source=src,
            issues=[ConfigIssue("<file>", "expected a .yaml file", f"pass a file inside it, e.g. {p / 'study.yaml'}")],
        )
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror}", source=src) from e
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            "file too large for a config",
            source=src,
            issues=[ConfigIssue("<file>", f"{len(data)} bytes", "pass the study/experiment YAML")],
        )
    if b"\x00" in data:
        raise ConfigError(
            "not a text file (binary content)",
            source=src,
            issues=[ConfigIssue("<file>", "contains NUL bytes", "pass a UTF-8 YAML file")],
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            "not valid UTF-8 text",
            source=src,
            issues=[ConfigIssue("<file>", f"invalid byte at offset {e.start}", "save the file as UTF-8")],
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError("invalid YAML", source=src, issues=[_yaml_issue(e)]) from None
    if raw is None:
        raise ConfigError(
            "the file is empty",
            source=src,
            issues=[ConfigIssue("<top level>", "no content", "add at least 'model: <hub id or path>'")],
        )
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"the top level is a {type(raw).__name__}, not a mapping",
            source=src,
            issues=[ConfigIssue("<top level>", "expected 'field: value' pairs", "write e.g. 'model: gpt2' at the top")],
        )
    bad_keys = [k for k in raw if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(
            "field names must be strings",
            source=src,
            issues=[ConfigIssue(str(k), "not a field name", "quote it or remove it") for k in bad_keys],
        )
    return dict(raw), _line_index(text)


def _yaml_issue(e: yaml.YAMLError) -> ConfigIssue:
    mark = getattr(e, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if isinstance(e, yaml.constructor.ConstructorError) and "tag" in str(problem):
        return ConfigIssue(
            "<yaml>", f"{problem} (tags that build objects are never executed)", "remove the '!!' tag", line
        )
    return ConfigIssue("<yaml>", str(problem), "fix the YAML syntax at that line (indentation, ':' or quotes)", line)


def _line_index(text: str) -> dict[str, int]:
    """Map dotted keys (``decoder.top_p``, ``experiments[0].precision``) to 1-based line numbers."""
    index: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return index

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                index.setdefault(key, key_node.start_mark.line + 1)
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                index.setdefault(f"{prefix}[{i}]", item.start_mark.line + 1)
                walk(item, f"{prefix}[{i}]")

    if root is not None:
        walk(root, "")
    return index


def _with_lines(err: ConfigError, lines: Mapping[str, int]) -> ConfigError:
    """Attach YAML line numbers to the issues of `err` (longest known prefix of each field)."""
    for i, issue in enumerate(err.issues):
        if issue.line is not None:
            continue
        key = issue.field
        while key and key not in lines:
            key = key.rpartition(".")[0]
        if key in lines:
            err.issues[i] = ConfigIssue(issue.field, issue.message, issue.fix, lines[key])
    return err


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply CLI overrides (dotted keys) as shared fields; an override also removes that sweep dimension."""
    out = dict(raw)
    sweep = dict(out["sweep"]) if isinstance(out.get("sweep"), Mapping) else None
    for key, value in overrides.items():
        if value is None:
            continue
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.get(p)
            node[p] = dict(child) if isinstance(child, Mapping) else {}
            node = node[p]
        node[leaf] = value
        if sweep is not None:
            sweep.pop(key, None)
    if sweep is not None:
        if sweep:
            out["sweep"] = sweep
        else:  # every swept field was overridden: what is left is a plain experiment
            del out["sweep"]
    return out


def parse_experiment(raw: Mapping[str, Any], source: str | None = None) -> ExperimentConfig:
    """Validate a raw mapping as an `ExperimentConfig` (ConfigError on failure)."""
    try:
        return ExperimentConfig.model_validate(dict(raw))
    except ValidationError as e:
        raise ConfigError(
            "invalid experiment config", source=source, issues=issues_from_validation(e, ExperimentConfig)
        ) from None


def load_experiment_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment YAML (no ``sweep:``/``experiments:``)."""
    raw, lines = _read_with_paths(path, overrides)
    if is_study(raw):
        raise ConfigError(
            "this is a study file (it has sweep: or experiments:)",
            source=str(path),
            issues=[ConfigIssue("sweep", "an experiment file has neither key", "use load_study_config / run_study")],
        )
    try:
        return parse_experiment(raw, str(path))
    except ConfigError as e:
        raise _with_lines(e, lines) from None


def study_from_mapping(raw: Mapping[str, Any], source: str | None = None) -> StudyConfig:
    """A `StudyConfig` from a raw mapping: a study (sweep/experiments) or a single experiment."""
    if is_study(raw):
        return resolve_study(raw, source)
    fields = {k: v for k, v in raw.items() if k not in STUDY_KEYS}
    config = parse_experiment(fields, source)
    try:
        execution = ExecutionConfig.model_validate(raw.get("execution") or {})
    except ValidationError as e:
        raise ConfigError(
            "invalid execution section", source=source, issues=issues_from_validation(e, ExecutionConfig, "execution")
        ) from None
    name = str(raw.get("name") or "experiment")
    return StudyConfig(name=name, description=raw.get("description"), experiments=[config], execution=execution)


def load_study_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> StudyConfig:
    """Load a study or experiment YAML as a `StudyConfig` (auto-detected).

    Relative local paths in the file (model directories, dataset files) are resolved against the
    file's directory; paths given as `overrides` (CLI flags) against the current directory.
    """
    raw, lines = _read_with_paths(path, overrides)
    try:
        return study_from_mapping(raw, str(path))
    except ConfigError as e:
        raise _with_lines(e, lines) from None


def _read_with_paths(path: str | Path, overrides: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, int]]:
    raw, lines = read_yaml_mapping(path)
    raw = _raw_with_paths(raw, Path(path).resolve().parent)
    return apply_overrides(raw, resolve_local_paths(dict(overrides or {}), Path.cwd())), lines


def resolve_local_paths(fields: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make a relative local `model` directory or `dataset` file absolute, against `base`.

    A model string is a local path when it looks like one (`looks_like_path`) or names an existing
    directory under `base`; otherwise it is a hub id and stays as is.
    """
    out = dict(fields)
    model = out.get("model")
    if isinstance(model, str) and (looks_like_path(model) or (base / model).is_dir()):
        out["model"] = str((base / Path(model).expanduser()).resolve())
    dataset = out.get("dataset")
    if isinstance(dataset, str) and dataset.endswith((".jsonl", ".json")):
        out["dataset"] = str((base / Path(dataset).expanduser()).resolve())
    return out


def _raw_with_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """The raw study with relative paths in shared fields, experiments and sweep values made absolute."""
    out = resolve_local_paths(raw, base)
    if isinstance(out.get("experiments"), list):
        out["experiments"] = [resolve_local_paths(e, base) if isinstance(e, dict) else e for e in out["experiments"]]
    sweep = out.get("sweep")
    if isinstance(sweep, Mapping):
        sweep = dict(sweep)
        for key in ("model", "dataset"):
            if isinstance(sweep.get(key), list):
                sweep[key] = [resolve_local_paths({key: v}, base)[key] for v in sweep[key]]
        out["sweep"] = sweep
    return out


def load_config(path: str | Path) -> ExperimentConfig | StudyConfig:
    """Load `path`, returning an `ExperimentConfig` for an experiment file and a `StudyConfig` for a study file."""
    raw, lines = _read_with_paths(path, None)
    try:
        return resolve_study(raw, str(path)) if is_study(raw) else parse_experiment(raw, str(path))
    except ConfigError as e:
        raise _with_lines(e, lines) from None
