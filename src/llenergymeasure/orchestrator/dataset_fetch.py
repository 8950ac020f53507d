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

import json
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
    matches_pin,
    parquet_prompts,
    prompt_cache_text,
    provenance_record,
)
from llenergymeasure.util.files import atomic_write_text, sha256_file


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


def _parquet_prompts(parquet: Path) -> list[str]:
    try:
        return parquet_prompts(parquet)
    except ValueError as e:
        raise HubFetchError(
            str(e), "the pinned dataset file is not the AI Energy Score prompt set; check the pin"
        ) from e


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
    prompts = _parquet_prompts(Path(parquet))
    if not prompts:
        raise HubFetchError(
            f"{pin.file} of {pin.repo} (revision {pin.revision[:12]}) holds no prompts",
            "check the pinned revision of the dataset",
        )
    record = provenance_record(pin.repo, pin.revision, pin.file, sha256_file(Path(parquet)))
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, prompt_cache_text(prompts, record), mode=0o644)  # the container user reads it
    return target
