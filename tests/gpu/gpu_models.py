"""A tiny random-weight Llama and its tokenizer, written to disk for the GPU tests (no model hub needed).

Sizes are chosen for the kernels of both frameworks: head_dim 64 (FlashAttention and
TensorRT-LLM's attention plugin support it), 4 heads so tensor parallel 2 splits them
evenly, vocab 1024. The weights are random, so text is garbage; the tests force
fixed output lengths (min = max new tokens) and check the accounting, not quality.
"""

from __future__ import annotations

from pathlib import Path

WORDS = [f"w{i}" for i in range(900)]


def make_tiny_llama(path: Path) -> Path:
    """Save a 2-layer Llama (hidden 256, 4 heads) and a word-level tokenizer under `path`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    config = LlamaConfig(
        vocab_size=1024,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def prompt_text(i: int, words: int) -> str:
    """A prompt of `words` vocabulary words (one token each under the tiny tokenizer)."""
    return " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(words))


def nvidia_gpu_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return 0
