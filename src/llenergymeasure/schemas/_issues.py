"""Turn pydantic validation errors into `ConfigIssue`s: field, message and fix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from llenergymeasure.errors import ConfigIssue

_FIX_RE = re.compile(r"[;(]\s*fix:\s*(?P<fix>.+?)\)?$", re.IGNORECASE)


_JSON_BRANCHES = frozenset({"float", "int", "bool", "str", "list", "dict"})


def dotted(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("decoder", "top_p")`` → ``decoder.top_p``; list indices as ``[i]``; union branch names dropped."""
    out = prefix
    free_form = bool(loc) and loc[0] == "passthrough_kwargs"
    for part in loc:
        if free_form and isinstance(part, str) and (part in _JSON_BRANCHES or part.startswith(("list[", "dict["))):
            continue  # pydantic's JsonValue union branch, not a key the user wrote
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif part in {
            "SyntheticDataset",
            "str",
            "function-after[_dataset_name_or_path(), union[str,SyntheticDataset]]",
        }:
            continue
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or "<top level>"


def _known_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names of the model found at `loc` (the parent of an unknown field)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = nested_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation like ``X | None``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = nested_model(arg)
        if found is not None:
            return found
    return None


#: names from earlier versions of the config (and other tools' vocabulary) → the name now, in the same place
RENAMED: dict[str, str] = {
    "engine": "backend",
    "dtype": "precision",
    "torch_dtype": "precision",
    "transformers": "pytorch",
    "num_input_prompts": "n",
    "num_prompts": "n",
    "max_new_tokens": "max_output_tokens",
    "max_length": "max_output_tokens",
    "seed": "random_seed",
    "model_name": "model",
    "experiment_gap_seconds": "config_gap_seconds",
    "tensor_parallel_size": "tp_size",
    "pipeline_parallel_size": "pp_size",
    "cycles": "n_cycles",
    "grid": "sweep",
}

_EXECUTION_FIELDS = (
    "n_cycles",
    "cycle_order",
    "config_gap_seconds",
    "cycle_gap_seconds",
    "max_consecutive_failures",
    "experiment_timeout_seconds",
    "silence_timeout_seconds",
    "max_grid_points",
)
_DECODER_FIELDS = ("temperature", "do_sample", "top_k", "top_p", "min_p", "repetition_penalty", "min_new_tokens")

#: keys that are not fields of an experiment at the top level of a file → the fix
TOP_LEVEL_HINTS: dict[str, str] = {
    "grid": "did you mean 'sweep'? (the grid of values to sweep is written under sweep:)",
    "runners": "runners are host settings, not part of a study: set them in the user config "
    "(runners.<backend>: docker|local; `llem config` shows its path) or with LLEM_RUNNER_<BACKEND>",
    "experiment_gap_seconds": "did you mean 'execution.config_gap_seconds'? (write it under execution:)",
    "cycles": "did you mean 'execution.n_cycles'? (write it under execution:)",
    "batch_size": "move it into the backend section: pytorch: {batch_size: ...}",
    "tensor_parallel_size": "write vllm: {engine: {tensor_parallel_size: ...}} or tensorrt: {tp_size: ...}",
    "tp_size": "write tensorrt: {tp_size: ...} or vllm: {engine: {tensor_parallel_size: ...}}",
    **{f: f"move it under execution: (execution: {{{f}: ...}})" for f in _EXECUTION_FIELDS},
    **{f: f"move it under decoder: (decoder: {{{f}: ...}})" for f in _DECODER_FIELDS},
}


