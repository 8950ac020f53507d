"""Backend sections: knobs specific to one inference backend.

A section left out (``None``) means "this backend with its defaults"; inside a
section every field defaults to ``None`` = "let the backend decide", so the
result records what the user actually asked for. Implementations live in
`llenergymeasure.harness.backends` and import their framework lazily.
"""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from llenergymeasure.schemas._base import ConfigModel, incompatible
from llenergymeasure.schemas.config.capabilities import (
    TENSORRT_QUANT_NEEDS_CALIBRATION,
    VLLM_LORA_RANKS,
    VLLM_QUANTIZATION_METHODS,
    VLLM_SPECULATIVE_MODEL_FREE,
    VLLM_SPECULATIVE_NEEDS_MODEL,
)
from llenergymeasure.schemas.config.text import check_path

#: upper bounds on counts in backend sections: far above any real use, low enough to catch a runaway value
MAX_BATCH = 65_536  # sequences
MAX_PARALLEL = 1024  # GPUs or stages
MAX_SECTION_TOKENS = 16_777_216  # tokens


class PyTorchConfig(ConfigModel):
    """HF transformers on PyTorch."""

    batch_size: PositiveInt | None = Field(
        None, le=MAX_BATCH, description="Prompts per generate() call (count); null = 1."
    )
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(
        None, description="Attention kernel passed to from_pretrained; null = transformers' default."
    )
    torch_compile: bool | None = Field(None, description="Wrap the model in torch.compile before warmup; null = off.")
    torch_compile_mode: Literal["default", "reduce-overhead", "max-autotune"] | None = Field(
        None, description="torch.compile mode; null = 'default'."
    )
    load_in_8bit: bool | None = Field(None, description="bitsandbytes 8-bit weights (needs bitsandbytes and a GPU).")
    load_in_4bit: bool | None = Field(None, description="bitsandbytes 4-bit weights (needs bitsandbytes and a GPU).")
    device_map: str | None = Field(
        None, description="from_pretrained device_map ('auto', 'cuda:0', ...); null = the experiment's first GPU."
    )
    use_cache: bool | None = Field(None, description="Use the KV cache during generation; null = true.")
    trust_remote_code: bool | None = Field(None, description="Allow model repos to run their own code; null = false.")

    @model_validator(mode="after")
    def _one_quantisation(self) -> PyTorchConfig:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are both true; fix: choose one")
        return self


class VLLMEngineConfig(ConfigModel):
    """vLLM ``LLM(...)`` engine arguments (checked against vLLM 0.12 and 0.33 ``EngineArgs``)."""

    tensor_parallel_size: PositiveInt | None = Field(
        None, le=MAX_PARALLEL, description="GPUs to shard each layer over (count)."
    )
    pipeline_parallel_size: PositiveInt | None = Field(None, le=MAX_PARALLEL, description="Pipeline stages (count).")
    gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0, description="Fraction of each GPU's memory vLLM may use; null = vLLM's default."
    )
    max_num_seqs: PositiveInt | None = Field(
        None, le=MAX_BATCH, description="Maximum sequences batched per step (count)."
    )
    max_num_batched_tokens: PositiveInt | None = Field(
        None, le=MAX_SECTION_TOKENS, description="Token budget per scheduler step (tokens)."
    )
    max_model_len: PositiveInt | None = Field(
        None, le=MAX_SECTION_TOKENS, description="Context length cap (tokens); null = the model's."
    )
    enforce_eager: bool | None = Field(None, description="Disable CUDA graphs.")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] | None = Field(
        None, description="KV cache storage type."
    )
    block_size: Literal[8, 16, 32, 64, 128] | None = Field(None, description="KV cache block size (tokens).")
    enable_prefix_caching: bool | None = Field(None, description="Reuse KV blocks across prompts sharing a prefix.")
    enable_chunked_prefill: bool | None = Field(None, description="Split long prefills across scheduler steps.")
    quantization: str | None = Field(
        None,
        description="vLLM quantization method (awq, gptq, fp8, compressed-tensors, ...); null = from the checkpoint.",
    )
    swap_space: float | None = Field(
        None,
        ge=0.0,
        le=4096.0,
        description="CPU swap space per GPU, in GiB. vLLM 0.12 (the image's default) takes it; vLLM >= 0.22 "
        "removed it and refuses the engine start when it is set.",
    )
    speculative_model: str | None = Field(None, description="Draft model (hub id or path) for speculative decoding.")
    speculative_method: Literal["draft_model", "eagle", "eagle3", "ngram", "suffix", "mtp"] | None = Field(
        None,
        description="Speculative decoding method; null with speculative_model = vLLM infers it from the draft model. "
        "ngram, suffix and mtp need no draft model.",
    )
    num_speculative_tokens: PositiveInt | None = Field(
        None, le=MAX_SECTION_TOKENS, description="Tokens proposed per speculative step."
    )
    max_lora_rank: PositiveInt | None = Field(
        None, description=f"Largest LoRA rank the engine reserves room for; one of {list(VLLM_LORA_RANKS)}."
    )

    @field_validator("speculative_model")
    @classmethod
    def _speculative_path(cls, v: str | None) -> str | None:
        return check_path(v, "speculative_model") if v is not None else None

    @field_validator("quantization")
    @classmethod
    def _known_quantization(cls, v: str | None) -> str | None:
        if v is not None and v not in VLLM_QUANTIZATION_METHODS:
            close = difflib.get_close_matches(v, sorted(VLLM_QUANTIZATION_METHODS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {sorted(VLLM_QUANTIZATION_METHODS)}"
            raise ValueError(f"unknown vLLM quantization method {v!r}; fix: {hint}")
        return v

    @field_validator("max_lora_rank")
    @classmethod
    def _lora_rank(cls, v: int | None) -> int | None:
        if v is not None and v not in VLLM_LORA_RANKS:
            raise ValueError(f"vLLM accepts max_lora_rank in {list(VLLM_LORA_RANKS)}, got {v}; fix: pick one of them")
        return v

    @model_validator(mode="after")
    def _speculative_pair(self) -> VLLMEngineConfig:
        method, model = self.speculative_method, self.speculative_model
        speculative = method is not None or model is not None
        if speculative and self.num_speculative_tokens is None:
            raise incompatible("speculative decoding needs num_speculative_tokens", "set num_speculative_tokens")
        if not speculative and self.num_speculative_tokens is not None:
            raise incompatible(
                "num_speculative_tokens is set without speculative_model or speculative_method",
                "set one of them or remove num_speculative_tokens",
            )
        if method in VLLM_SPECULATIVE_NEEDS_MODEL and model is None:
            raise incompatible(f"speculative_method {method} needs a draft model", "set speculative_model")
        if method in VLLM_SPECULATIVE_MODEL_FREE and model is not None:
            raise incompatible(f"speculative_method {method} takes no draft model", "remove speculative_model")
        return self


class VLLMSamplingConfig(ConfigModel):
    """vLLM ``SamplingParams`` beyond what `decoder` maps."""

    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="Presence penalty (unitless).")
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="Frequency penalty (unitless).")
    ignore_eos: bool | None = Field(None, description="Keep generating past EOS up to max_output_tokens.")


