"""Where a model's weights are, and how much memory they will take — without loading them.

The parameter count comes from the safetensors headers (an 8-byte length and a
JSON table of tensor shapes at the start of each file), so the estimate costs a
few kilobytes of reading, not gigabytes.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

from llenergymeasure.schemas.config.experiment import looks_like_path

#: bytes per parameter for each precision / quantisation
BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
#: multiplier on the weights for activations, KV cache and allocator slack (a deliberately rough margin)
RUNTIME_OVERHEAD = 1.2


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def locate_model(model: str, revision: str | None = None) -> tuple[Path | None, str | None]:
    """(local directory holding config.json or None, problem or None); a hub id at `revision` (None = main).

    ``(None, None)`` means a hub id that is not cached yet but may be downloaded
    (hub reachable is not checked here; the load phase reports a download failure).
    """
    path = Path(model).expanduser()
    if path.exists():
        if (path / "config.json").is_file():
            return path, None
        return None, f"{path} exists but has no config.json"
    if looks_like_path(model):
        return None, f"model path {model} does not exist"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "config.json", revision=revision)
    if isinstance(cached, str):
        return Path(cached).parent, None
    if hub_offline():
        at = f" at revision {revision}" if revision else ""
        return None, f"{model}{at} is not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    return None, None


def snapshot_commit(model_dir: Path | None) -> str | None:
    """The commit hash of a hub cache snapshot directory (``.../snapshots/<commit>``); None for any other directory."""
    if model_dir is None or model_dir.parent.name != "snapshots":
        return None
    name = model_dir.name
    return name if len(name) == 40 and all(c in "0123456789abcdef" for c in name) else None


def safetensors_param_count(model_dir: Path) -> int | None:
    """Parameters stored in the directory's ``*.safetensors`` files; None when there are none or they are unreadable."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    try:
        for f in files:
            with f.open("rb") as fh:
                (length,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(length))
            for name, info in header.items():
                if name != "__metadata__":
                    total += math.prod(info["shape"])
    except (OSError, ValueError, KeyError, struct.error):
        return None
    return total


def estimate_memory_mb(params: int, precision: str) -> float:
    """Rough device memory for `params` at `precision` (``fp16``, ``int4``...), MiB, overhead included."""
    return params * BYTES_PER_PARAM[precision] * RUNTIME_OVERHEAD / 2**20
