"""Load experiment and study YAML files into validated configs.

Files are read within fixed limits (`config_file`: regular files only, size, depth, alias
expansion) with YAML's safe constructors only: a tag that would construct Python objects is an
error, never executed. Every failure is a `ConfigError` naming the file, the field (with its line
where the YAML says it) and the fix; all the problems of a file are reported together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.orchestrator.config_file import read_yaml
from llenergymeasure.orchestrator.local_inputs import check_local_inputs
from llenergymeasure.schemas._issues import issues_from_validation
from llenergymeasure.schemas.config.experiment import ExperimentConfig, looks_like_path
from llenergymeasure.schemas.config.text import path_problem
from llenergymeasure.schemas.study import StudyConfig
from llenergymeasure.schemas.sweep import is_study, resolve_study

T = TypeVar("T")


def read_yaml_document(
    path: str | Path, *, allow_empty: bool = False
) -> tuple[dict[str, Any], dict[str, int], list[ConfigIssue]]:
    """Parse `path` as a YAML mapping: the data, a dotted-key → line index, and key problems found
    while parsing (duplicate or non-string keys), to be reported with any later ones."""
    src = str(path)
    parsed = read_yaml(path)
    raw = parsed.data
    if raw is None and allow_empty:
        return {}, {}, []
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
    data = _string_keys_only(raw) if parsed.issues else dict(raw)
    return data, parsed.lines, parsed.issues


def _string_keys_only(value: Any) -> Any:
    """`value` without the mapping keys that are not non-empty strings (already reported with their line)."""
    if isinstance(value, Mapping):
        return {k: _string_keys_only(v) for k, v in value.items() if isinstance(k, str) and k.strip()}
    if isinstance(value, list):
        return [_string_keys_only(v) for v in value]
    return value


def read_yaml_mapping(path: str | Path, *, allow_empty: bool = False) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse `path` as a YAML mapping; also return a dotted-key → line index for error messages.

    An empty file is an error, or an empty mapping with `allow_empty` (an empty user config).
    """
    raw, lines, issues = read_yaml_document(path, allow_empty=allow_empty)
    if issues:
        raise ConfigError(_head(issues, "invalid YAML keys"), source=str(path), issues=issues)
    return raw, lines


def _head(issues: list[ConfigIssue], single: str) -> str:
    return single if len(issues) == 1 else f"{len(issues)} problems in the config"


