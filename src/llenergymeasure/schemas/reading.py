"""Tolerant readers for the files a study leaves: results, manifests, study results.

Writers are strict (every model forbids unknown fields and pins its ``schema_version``); readers
are tolerant within a major version, so a file written by a newer 2.x llenergymeasure opens in an
older 2.x one:

- any ``2.x`` ``schema_version`` is accepted (the minor version only ever adds fields);
- fields this version does not know are dropped, with ONE warning per file naming them;
- another major version (``3.x``, ``1.x``) is refused with `SchemaVersionError`, which says what
  to install. A file without ``schema_version`` is read as the current version.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llenergymeasure.errors import LLEMError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

#: the major version of every file schema this package reads and writes
SCHEMA_MAJOR = "2"


class SchemaVersionError(LLEMError):
    """A file of a schema major version this llenergymeasure cannot read. Exit code 2."""

    exit_code = 2

    def __init__(self, source: str, version: str) -> None:
        super().__init__(
            f"{source} has schema version {version}; this llenergymeasure reads {SCHEMA_MAJOR}.x only "
            f"(fix: open it with an llenergymeasure whose files are {version.split('.')[0]}.x, "
            "e.g. the version that wrote it)"
        )
        self.source = source
        self.version = version


def _drop(data: Any, loc: tuple[int | str, ...]) -> bool:
    """Remove the key at `loc` from nested dicts/lists; True if something was removed."""
    node = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(node, dict) and loc and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def validate_tolerant(model: type[M], data: Any, source: str) -> M:
    """`model` from parsed JSON `data`: any 2.x version, unknown fields dropped (one warning)."""
    if not isinstance(data, dict):
        return model.model_validate(data)  # the model's own error says what is wrong
    version = str(data.get("schema_version", ""))
    if version and version.split(".")[0] != SCHEMA_MAJOR:
        raise SchemaVersionError(source, version)
    data = dict(data)
    default_version = model.model_fields.get("schema_version")
    if version and default_version is not None:
        data["schema_version"] = default_version.default  # 2.1 reads as the 2.x this version knows
    ignored: list[str] = []
    for _ in range(10):  # each round drops every unknown field pydantic reports (nested ones included)
        try:
            value = model.model_validate(data)
        except ValidationError as e:
            errors = e.errors()
            extra = [err["loc"] for err in errors if err["type"] == "extra_forbidden"]
            if not extra or len(extra) != len(errors):
                raise  # a real problem (or unknown fields beside one): the model's message names it
            if not ignored:
                data = json.loads(json.dumps(data))  # deep copy before editing nested dicts
            for loc in extra:
                if _drop(data, tuple(loc)):
                    ignored.append(".".join(map(str, loc)))
            continue
        if ignored:
            logger.warning(
                "%s (schema %s) has fields this llenergymeasure does not know; ignored: %s",
                source,
                version or "?",
                ", ".join(ignored),
            )
        return value
    raise ValueError(f"{source}: could not drop the unknown fields")  # pragma: no cover - bounded by depth


def read_json_tolerant(model: type[M], path: Path) -> M:
    """Read and validate the JSON file at `path` with `validate_tolerant`."""
    return validate_tolerant(model, json.loads(Path(path).read_text(encoding="utf-8")), str(path))
