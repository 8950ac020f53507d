"""Names on disk: the study directory, run directories, experiment ids (docs/study-directory.md).

```
<results>/<name>_<UTC timestamp>/                 study_id = this directory's name
  manifest.json  study.yaml  study_result.json
  <idx>_c<cycle>_<model-slug>_<backend>_<hash8>/  one run: result.json timeseries.parquet harness.log [error.json]
  .attempts/<run dir name>/attempt_<k>/           files of earlier failed attempts of that run (resume)
```
A study directory is never overwritten: a colliding name gets ``_1``, ``_2``, ...
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.util.clock import utc_now
from llenergymeasure.util.files import make_unique_directory

MANIFEST_FILE = "manifest.json"
STUDY_YAML_FILE = "study.yaml"
STUDY_RESULT_FILE = "study_result.json"
ATTEMPTS_DIR = ".attempts"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"

_SLUG_BAD = re.compile(r"[^a-z0-9]+")


def slug(text: str, max_len: int = 40) -> str:
    """Lower-case, ``[a-z0-9-]`` only, at most `max_len` characters (never empty)."""
    out = _SLUG_BAD.sub("-", text.lower()).strip("-")[:max_len].strip("-")
    return out or "x"


def model_slug(model: str) -> str:
    """The last path component of a hub id or a local path, slugged."""
    return slug(model.rstrip("/").split("/")[-1])


def experiment_id(index: int, config: ExperimentConfig) -> str:
    """Identifier of an experiment within its study: ``<idx>-<hash8>`` (stable across resumes)."""
    return f"{index:03d}-{config.measurement_config_hash()[:8]}"


def run_dir_name(index: int, cycle: int, config: ExperimentConfig) -> str:
    """``<idx>_c<cycle>_<model-slug>_<backend>_<hash8>``."""
    return f"{index:03d}_c{cycle}_{model_slug(config.model)}_{config.backend}_{config.measurement_config_hash()[:8]}"


def create_study_dir(results_dir: Path, name: str, now: datetime | None = None) -> Path:
    """Create ``<results>/<name>_<UTC timestamp>`` (``_1``, ``_2``... on collision) and return it.

    ``mkdir`` without ``exist_ok`` is the collision test, so two processes starting
    in the same second never share a directory.
    """
    stamp = (now or utc_now()).astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)
    base = f"{slug(name, 60)}_{stamp}"
    created = make_unique_directory(results_dir, base)
    if created is not None:
        return created
    raise FileExistsError(f"no free study directory name for {base} in {results_dir}")


def set_aside_previous_attempt(study_dir: Path, run_dir: Path) -> Path | None:
    """Move the files of an earlier attempt of this run to ``.attempts/<run>/attempt_<k>``; return where.

    A re-run starts in an empty run directory, so a stale ``error.json`` or a half
    written file from a killed container can never be mistaken for this attempt's.
    """
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return None
    parent = study_dir / ATTEMPTS_DIR / run_dir.name
    parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while (parent / f"attempt_{k}").exists():
        k += 1
    target = parent / f"attempt_{k}"
    run_dir.rename(target)
    run_dir.mkdir()
    return target
