"""Parameter counts for FLOPs: logical counts of packed weights, and counts from config.json by hand."""

from __future__ import annotations

import torch

from llenergymeasure.harness.params import counts_from_config, counts_from_model


class _QuantState:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = torch.Size(shape)


class _Packed4bit(torch.nn.Parameter):
    """Like bitsandbytes' Params4bit: two 4-bit values per stored byte, the real shape in quant_state."""

    quant_state: _QuantState


class _TinyLM(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(100, 8)
        self.proj = torch.nn.Linear(8, 8, bias=False)
        packed = _Packed4bit(torch.zeros(32, 1, dtype=torch.uint8), requires_grad=False)  # 64 values in 32 bytes
        packed.quant_state = _QuantState((8, 8))
        self.proj.weight = packed
        self.mlp = torch.nn.Linear(8, 16, bias=True)
        self.lm_head = torch.nn.Linear(8, 100, bias=False)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.lm_head


def test_four_bit_packed_weights_count_as_their_logical_shape() -> None:
    counts = counts_from_model(_TinyLM())
    # body: proj 8 × 8 = 64 logical (32 stored) + mlp 8 × 16 + 16 = 144 → 208; lm_head 100 × 8 = 800
    assert (counts.body, counts.output_projection) == (208, 800)


def test_tied_output_projection_is_still_counted_for_flops() -> None:
    model = _TinyLM()
    model.lm_head.weight = model.embed.weight
    counts = counts_from_model(model)
    assert (counts.body, counts.output_projection) == (208, 800)


def test_counts_from_a_llama_config_by_hand() -> None:
    # Llama-3.2-1B shape: hidden 2048, 16 layers, 32 heads of 64, 8 KV heads, MLP 8192, vocab 128,256
    cfg = {
        "model_type": "llama",
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "intermediate_size": 8192,
        "vocab_size": 128_256,
    }
    counts = counts_from_config(cfg)
    assert counts is not None
    # per layer: q, o 2 × 2048 × 2048 = 8,388,608; k, v 2 × 2048 × 512 = 2,097,152;
    # MLP 3 × 2048 × 8192 = 50,331,648; norms 4,096 → 60,821,504 × 16 = 973,144,064; + final norm 2,048
    assert counts.body == 973_146_112
    assert counts.output_projection == 128_256 * 2048  # 262,668,288: 21 % of all matmul params
    assert counts.source == "config.json"


def test_counts_from_a_gpt2_config_use_two_mlp_matrices() -> None:
    cfg = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    counts = counts_from_config(cfg)
    assert counts is not None
    # per layer: attention 4 × 768² = 2,359,296; MLP 2 × 768 × 3072 = 4,718,592; norms 1,536 → 7,079,424 × 12
    assert counts.body == 7_079_424 * 12 + 768
    assert counts_from_config({"model_type": "llama"}) is None