def _with_lines(err: ConfigError, lines: Mapping[str, int]) -> ConfigError:
    """Attach YAML line numbers to the issues of `err` (longest known prefix of each field), in line order."""
    for i, issue in enumerate(err.issues):
        if issue.line is not None:
            continue
        key = issue.field
        while key and key not in lines:
            key = key[: max(key.rfind("."), key.rfind("["), 0)]
        if key in lines:
            err.issues[i] = ConfigIssue(issue.field, issue.message, issue.fix, lines[key])
    err.issues.sort(key=lambda i: i.line if i.line is not None else 1 << 30)
    return err


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply CLI overrides (dotted keys) as shared fields; an override also removes that sweep dimension.

    An override never replaces a section of the wrong shape (``pytorch: [1, 2]`` with ``--batch-size``):
    the section is left as written, for validation to report.
    """
    out = dict(raw)
    sweep = dict(out["sweep"]) if isinstance(out.get("sweep"), Mapping) else None
    had_sweep = bool(sweep)
    for key, value in overrides.items():
        if value is None:
            continue
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.get(p)
            if child is not None and not isinstance(child, Mapping):
                break
            node[p] = dict(child) if isinstance(child, Mapping) else {}
            node = node[p]
        else:
            node[leaf] = value
        if sweep is not None:
            sweep.pop(key, None)
    if sweep is not None:
        if sweep or not had_sweep:
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
    raw, lines, issues = _read_with_paths(path, overrides)
    if is_study(raw):
        raise ConfigError(
            "this is a study file (it has sweep: or experiments:)",
            source=str(path),
            issues=[ConfigIssue("sweep", "an experiment file has neither key", "use load_study_config / run_study")],
        )
    return _finish(lambda: parse_experiment(raw, str(path)), path, lines, issues)


def study_from_mapping(raw: Mapping[str, Any], source: str | None = None) -> StudyConfig:
    """A `StudyConfig` from a raw mapping: a study (sweep/experiments) or a single experiment."""
    return resolve_study(raw, source)


def study_from_flags(fields: Mapping[str, Any]) -> StudyConfig:
    """The one-experiment study given by command-line flags alone (dotted keys for sections)."""
    raw: dict[str, Any] = {}
    for key, value in fields.items():
        if value is not None:
            head, _, leaf = key.partition(".")
            if leaf:
                raw.setdefault(head, {})[leaf] = value
            else:
                raw[key] = value
    issues: list[ConfigIssue] = []
    raw = resolve_local_paths(raw, Path.cwd(), issues, "--")
    issues.extend(check_local_inputs(raw))
    return _finish(lambda: study_from_mapping(raw, "<command line>"), "<command line>", {}, issues)


def load_study_config(
    path: str | Path, overrides: Mapping[str, Any] | None = None, *, check_inputs: bool = False
) -> StudyConfig:
    """Load a study or experiment YAML as a `StudyConfig` (auto-detected).

    Relative local paths in the file (model directories, dataset files) are resolved against the
    file's directory; paths given as `overrides` (CLI flags) against the current directory. With
    `check_inputs`, local models and datasets are checked too (exists, config.json, JSONL rows).
    Every problem of the file is reported in one `ConfigError`.
    """
    raw, lines, issues = _read_with_paths(path, overrides, check_inputs=check_inputs)
    return _finish(lambda: study_from_mapping(raw, str(path)), path, lines, issues)


def _finish(build: Callable[[], T], path: str | Path, lines: Mapping[str, int], issues: list[ConfigIssue]) -> T:
    """`build()`, with the issues found before validation reported together with its own."""
    try:
        result = build()
    except ConfigError as e:
        known = {i.field for i in issues}
        later = [i for i in e.issues if i.field not in known]
        head = e.message if not issues else f"{len(issues) + len(later)} problems in the config"
        raise _with_lines(ConfigError(head, source=str(path), issues=issues + later), lines) from None
    if issues:
        raise _with_lines(ConfigError(_head(issues, issues[0].message), source=str(path), issues=issues), lines)
    return result


def _read_with_paths(
    path: str | Path, overrides: Mapping[str, Any] | None, *, check_inputs: bool = False
) -> tuple[dict[str, Any], dict[str, int], list[ConfigIssue]]:
    raw, lines, issues = read_yaml_document(path)
    raw = _raw_with_paths(raw, Path(path).resolve().parent, issues)
    raw = apply_overrides(raw, resolve_local_paths(dict(overrides or {}), Path.cwd(), issues, "--"))
    if check_inputs:
        issues.extend(check_local_inputs(raw))
    return raw, lines, issues


def resolve_local_paths(
    fields: dict[str, Any], base: Path, issues: list[ConfigIssue] | None = None, prefix: str = ""
) -> dict[str, Any]:
    """Make a relative local `model` directory or `dataset` file absolute, against `base`.

    A model string is a local path when it looks like one (`looks_like_path`) or names an existing
    directory under `base`; otherwise it is a hub id and stays as is. A value the file system cannot
    take (NUL byte, over-long, ``~nosuchuser``) is left as is; validation or `issues` report it.
    """
    out = dict(fields)
    model = out.get("model")
    usable = isinstance(model, str) and bool(model.strip()) and path_problem(model) is None
    if usable and isinstance(model, str) and (looks_like_path(model) or _is_dir(base / model)):
        out["model"] = _absolute(model, base, f"{prefix}model", issues)
    dataset = out.get("dataset")
    if isinstance(dataset, str) and path_problem(dataset) is None and dataset.endswith((".jsonl", ".json")):
        out["dataset"] = _absolute(dataset, base, f"{prefix}dataset", issues)
    return out


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _absolute(value: str, base: Path, field: str, issues: list[ConfigIssue] | None) -> str:
    # absolute and normalised, symlinks kept as written (resolving a link loop would raise); the runner
    # resolves links for its mounts, and the checks follow them
    try:
        return os.path.normpath(os.path.abspath(base / Path(value).expanduser()))
    except RuntimeError as e:  # expanduser: "~name" with no such user
        if issues is not None:
            issues.append(ConfigIssue(field, f"cannot expand {value.split('/')[0]!r}: {e}", "write the full path"))
    except (OSError, ValueError) as e:
        if issues is not None:
            issues.append(ConfigIssue(field, f"not a usable path: {e}", "write a shorter, plain path"))
    return value


def _raw_with_paths(raw: dict[str, Any], base: Path, issues: list[ConfigIssue] | None = None) -> dict[str, Any]:
    """The raw study with relative paths in shared fields, experiments and sweep values made absolute."""
    out = resolve_local_paths(raw, base, issues)
    if isinstance(out.get("experiments"), list):
        out["experiments"] = [
            resolve_local_paths(dict(e), base, issues, f"experiments[{i}].") if isinstance(e, Mapping) else e
            for i, e in enumerate(out["experiments"])
        ]
    sweep = out.get("sweep")
    if isinstance(sweep, Mapping):
        sweep = dict(sweep)
        for key in ("model", "dataset"):
            if isinstance(sweep.get(key), list):
                sweep[key] = [resolve_local_paths({key: v}, base, issues, "sweep.").get(key, v) for v in sweep[key]]
        out["sweep"] = sweep
    return out


def load_config(path: str | Path) -> ExperimentConfig | StudyConfig:
    """Load `path`, returning an `ExperimentConfig` for an experiment file and a `StudyConfig` for a study file."""
    raw, lines, issues = _read_with_paths(path, None)
    if is_study(raw):
        return _finish(lambda: resolve_study(raw, str(path)), path, lines, issues)
    return _finish(lambda: parse_experiment(raw, str(path)), path, lines, issues)
