"""Cache of built TensorRT-LLM engines, keyed by a hash of what shapes the engine.

Layout: ``<root>/<hash>/`` holds the engine as ``LLM.save()`` wrote it (``config.json``,
``rank*.engine``) plus ``llem-engine.json``, the inputs the hash was computed over.
``<root>`` is ``$LLEM_TRT_ENGINE_CACHE`` when set — the docker runner mounts the host's
``~/.llenergymeasure/trt-engines`` read-write into the container and points the variable
at it — else ``~/.llenergymeasure/trt-engines`` (a local run on the host).

The hash (`engine_hash`) is SHA-256[:16] over canonical JSON of:

- the model (hub id or path, as configured),
- the resolved build settings (`tensorrt_mapping.build_settings`: dtype, tp, pp, max batch
  size, max input/sequence length, max tokens, quantisation, KV-cache quantisation,
  calibration data, LoRA adapter),
- ``passthrough_kwargs`` (they reach the LLM constructor and may change the build),
- the TensorRT-LLM version and the GPU identity (name + compute capability): an engine is
  tied to both and does not load elsewhere.

It deliberately leaves out what does not change the engine: decoding, dataset, number of
prompts, KV-cache memory fraction and block reuse (runtime settings). A checkpoint that
changes on disk under the same path keeps its hash: delete ``<root>/<hash>`` to rebuild.

A build is published atomically: it is written to a temporary sibling directory and
renamed into place, so a crash mid-build never leaves an entry that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llenergymeasure.harness.backends.tensorrt_mapping import build_settings
from llenergymeasure.schemas._base import canonical_json, sha256_16
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.mounts import TRT_ENGINE_CACHE_ENV_VAR, TRT_ENGINE_CACHE_HOME_SUBDIR

logger = logging.getLogger(__name__)

ENGINE_CACHE_ENV_VAR = TRT_ENGINE_CACHE_ENV_VAR
DEFAULT_ENGINE_CACHE_SUBDIR = Path(TRT_ENGINE_CACHE_HOME_SUBDIR)
MARKER_FILE = "llem-engine.json"
#: what ``LLM.save()`` always writes into an engine directory
ENGINE_CONFIG_FILE = "config.json"


def engine_cache_root(environ: Mapping[str, str], home: Path) -> Path:
    """Where engines are cached: ``$LLEM_TRT_ENGINE_CACHE``, else ``<home>/.llenergymeasure/trt-engines``."""
    configured = environ.get(ENGINE_CACHE_ENV_VAR)
    return Path(configured) if configured else home / DEFAULT_ENGINE_CACHE_SUBDIR


def engine_key_inputs(config: ExperimentConfig, *, tensorrt_llm_version: str, gpu: str) -> dict[str, Any]:
    """The inputs of the engine hash (stored next to the engine for inspection)."""
    return {
        "model": config.model,
        "build": build_settings(config),
        "passthrough_kwargs": config.passthrough_kwargs or {},
        "tensorrt_llm_version": tensorrt_llm_version,
        "gpu": gpu,
    }


def engine_hash(inputs: Mapping[str, Any]) -> str:
    """SHA-256[:16] of the canonical JSON of `inputs`."""
    return sha256_16(dict(inputs))


class EngineCache:
    """Engines on disk under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, key: str) -> Path:
        """Directory of the engine with hash `key` (it may not exist)."""
        return self.root / key

    def lookup(self, key: str) -> Path | None:
        """The engine directory for `key` if a complete build is there, else None."""
        path = self.entry(key)
        if (path / ENGINE_CONFIG_FILE).is_file() and (path / MARKER_FILE).is_file():
            return path
        return None

    def publish(self, key: str, inputs: Mapping[str, Any], write_engine: Callable[[Path], None]) -> Path:
        """Have `write_engine` fill a temporary directory, record `inputs`, then rename it to ``entry(key)``.

        If another process published the same key meanwhile, its engine is kept and ours discarded.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.entry(key)
        staging = self.root / f".{key}.partial-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        try:
            write_engine(staging)
            if not (staging / ENGINE_CONFIG_FILE).is_file():
                raise FileNotFoundError(f"the engine writer left no {ENGINE_CONFIG_FILE} in {staging}")
            marker = {"hash": key, "inputs": dict(inputs), "created_at": datetime.now(timezone.utc).isoformat()}
            (staging / MARKER_FILE).write_text(canonical_json(marker) + "\n", encoding="utf-8")
            if final.exists() and self.lookup(key) is None:
                logger.warning("removing incomplete engine directory %s", final)
                shutil.rmtree(final)
            try:
                os.replace(staging, final)
            except OSError:
                if self.lookup(key) is None:
                    raise
                logger.info("engine %s was published by another run meanwhile; keeping that one", key)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return final

    def read_inputs(self, key: str) -> dict[str, Any] | None:
        """The hash inputs recorded with the engine `key`, if any."""
        marker = self.entry(key) / MARKER_FILE
        if not marker.is_file():
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
        inputs = data.get("inputs")
        return inputs if isinstance(inputs, dict) else None
