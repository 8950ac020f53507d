"""Names that cross the host ↔ harness wall besides the job document: mount points and variables.

The job (``LLEM_EXPERIMENT``, `schemas.job`) carries the run; these are the other
facts both wings must agree on, defined here once and imported by both:

- where the docker runner mounts each input inside the container (the job's config
  copy is rewritten to these paths, so the harness never sees a host path);
- the variable naming the TensorRT-LLM engine cache, and that cache's default
  folder under the home directory (the host's default when it mounts it, the
  harness's default when nothing is set);
- the host's dataset cache folder (under the user cache directory).

Simulated GPUs have their own pair (`schemas.simulated_gpus`); results, errors and the
results directory are in `schemas.job`.
"""

from __future__ import annotations

from typing import Final

#: the host's HF hub cache, read-only (``HF_HUB_CACHE`` points there)
CONTAINER_HF_CACHE: Final = "/llem/hf-cache"
#: the host's dataset cache, read-only (``RunContext.dataset_cache_dir`` points there)
CONTAINER_DATASET_CACHE: Final = "/llem/datasets"
#: TensorRT-LLM engines built by earlier runs (read-write: a run that builds an engine publishes it there)
CONTAINER_TRT_ENGINE_CACHE: Final = "/llem/trt-engines"
#: a prebuilt TensorRT-LLM engine given by ``tensorrt.engine_path`` (read-only)
CONTAINER_ENGINE_DIR: Final = "/llem/engine"
#: local inputs, each under ``<dir>/<name>`` (read-only)
CONTAINER_INPUT_DIRS: Final[dict[str, str]] = {
    "model": "/llem/models",
    "dataset": "/llem/data",
    "adapter": "/llem/adapters",
}

#: the variable naming the TensorRT-LLM engine cache folder
TRT_ENGINE_CACHE_ENV_VAR: Final = "LLEM_TRT_ENGINE_CACHE"
#: the engine cache's default folder, relative to the home directory
TRT_ENGINE_CACHE_HOME_SUBDIR: Final = ".llenergymeasure/trt-engines"

#: application name of the user cache directory (platformdirs) holding the dataset cache
CACHE_APP_NAME: Final = "llenergymeasure"
#: the dataset cache folder inside that user cache directory
DATASET_CACHE_SUBDIR: Final = "datasets"
