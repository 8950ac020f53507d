"""A run's files between a node and the head: packed as bytes on the node, written back on the head.

No shared filesystem is assumed: the node task runs the container against a scratch
directory of its own machine, then returns every regular file of it (``result.json``,
``timeseries.parquet``, ``harness.log``, ``error.json``, anything else the harness
wrote at the top level) in its return value, which Ray carries through its object
store. The head writes them into the run directory of the one study directory,
each atomically, ``result.json`` last: a head killed half way leaves no result
without its timeseries.

Decisions: only top-level regular files travel (the harness writes no subfolders;
a link or a folder is left out and logged); names are checked again on the head, so
a malformed outcome can never write outside the run directory; a run over
`MAX_RUN_BYTES` fails on the node with a clear message instead of filling the
object store.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from llenergymeasure.schemas.job import RESULT_FILE

logger = logging.getLogger(__name__)

#: the most bytes one run may send back (result + timeseries + log)
MAX_RUN_BYTES = 1 << 30  # 1 GiB


class TransportError(ValueError):
    """A run's files cannot travel: too large, or a name that is not a plain file name."""


def pack_run_files(run_dir: Path, *, max_bytes: int = MAX_RUN_BYTES) -> dict[str, bytes]:
    """file name → content of every top-level regular file of `run_dir`."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(Path(run_dir).iterdir()):
        if path.is_symlink() or not path.is_file():
            logger.warning("not sending %s back to the head: only regular files travel", path)
            continue
        size = path.stat().st_size
        total += size
        if total > max_bytes:
            raise TransportError(
                f"the files of {run_dir} exceed {max_bytes} bytes; fix: lower energy.timeseries resolution or n"
            )
        files[path.name] = path.read_bytes()
    return files


def unpack_run_files(files: Mapping[str, bytes], run_dir: Path) -> list[Path]:
    """Write `files` into `run_dir` (atomically each, ``result.json`` last); the paths written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in files:
        if not _plain_name(name):
            raise TransportError(f"refusing to write {name!r} from a node: not a plain file name")
    order = sorted(files, key=lambda n: (n == RESULT_FILE, n))
    written = []
    for name in order:
        target = run_dir / name
        _atomic_write_bytes(target, files[name])
        written.append(target)
    return written


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
