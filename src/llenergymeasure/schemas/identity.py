"""Content identities of local inputs, so `measurement_config_hash` does not depend on where they live.

The same model directory at ``/data/a/llama`` on one machine and ``/mnt/models/llama`` on another
(or ``/llem/models/llama`` inside the container) is the same measurement. So the hash covers what a
local input *is*, not where it is:

- a local model, LoRA adapter or TensorRT engine directory → a digest of its files: every small file
  (config, tokenizer, ≤ 16 MiB) in full; every large file (weights) by name, size and a sampled
  digest (the first and last 4 MiB and four 1 MiB slices between). Reading tens of GB on every hash
  would make planning a study take minutes; the safetensors header at the start of each shard already
  lists every tensor's name, dtype, shape and offset, and the samples catch different values.
- a local dataset file → the SHA-256 of its content (prompt files are small);
- hub ids and built-in dataset names are identities already and are hashed as written.

A path that does not exist (a dry run on another machine, a typo that pre-flight will report) is
hashed as written. Digests are cached per (path, modification time, size) within a process.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

SMALL_FILE_BYTES = 16 * 1024 * 1024
_EDGE = 4 * 1024 * 1024
_SLICE = 1024 * 1024
_INNER_SLICES = 4


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= SMALL_FILE_BYTES:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f.read(_EDGE))
            for k in range(1, _INNER_SLICES + 1):
                f.seek(size * k // (_INNER_SLICES + 1))
                h.update(f.read(_SLICE))
            f.seek(size - _EDGE)
            h.update(f.read(_EDGE))
    return h.hexdigest()


def file_digest(path: Path) -> str:
    st = path.stat()
    return _file_digest(str(path.resolve()), st.st_mtime_ns, st.st_size)


def directory_digest(root: Path) -> str:
    """Digest over every regular file under `root` (relative name, size, content digest), sorted by name."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        rel = path.relative_to(root).as_posix()
        h.update(f"{rel}\0{path.stat().st_size}\0{file_digest(path)}\n".encode())
    return h.hexdigest()[:32]


def content_identity(value: str) -> str:
    """What the hash should cover for a model/adapter/engine/dataset string: its content when it names an
    existing local file or directory, else the string itself (a hub id, a built-in name)."""
    path = Path(os.path.expanduser(value))
    try:
        if path.is_dir():
            return f"dir-sha256:{directory_digest(path)}"
        if path.is_file():
            return f"file-sha256:{file_digest(path)[:32]}"
    except OSError:
        return value
    return value
