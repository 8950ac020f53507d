"""Parameter counts for the FLOPs estimate: from a loaded model, or from a model's ``config.json``.

The estimate (`metrics.flops_estimate`) needs two numbers:

- **body**: the parameters every token passes through — everything except the
  input embedding (a table lookup, not a matmul) and the output projection;
- **output projection** (``lm_head``, vocab × hidden): it runs once per
  *generated* token — ``generate`` in transformers (``logits_to_keep=1``), vLLM
  and TensorRT-LLM compute logits only for the position that samples the next
  token, not for every prompt position. It is counted even when its weight is
  tied to the input embedding: the matmul runs either way.

Counts are *logical*: a bitsandbytes 4-bit weight stores two values per byte,
so its ``numel()`` is half the weight's; its ``quant_state.shape`` is the real
shape. vLLM and TensorRT-LLM hold the model in other processes, so their counts
come from ``config.json`` (`counts_from_config`): attention (q, k, v with
grouped KV heads, o), the MLP (gated — three matrices — except for the
families listed in `UNGATED_MLP`, two), norms, and for mixture-of-experts the
experts a token is routed to (``num_experts_per_tok``) plus the router. Biases
are left out of the config count (a fraction of a percent).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: model families whose MLP is up + down (two matrices) rather than gate + up + down
UNGATED_MLP = frozenset(
    {"gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "phi", "gpt_bigcode", "starcoder2", "mpt", "codegen"}
)


@dataclass(frozen=True)
class ParameterCounts:
    """Logical parameter counts for the FLOPs estimate."""

    body: int
    output_projection: int
    source: str  # "model" (counted on the loaded modules) | "config.json"


def logical_numel(p: Any) -> int:
    """Values a parameter stands for: ``quant_state.shape`` for packed 4-bit weights, else ``numel()``."""
    shape = getattr(getattr(p, "quant_state", None), "shape", None)
    return int(math.prod(shape)) if shape is not None else int(p.numel())


def counts_from_model(model: Any) -> ParameterCounts:
    """Body and output-projection parameters of a loaded transformers model (tied weights counted once in body)."""
    embeddings = model.get_input_embeddings()
    head = model.get_output_embeddings()
    excluded = {id(p) for m in (embeddings, head) if m is not None for p in m.parameters()}
    seen: set[int] = set()
    body = 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in excluded:
            seen.add(id(p))
            body += logical_numel(p)
    head_params = sum(logical_numel(p) for p in head.parameters()) if head is not None else 0
    return ParameterCounts(body=body, output_projection=head_params, source="model")


def _get(cfg: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if cfg.get(name) is not None:
            return cfg[name]
    return default


def counts_from_config(cfg: Mapping[str, Any]) -> ParameterCounts | None:
    """Counts from a decoder-only model's ``config.json`` (None when it lacks the sizes)."""
    if isinstance(cfg.get("text_config"), Mapping):  # multimodal wrappers keep the language model here
        cfg = cfg["text_config"]
    hidden = _get(cfg, "hidden_size", "n_embd", "d_model")
    layers = _get(cfg, "num_hidden_layers", "n_layer", "num_layers")
    heads = _get(cfg, "num_attention_heads", "n_head")
    vocab = _get(cfg, "vocab_size")
    if not all(isinstance(v, int) and v > 0 for v in (hidden, layers, heads, vocab)):
        return None
    kv_heads = int(_get(cfg, "num_key_value_heads", "num_kv_heads", default=heads))
    head_dim = int(_get(cfg, "head_dim", default=hidden // heads))
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2  # q, o + k, v
    model_type = str(cfg.get("model_type", ""))
    matrices = 2 if model_type in UNGATED_MLP else 3
    experts = _get(cfg, "num_local_experts", "num_experts", "n_routed_experts")
    if isinstance(experts, int) and experts > 1:
        active = int(_get(cfg, "num_experts_per_tok", "moe_topk", default=1))
        expert_size = int(_get(cfg, "moe_intermediate_size", "intermediate_size"))
        mlp = active * matrices * hidden * expert_size + hidden * experts  # routed experts + router
    else:
        intermediate = int(_get(cfg, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden))
        mlp = matrices * hidden * intermediate
    norms = 2 * hidden  # two norms per layer (weights)
    body = layers * (attention + mlp + norms) + hidden  # + the final norm
    return ParameterCounts(body=body, output_projection=vocab * hidden, source="config.json")


def counts_from_model_dir(model_dir: Path | None) -> ParameterCounts | None:
    """`counts_from_config` on ``<model_dir>/config.json``; None when it is missing or unreadable."""
    if model_dir is None:
        return None
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return counts_from_config(cfg) if isinstance(cfg, dict) else None
