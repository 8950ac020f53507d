"""Offline VRAM estimate from a model's ``config.json`` (no weights, no network).

weights = parameters × bytes per parameter (fp32 4, fp16/bf16 2); KV cache =
2 (K and V) × layers × kv_heads × head_dim × bytes × batch × (input + output
tokens). Parameters are counted from the architecture fields common to decoder
transformers (embeddings, attention with grouped KV heads, gated or plain MLP,
untied LM head). An estimate: activations and framework overhead are not
included, so leave headroom.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2}
GIB = 1024**3


@dataclass(frozen=True)
class VramEstimate:
    params: int
    weights_gib: float
    kv_cache_gib: float

    @property
    def total_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib


#: largest config.json read for the estimate (bytes)
MAX_MODEL_CONFIG_BYTES = 16 * 1024 * 1024


@lru_cache(maxsize=64)
def read_model_config(model: str) -> dict[str, Any] | None:
    """``config.json`` of a local model directory or of a hub model already in the HF cache; else None."""
    try:
        local = Path(model).expanduser()
        candidate: Path | None = local / "config.json" if local.is_dir() else None
        if candidate is None and "/" in model and not local.exists():
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
            candidate = Path(cached) if isinstance(cached, str) else None
        if candidate is None:
            return None
        from llenergymeasure.orchestrator.config_file import read_config_bytes

        data = json.loads(read_config_bytes(candidate, max_bytes=MAX_MODEL_CONFIG_BYTES, what="config.json"))
    except Exception:  # any failure (no such user, odd path, hub error, bad JSON, FIFO) just means "unknown"
        return None
    return data if isinstance(data, dict) else None


def _int(cfg: dict[str, Any], *keys: str, default: int | None = None) -> int | None:
    """The first of `keys` set to a positive integer (bools and other types ignored), else `default`."""
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 40:
            return value
    return default


def count_params(cfg: dict[str, Any]) -> int | None:
    """Approximate parameter count of a decoder-only transformer from its config (None if it lacks the sizes)."""
    hidden = _int(cfg, "hidden_size", "n_embd")
    layers = _int(cfg, "num_hidden_layers", "n_layer")
    vocab = _int(cfg, "vocab_size")
    if hidden is None or layers is None or vocab is None:
        return None
    heads = _int(cfg, "num_attention_heads", "n_head", default=1) or 1
    kv_heads = _int(cfg, "num_key_value_heads", default=heads) or heads
    head_dim = _int(cfg, "head_dim", default=max(hidden // heads, 1)) or 1
    inner = _int(cfg, "intermediate_size", "n_inner", default=4 * hidden) or 4 * hidden
    gated = "intermediate_size" in cfg  # llama-style SwiGLU: gate, up, down
    attn = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    mlp = hidden * inner * (3 if gated else 2)
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (attn + mlp + 4 * hidden)


def estimate(cfg: dict[str, Any], precision: str, batch_size: int, seq_len: int) -> VramEstimate | None:
    params = count_params(cfg)
    if params is None:
        return None
    nbytes = BYTES_PER_PARAM.get(precision, 2)
    hidden = _int(cfg, "hidden_size", "n_embd", default=0) or 0
    heads = _int(cfg, "num_attention_heads", "n_head", default=1) or 1
    kv_heads = _int(cfg, "num_key_value_heads", default=heads) or heads
    head_dim = _int(cfg, "head_dim", default=hidden // heads) or 0
    layers = _int(cfg, "num_hidden_layers", "n_layer", default=0) or 0
    kv = 2 * layers * kv_heads * head_dim * nbytes * batch_size * seq_len
    return VramEstimate(params=params, weights_gib=params * nbytes / GIB, kv_cache_gib=kv / GIB)