def _distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string alignment)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The field `name` was most likely meant to be: a known rename first, then a close misspelling.

    Only typos are suggested (a few letters wrong, missing, extra or swapped, scaled to the name's
    length), never a field that merely shares a prefix: `dataset_order` is not `dataset`, `base` is
    not `baseline`.
    """
    known = list(candidates)
    renamed = RENAMED.get(name)
    if renamed in known:
        return renamed
    if len(name) > 64:
        return None
    allowed = max(1, min(3, len(name) // 4))
    scored = sorted((_distance(name.lower(), c.lower()), c) for c in known)
    if scored and scored[0][0] <= allowed:
        return scored[0][1]
    return None


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unknown_field_fix(name: str, known: list[str], top_level: bool) -> str:
    """The fix for an unknown field `name` among `known`: a rename or typo, a hint for a misplaced field, or the list."""
    close = suggest(name, known)
    if close is not None:
        return f"did you mean {close!r}?"
    if top_level and name in TOP_LEVEL_HINTS:
        return TOP_LEVEL_HINTS[name]
    head, dot, rest = name.partition(".")
    if top_level and dot and head in known:
        return f"write it nested ({head}: {{{rest}: ...}}); dotted keys are only for sweep:"
    return f"remove it; known fields: {', '.join(sorted(known))}"


#: expected-type phrases for pydantic's type error kinds
_EXPECTED = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "text",
    "dict": "a mapping of 'key: value' lines",
    "model": "a mapping of 'key: value' lines",
    "list": "a list, e.g. [a, b]",
}


def _type_fix(kind: str, field: str, value: Any, top_level: bool) -> str:
    if isinstance(value, list) and top_level and not kind.startswith(("list", "model", "dict")):
        return f"{field} takes one value; to compare several, sweep it: sweep: {{{field}: {_short_repr(value)}}}"
    if kind == "finite_number":
        return f"give {field} a finite number (.inf and .nan are not accepted)"
    expected = next((v for k, v in _EXPECTED.items() if kind.startswith(k)), "a value of the expected type")
    got = _short_repr(value)
    if isinstance(value, bool) and expected in {"a whole number", "a number"}:
        got += " (a boolean is not a number)"
    return f"give {field} {expected} (got {got})"


def suggest_value(value: str, allowed: Sequence[str]) -> str | None:
    """A close allowed value: same but for case (`FP16` → `fp16`), a typo, or contained (`torch` → `pytorch`)."""
    lowered = {a.lower(): a for a in allowed}
    close = lowered.get(value.strip().lower()) or suggest(value, allowed)
    if close is None and len(value) >= 3:
        close = next((a for a in allowed if value.lower() in a.lower()), None)
    return close


def _literal_fix(value: Any, expected: str) -> str:
    """A close allowed value, else the allowed values."""
    allowed = re.findall(r"'([^']*)'", expected)
    close = suggest_value(value, allowed) if isinstance(value, str) and allowed else None
    if close is not None:
        return f"did you mean {close!r}? (got {_short_repr(value)})"
    return f"use one of the allowed values (got {_short_repr(value)})"


def issues_from_validation(err: ValidationError, model: type[BaseModel], prefix: str = "") -> list[ConfigIssue]:
    """One `ConfigIssue` per pydantic error, each with a fix a user can act on."""
    issues: list[ConfigIssue] = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        field = dotted(loc, prefix)
        msg = str(e["msg"])
        fix: str | None = None
        m = _FIX_RE.search(msg)
        if m:
            fix = m.group("fix").strip()
            msg = msg[: m.start()].strip().rstrip(",;")
        kind = e["type"]
        value = e.get("input")
        top_level = not prefix and len([p for p in loc if not isinstance(p, int)]) == 1
        if kind == "extra_forbidden":
            name = str(loc[-1]) if loc else ""
            known = _known_fields(model, loc[:-1])
            msg = f"unknown field {name!r}"
            fix = unknown_field_fix(name, known, top_level and not prefix)
        elif kind == "string_unicode":
            fix = f"write {field} as valid text (it holds a lone surrogate, e.g. from an undecodable byte)"
        elif kind == "missing":
            fix = f"add '{field}: ...' to the config"
        elif fix is None and (
            kind.endswith("_parsing") or kind.endswith("_type") or kind == "finite_number" or kind == "literal_error"
        ):
            if kind == "literal_error" and not (isinstance(value, list) and top_level):
                fix = _literal_fix(value, str((e.get("ctx") or {}).get("expected", "")))
            else:
                fix = _type_fix(kind, field, value, top_level)
        elif fix is None and kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
            fix = f"change {field} (got {_short_repr(value)})"
        elif fix is None and kind in {"string_too_short", "too_short"}:
            fix = f"give {field} a non-empty value"
        elif fix is None:
            fix = f"change {field} (got {_short_repr(value)})"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        issues.append(ConfigIssue(field=field, message=msg, fix=fix))
    return issues
