"""Build a tiny random-weight Llama and a tokenizer trained on the spot, saved for ``from_pretrained(path)``.

For tests, demos and overhead benchmarks on machines without a model hub. The
tokenizer is a byte-level BPE (any Unicode text encodes; nothing is unknown)
trained with the `tokenizers` library on a small built-in corpus, with
``<pad>``/``<s>``/``</s>`` special tokens and BOS added to every encoded text.
Weights are random (seeded): the model generates nonsense at realistic cost.

Needs transformers, tokenizers and torch (imported inside `build_tiny_llama`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAD, BOS, EOS = "<pad>", "<s>", "</s>"

_CORPUS = (
    "The energy efficiency of language model inference is measured in joules per output token.",
    "A power timeline records instantaneous power, temperature and clocks every hundred milliseconds.",
    "The idle baseline is measured before the model loads, with the device context up and nothing running.",
    "Warmup runs full-length prompts until latency is stable and the GPU is warm.",
    "Throughput is the number of output tokens divided by the duration of the measured window.",
    "Du Fu's work is notable above all for its range; critics used the term complete symphony.",
    "Explain the difference between a counter delta and an integral of power samples over time.",
    "Write a short story about a lighthouse keeper who counts ships, waves and stars at night.",
    "The quick brown fox jumps over the lazy dog while the clock ticks and the fan spins.",
    "Numbers like 0 1 2 3 4 5 6 7 8 9 10 100 1000 and symbols such as % $ # @ ! ? ( ) [ ] appear in text.",
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the random Llama. The defaults give ~82 k non-embedding parameters."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    vocab_size: int = 1000
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = False
    seed: int = 0


def train_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` with pad/bos/eos, BOS prepended to every text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS) * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    fast: Any = PreTrainedTokenizerFast  # transformers' stubs mark the constructor untyped
    return fast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD)


def build_tiny_llama(outdir: str | Path, spec: TinyModelSpec | None = None) -> Path:
    """Write a random-weight Llama + its tokenizer into `outdir` (created) and return the directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = spec or TinyModelSpec()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(spec.vocab_size)
    tokenizer.save_pretrained(out)
    config = LlamaConfig(
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        vocab_size=len(tokenizer),
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    return out
