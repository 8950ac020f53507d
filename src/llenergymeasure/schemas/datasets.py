"""The built-in AI Energy Score dataset: its pin and its cache file, shared by host and container.

The host (pre-flight) downloads the pinned parquet file once, converts it and
writes `AIENERGYSCORE_CACHE_FILE` into the host dataset cache; the container
reads that file from a read-only mount. Both wings read the pin from here, so
they can never disagree on which revision a result was measured on.

Cache file format (JSON lines): the first line is a provenance record whose keys
all start with ``_`` (`provenance_record`); every other line is ``{"prompt": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

#: dataset repository on the hub
AIENERGYSCORE_REPO = "AIEnergyScore/text_generation"
#: pinned commit of that repository
AIENERGYSCORE_REVISION = "2dc92b2ee2cd9776a51ccf08c6c2ab04138370c3"
#: the parquet file of prompts inside the repository
AIENERGYSCORE_FILE = "data/train-00000-of-00001.parquet"
#: name of the converted file in the dataset cache
AIENERGYSCORE_CACHE_FILE = "aienergyscore.jsonl"
#: parquet columns that may hold the prompt text, in order of preference
TEXT_COLUMNS = ("text", "prompt")


def provenance_record(repo: str, revision: str, file: str, sha256: str) -> dict[str, str]:
    """The first line of a converted cache file: where its prompts came from (`sha256` of the parquet, hex)."""
    return {
        "_repo": repo,
        "_revision": revision,
        "_file": file,
        "_sha256": sha256,
        "_license": "apache-2.0",
        "_description": "AI Energy Score text-generation prompts (WikiText, OSCAR, UltraChat)",
    }


def recorded_revision(provenance: Mapping[str, object]) -> str | None:
    """The revision a cache file records (``_revision``; ``_commit`` in files written before the host fetch)."""
    value = provenance.get("_revision", provenance.get("_commit"))
    return str(value) if value else None


def matches_pin(
    provenance: Mapping[str, object],
    repo: str = AIENERGYSCORE_REPO,
    revision: str = AIENERGYSCORE_REVISION,
    file: str = AIENERGYSCORE_FILE,
) -> bool:
    """True when a cache file's provenance is the pinned repo and revision (and file, when it records one).

    Files written before the host fetch record ``_provenance`` (the repo) and ``_commit`` and no file name;
    they match when repo and revision do.
    """
    recorded_repo = provenance.get("_repo", provenance.get("_provenance"))
    recorded_file = provenance.get("_file")
    return (
        recorded_repo == repo
        and recorded_revision(provenance) == revision
        and (recorded_file is None or recorded_file == file)
    )


def prompt_cache_text(prompts: Sequence[str], provenance: Mapping[str, object]) -> str:
    """A cache file's content: the provenance line, then one ``{"prompt": ...}`` line per prompt."""
    lines = [json.dumps(dict(provenance), ensure_ascii=False)]
    lines += [json.dumps({"prompt": p}, ensure_ascii=False) for p in prompts]
    return "\n".join(lines) + "\n"


def parquet_prompts(path: Path) -> list[str]:
    """The non-empty values of a parquet file's prompt column (the first of `TEXT_COLUMNS` it has).

    Raises `ValueError` naming the columns it has when none is a prompt column (each wing turns that
    into its own error). pyarrow is imported here, only when called.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for column in TEXT_COLUMNS:
        if column in table.column_names:
            return [str(v) for v in table.column(column).to_pylist() if v]
    raise ValueError(f"{path.name} has none of the prompt columns {list(TEXT_COLUMNS)} (it has {table.column_names})")
