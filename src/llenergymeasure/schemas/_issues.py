"""Turn pydantic validation errors into `ConfigIssue`s: field, message and fix."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from llenergymeasure.errors import ConfigIssue

_FIX_RE = re.compile(r"[;(]\s*fix:\s*(?P<fix>.+?)\)?$", re.IGNORECASE)


def dotted(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("decoder", "top_p")`` → ``decoder.top_p``; list indices as ``[i]``; union branch names dropped."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
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


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to `name`, if one is close enough."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


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
        if kind == "extra_forbidden":
            name = str(loc[-1]) if loc else ""
            known = _known_fields(model, loc[:-1])
            close = suggest(name, known)
            msg = f"unknown field {name!r}"
            fix = f"did you mean {close!r}?" if close else f"remove it; known fields: {', '.join(sorted(known))}"
        elif kind == "missing":
            fix = f"add '{field}: ...' to the config"
        elif fix is None and (kind.endswith("_parsing") or kind.endswith("_type")):
            fix = f"give {field} a value of the expected type (got {e.get('input')!r})"
        elif fix is None and kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
            fix = f"change {field} (got {e.get('input')!r})"
        elif fix is None and kind == "literal_error":
            fix = f"use one of the allowed values (got {e.get('input')!r})"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        issues.append(ConfigIssue(field=field, message=msg, fix=fix))
    return issues
