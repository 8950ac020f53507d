"""File-system helpers shared by both wings: atomic writes and never-overwriting directories."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write `text` to `path` via a temp file in the same directory + fsync + rename + directory fsync.

    A reader (or a resumed study after a crash) sees the old file or the whole new
    one, never a part. On any failure the temp file is removed and the error raised;
    `path` is left as it was. `mode`: permission bits of the new file (default: the
    temp file's 0o600), e.g. 0o644 for a file another user (a container) reads.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def make_unique_directory(parent: Path, name: str, max_tries: int = 10_000) -> Path | None:
    """Create ``parent/name``, else ``name_1``, ``name_2``...; the directory created, or None when all are taken.

    ``mkdir`` without ``exist_ok`` is the collision test, so two processes asking for
    one name at the same moment never share a directory. `parent` is created if needed.
    """
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(max_tries):
        candidate = parent / (name if n == 0 else f"{name}_{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    return None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
