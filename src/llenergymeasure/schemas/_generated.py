"""Shared plumbing of the generators: write a file, or check that it is up to date."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path


def project_root() -> Path:
    """The repository root (the directory holding pyproject.toml), searched upwards from the cwd."""
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return here


def write_or_check(files: Mapping[Path, str], argv: list[str], regenerate_hint: str) -> int:
    """Write every file, or with ``--check`` report the stale ones; returns a process exit code."""
    check = "--check" in argv
    stale = []
    for path, content in files.items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == content:
            continue
        if check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        for p in stale:
            print(f"out of date: {p}", file=sys.stderr)
        print(f"fix: run `{regenerate_hint}` and commit the result", file=sys.stderr)
        return 1
    return 0