class VLLMConfig(ConfigModel):
    """vLLM offline engine."""

    engine: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig, description="Engine arguments.")
    sampling: VLLMSamplingConfig = Field(default_factory=VLLMSamplingConfig, description="Extra sampling arguments.")


#: TensorRT fields that shape the built engine (a prebuilt engine fixes them)
TENSORRT_BUILD_FIELDS: tuple[str, ...] = (
    "max_batch_size",
    "max_input_len",
    "max_seq_len",
    "max_num_tokens",
    "quantization",
    "kv_cache_quantization",
    "calibration_dataset",
)


class TensorRTConfig(ConfigModel):
    """TensorRT-LLM through its LLM API, TensorRT-engine flow (checked against TensorRT-LLM 1.2 ``TrtLlmArgs``).

    Engines are built before the measured window and cached by a hash of the
    build-affecting fields; ``engine_path`` uses a prebuilt engine instead.
    """

    max_batch_size: PositiveInt | None = Field(None, le=MAX_BATCH, description="Engine's maximum batch size (count).")
    tp_size: PositiveInt | None = Field(None, le=MAX_PARALLEL, description="Tensor-parallel GPUs (count).")
    pp_size: PositiveInt | None = Field(None, le=MAX_PARALLEL, description="Pipeline-parallel stages (count).")
    max_input_len: PositiveInt | None = Field(
        None,
        le=MAX_SECTION_TOKENS,
        description="Engine's maximum input length (tokens); null = the experiment's input length + 16.",
    )
    max_seq_len: PositiveInt | None = Field(
        None,
        le=MAX_SECTION_TOKENS,
        description="Engine's maximum input + output length (tokens); null = max_input_len + output length.",
    )
    max_num_tokens: PositiveInt | None = Field(
        None, le=MAX_SECTION_TOKENS, description="Engine's token budget per step (tokens)."
    )
    quantization: Literal["fp8", "int8_sq", "int4_awq", "w4a16", "w8a16", "nvfp4"] | None = Field(
        None, description="Quantisation applied at engine build time."
    )
    kv_cache_quantization: Literal["fp8", "int8"] | None = Field(
        None, description="KV cache quantisation built into the engine; null = the precision's dtype."
    )
    calibration_dataset: str | None = Field(
        None,
        description="Local path (or hub id) of the calibration data for quantisations that need it "
        "(fp8, int8_sq, int4_awq, nvfp4); null = TensorRT-LLM's default, which needs the dataset hub.",
    )
    kv_cache_free_gpu_memory_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="Fraction of free GPU memory given to the KV cache."
    )
    enable_kv_cache_reuse: bool | None = Field(
        None, description="Reuse KV cache blocks across requests sharing a prefix; null = TensorRT-LLM's default (on)."
    )
    enable_chunked_prefill: bool | None = Field(None, description="Split long prefills across steps; null = off.")
    engine_path: str | None = Field(
        None, description="Directory of a prebuilt engine to use instead of building one (host path)."
    )

    @field_validator("engine_path", "calibration_dataset")
    @classmethod
    def _paths(cls, v: str | None) -> str | None:
        return check_path(v, "the path") if v is not None else None

    @model_validator(mode="after")
    def _engine_limits(self) -> TensorRTConfig:
        if self.max_input_len is not None and self.max_seq_len is not None and self.max_input_len > self.max_seq_len:
            raise incompatible(
                f"max_input_len ({self.max_input_len}) is larger than max_seq_len ({self.max_seq_len})",
                "raise max_seq_len or lower max_input_len",
            )
        if self.engine_path is not None:
            fixed = [name for name in TENSORRT_BUILD_FIELDS if getattr(self, name) is not None]
            if fixed:
                raise incompatible(
                    f"engine_path is set, so {fixed} are fixed by that engine and cannot be chosen here",
                    "remove them, or remove engine_path to build an engine",
                )
        if self.calibration_dataset is not None and self.quantization not in TENSORRT_QUANT_NEEDS_CALIBRATION:
            raise incompatible(
                "calibration_dataset is only used by quantization fp8, int8_sq, int4_awq or nvfp4",
                "remove calibration_dataset or choose one of those quantizations",
            )
        return self
