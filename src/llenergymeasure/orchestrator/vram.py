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


@lru_cache(maxsize=64)
def read_model_config(model: str) -> dict[str, Any] | None:
    """``config.json`` of a local model directory or of a hub model already in the HF cache; else None."""
    local = Path(model).expanduser()
    candidate: Path | None = local / "config.json" if local.is_dir() else None
    if candidate is None and "/" in model and not local.exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
        except Exception:  # any failure just means "unknown"
            return None
        candidate = Path(cached) if isinstance(cached, str) else None
    if candidate is None or not candidate.is_file():
        return None
    try:
        data = json.loads(candidate.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def count_params(cfg: dict[str, Any]) -> int | None:
    """Approximate parameter count of a decoder-only transformer from its config."""
    try:
        hidden = int(cfg.get("hidden_size") or cfg["n_embd"])
        layers = int(cfg.get("num_hidden_layers") or cfg["n_layer"])
        vocab = int(cfg["vocab_size"])
    except (KeyError, TypeError, ValueError):
        return None
    heads = int(cfg.get("num_attention_heads") or cfg.get("n_head") or 1)
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    inner = cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * hidden
    gated = "intermediate_size" in cfg  # llama-style SwiGLU: gate, up, down
    attn = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    mlp = hidden * int(inner) * (3 if gated else 2)
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (attn + mlp + 4 * hidden)


def estimate(cfg: dict[str, Any], precision: str, batch_size: int, seq_len: int) -> VramEstimate | None:
    params = count_params(cfg)
    if params is None:
        return None
    nbytes = BYTES_PER_PARAM.get(precision, 2)
    hidden = int(cfg.get("hidden_size") or cfg.get("n_embd") or 0)
    heads = int(cfg.get("num_attention_heads") or cfg.get("n_head") or 1)
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or (hidden // heads if heads else 0))
    layers = int(cfg.get("num_hidden_layers") or cfg.get("n_layer") or 0)
    kv = 2 * layers * kv_heads * head_dim * nbytes * batch_size * seq_len
    return VramEstimate(params=params, weights_gib=params * nbytes / GIB, kv_cache_gib=kv / GIB)
