"""Check the local model directories and dataset files a config names, before anything runs.

Run when a file is loaded (so ``llem run --dry-run`` reports them), on the raw mapping, so every
problem names the field it came from (``model``, ``experiments[2].dataset``, ``sweep.model``):

- a local model (a path, not a hub id) must be a directory holding ``config.json`` (what
  ``save_pretrained`` writes; a TensorRT-only study may point at an engine directory instead);
- a local dataset must be a regular file of JSON lines, each an object with a string ``prompt``
  (rows whose keys all start with ``_`` are provenance records); the first bad line is named.
  The file is read line by line within `MAX_DATASET_BYTES`, never whole.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llenergymeasure.errors import ConfigIssue
from llenergymeasure.schemas.config.experiment import looks_like_path
from llenergymeasure.schemas.config.text import path_problem

#: largest local dataset file checked (bytes)
MAX_DATASET_BYTES = 1024 * 1024 * 1024
#: longest line read from a dataset file (bytes)
MAX_LINE_BYTES = 16 * 1024 * 1024

_DEFAULT_BACKEND = "pytorch"


def _values(raw: Mapping[str, Any], key: str) -> Iterator[tuple[str, Any, str | None]]:
    """``(field, value, backend or None for "any backend of the study")`` for `key` wherever it is set."""
    shared_backend = raw.get("backend", _DEFAULT_BACKEND)
    if key in raw:
        yield key, raw[key], None
    entries = raw.get("experiments")
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, Mapping) and key in entry:
                yield f"experiments[{i}].{key}", entry[key], str(entry.get("backend", shared_backend))
    sweep = raw.get("sweep")
    if isinstance(sweep, Mapping) and isinstance(sweep.get(key), list):
        for value in sweep[key]:
            yield f"sweep.{key}", value, None


def _study_backends(raw: Mapping[str, Any]) -> set[str]:
    backends = {str(raw.get("backend", _DEFAULT_BACKEND))}
    sweep = raw.get("sweep")
    if isinstance(sweep, Mapping) and isinstance(sweep.get("backend"), list):
        backends = {str(b) for b in sweep["backend"]}
    entries = raw.get("experiments")
    if isinstance(entries, list):
        backends |= {
            str(e.get("backend", raw.get("backend", _DEFAULT_BACKEND))) for e in entries if isinstance(e, Mapping)
        }
    return backends


def _is_local(value: Any) -> bool:
    return (
        isinstance(value, str) and path_problem(value) is None and looks_like_path(value) and not value.startswith("~")
    )


def check_local_inputs(raw: Mapping[str, Any]) -> list[ConfigIssue]:
    """Issues for every local model or dataset in `raw` (paths already made absolute) that cannot be used."""
    issues: list[ConfigIssue] = []
    checked: set[tuple[str, str]] = set()
    tensorrt_only = _study_backends(raw) == {"tensorrt"}
    for field, value, backend in _values(raw, "model"):
        if not _is_local(value) or ("model", value) in checked:
            continue
        checked.add(("model", value))
        needs_config = not (backend == "tensorrt" if backend is not None else tensorrt_only)
        problem = model_dir_problem(Path(value), needs_config)
        if problem is not None:
            issues.append(ConfigIssue(field, problem[0], problem[1]))
    for field, value, _ in _values(raw, "dataset"):
        if not (_is_local(value) and str(value).endswith((".jsonl", ".json"))) or ("dataset", value) in checked:
            continue
        checked.add(("dataset", value))
        problem = dataset_file_problem(Path(value))
        if problem is not None:
            issues.append(ConfigIssue(field, problem[0], problem[1]))
    return issues


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def model_dir_problem(path: Path, needs_config: bool = True) -> tuple[str, str] | None:
    """``(message, fix)`` when `path` is not a usable local model directory, else None."""
    st = _stat(path)
    if st is None:
        return f"local model {path} does not exist", "fix the path, or give a hub id (org/name)"
    if not stat.S_ISDIR(st.st_mode):
        return f"local model {path} is not a directory", "point it at the directory written by save_pretrained"
    if needs_config:
        cfg = _stat(path / "config.json")
        if cfg is None or not stat.S_ISREG(cfg.st_mode):
            return (
                f"local model {path} has no config.json: not a saved model",
                "point it at a directory written by save_pretrained",
            )
    return None


def dataset_file_problem(path: Path) -> tuple[str, str] | None:
    """``(message, fix)`` when `path` is not a readable JSONL file of prompts, else None."""
    fix = 'write one JSON object per line, e.g. {"prompt": "Explain ..."}'
    st = _stat(path)
    if st is None:
        return f"dataset file {path} does not exist", "fix the path, or use dataset: aienergyscore"
    if not stat.S_ISREG(st.st_mode):
        return f"dataset {path} is not a regular file", "point dataset: at a .jsonl file"
    if st.st_size > MAX_DATASET_BYTES:
        return f"dataset {path} is larger than {MAX_DATASET_BYTES} bytes", "use a smaller prompt file"
    prompts = 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            read = 0
            for lineno in range(1, 1 << 62):
                line = fh.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                read += len(line)
                if len(line) > MAX_LINE_BYTES or read > MAX_DATASET_BYTES:
                    return f"{path}:{lineno}: line too long or file too large", fix
                if not line.strip():
                    continue
                try:
                    row = json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as e:
                    return f"{path}:{lineno}: not valid JSON ({str(e).splitlines()[0][:80]})", fix
                if isinstance(row, dict) and row and all(str(k).startswith("_") for k in row):
                    continue  # provenance record
                if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                    return f'{path}:{lineno}: expected an object with a string "prompt" field', fix
                prompts += 1
    except OSError as e:
        return f"cannot read dataset {path}: {e.strerror or type(e).__name__}", "make the file readable"
    if prompts == 0:
        return f"dataset {path} has no prompts", fix
    return None
