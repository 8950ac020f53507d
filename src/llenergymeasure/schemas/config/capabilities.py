"""Capability tables: what each inference backend supports.

One module, read by the cross-validators of `ExperimentConfig`, so that an
impossible combination (vLLM in fp32, min_p on a backend without it, ...) fails
when the config is loaded — never inside a container an hour into a study.

Sources (checked against each framework's public API):
- transformers ``GenerationConfig``: temperature, top_k, top_p, min_p,
  repetition_penalty, min_new_tokens, do_sample; dtypes float32/float16/bfloat16.
- vLLM ``SamplingParams``: temperature, top_k, top_p, min_p,
  repetition_penalty, min_tokens; greedy = temperature 0. ``dtype`` accepts
  float32, but vLLM's fused attention kernels do not run in fp32 for most
  models, so fp32 is refused here.
- TensorRT-LLM ``SamplingParams`` (LLM API): temperature, top_k, top_p, min_p,
  repetition_penalty, min_tokens; engines are built in fp16/bf16 (+ quantised).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Backend = Literal["pytorch", "vllm", "tensorrt"]
Precision = Literal["fp32", "fp16", "bf16"]
DecodingMode = Literal["greedy", "sampling"]

BACKENDS: Final[tuple[str, ...]] = get_args(Backend)
PRECISIONS: Final[tuple[str, ...]] = get_args(Precision)

#: precisions each backend can run the model in
PRECISION_SUPPORT: Final[dict[str, frozenset[str]]] = {
    "pytorch": frozenset({"fp32", "fp16", "bf16"}),
    "vllm": frozenset({"fp16", "bf16"}),
    "tensorrt": frozenset({"fp16", "bf16"}),
}

#: decoding modes each backend supports
DECODING_SUPPORT: Final[dict[str, frozenset[str]]] = {
    "pytorch": frozenset({"greedy", "sampling"}),
    "vllm": frozenset({"greedy", "sampling"}),
    "tensorrt": frozenset({"greedy", "sampling"}),
}

#: `decoder` fields each backend maps onto its own sampling parameters
DECODER_FIELD_SUPPORT: Final[dict[str, frozenset[str]]] = {
    "pytorch": frozenset(
        {"temperature", "do_sample", "top_k", "top_p", "min_p", "repetition_penalty", "min_new_tokens"}
    ),
    "vllm": frozenset(
        {"temperature", "do_sample", "top_k", "top_p", "min_p", "repetition_penalty", "min_new_tokens"}
    ),
    "tensorrt": frozenset(
        {"temperature", "do_sample", "top_k", "top_p", "min_p", "repetition_penalty", "min_new_tokens"}
    ),
}

#: whether LoRA adapters can be applied by the backend
LORA_SUPPORT: Final[dict[str, bool]] = {"pytorch": True, "vllm": True, "tensorrt": True}

#: the precision a backend falls back to on a host without a GPU (only pytorch runs on CPU)
CPU_CAPABLE: Final[frozenset[str]] = frozenset({"pytorch"})


def supported_precisions(backend: str) -> list[str]:
    """Precisions of `backend`, in the canonical order fp32, fp16, bf16."""
    return [p for p in PRECISIONS if p in PRECISION_SUPPORT[backend]]
