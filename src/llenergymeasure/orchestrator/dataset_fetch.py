"""The built-in AI Energy Score dataset, prepared once on the host (pre-flight) for every container to read.

``hf_hub_download`` fetches the pinned parquet file (repo, revision and file from
`llenergymeasure.schemas.datasets`) into the host HF cache, with the same retry and
error policy as model snapshots (`hub_fetch`); pyarrow reads its prompt column and
the prompts are written, atomically, to ``<dataset cache>/aienergyscore.jsonl``
behind a provenance line (repo, revision, file, SHA-256 of the parquet). The file
is rewritten only when it is missing or its provenance is not the pin, so a host
with a prepared cache needs no network at all. Containers mount the dataset cache
read-only and never fetch the dataset themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llenergymeasure.orchestrator.hub_fetch import HubFetchError, hub_errors, retrying
from llenergymeasure.orchestrator.retry import is_transient_download_error
from llenergymeasure.schemas.datasets import (
    AIENERGYSCORE_CACHE_FILE,
    AIENERGYSCORE_FILE,
    AIENERGYSCORE_REPO,
    AIENERGYSCORE_REVISION,
    TEXT_COLUMNS,
    matches_pin,
    provenance_record,
)


@dataclass(frozen=True)
class DatasetPin:
    """Which file of which dataset repository, at which revision."""

    repo: str = AIENERGYSCORE_REPO
    revision: str = AIENERGYSCORE_REVISION
    file: str = AIENERGYSCORE_FILE
    cache_file: str = AIENERGYSCORE_CACHE_FILE


def read_provenance(path: Path) -> dict[str, object]:
    """The provenance record on the first line of a cache file; {} when missing, unreadable or absent."""
    try:
        with path.open(encoding="utf-8") as fh:
            first = json.loads(fh.readline())
    except (OSError, ValueError):
        return {}
    if isinstance(first, dict) and first and all(str(k).startswith("_") for k in first):
        return first
    return {}


def is_prepared(dataset_cache_dir: Path, pin: DatasetPin = DatasetPin()) -> bool:
    """The cache file exists and its provenance is `pin`."""
    return matches_pin(read_provenance(dataset_cache_dir / pin.cache_file), pin.repo, pin.revision, pin.file)


def parquet_prompts(parquet: Path) -> list[str]:
    """The non-empty values of the prompt column (``text``, else ``prompt``) of a parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    for column in TEXT_COLUMNS:
        if column in table.column_names:
            return [str(v) for v in table.column(column).to_pylist() if v]
    raise HubFetchError(
        f"{parquet.name} has none of the prompt columns {list(TEXT_COLUMNS)} (it has {table.column_names})",
        "the pinned dataset file is not the AI Energy Score prompt set; check the pin",
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_cache_file(path: Path, prompts: list[str], provenance: dict[str, str]) -> None:
    """Provenance line, then one ``{"prompt": ...}`` per line; written to a temp file and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(provenance, ensure_ascii=False) + "\n")
            for prompt in prompts:
                fh.write(json.dumps({"prompt": prompt}, ensure_ascii=False) + "\n")
        os.chmod(tmp, 0o644)  # readable by the container user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_dataset(
    dataset_cache_dir: Path,
    hf_cache_dir: Path,
    pin: DatasetPin = DatasetPin(),
    *,
    endpoint: str | None = None,
    token: str | None = None,
    offline: bool = False,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """The prepared cache file of `pin`: kept if its provenance matches, else downloaded, converted and written.

    Raises `HubFetchError` (repo, revision and fix in it) when it cannot be prepared.
    """
    target = dataset_cache_dir / pin.cache_file
    if is_prepared(dataset_cache_dir, pin):
        return target
    what = "missing" if not target.exists() else "not at the pinned revision"
    if offline:
        raise HubFetchError(
            f"the dataset cache file {target} is {what} ({pin.repo} revision {pin.revision[:12]}) "
            "and HF_HUB_OFFLINE is set",
            "run once on a connected host (unset HF_HUB_OFFLINE) and copy the dataset cache, "
            "or set dataset to a local JSONL file",
        )
    from huggingface_hub import hf_hub_download

    with hub_errors(pin.repo, pin.revision, what="dataset"):
        parquet = retrying(attempts, sleep).call(
            lambda: hf_hub_download(
                pin.repo,
                pin.file,
                repo_type="dataset",
                revision=pin.revision,
                cache_dir=str(hf_cache_dir),
                endpoint=endpoint,
                token=token,
            ),
            is_transient=is_transient_download_error,
            what=f"fetching {pin.file} of {pin.repo}",
        )
    prompts = parquet_prompts(Path(parquet))
    if not prompts:
        raise HubFetchError(
            f"{pin.file} of {pin.repo} (revision {pin.revision[:12]}) holds no prompts",
            "check the pinned revision of the dataset",
        )
    record = provenance_record(pin.repo, pin.revision, pin.file, sha256_file(Path(parquet)))
    write_cache_file(target, prompts, record)
    return target
