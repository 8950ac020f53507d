"""Backend sections: knobs specific to one inference backend.

A section left out (``None``) means "this backend with its defaults"; inside a
section every field defaults to ``None`` = "let the backend decide", so the
result records what the user actually asked for. Implementations live in
`llenergymeasure.harness.backends` and import their framework lazily.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from llenergymeasure.schemas._base import StrictModel


class PyTorchConfig(StrictModel):
    """HF transformers on PyTorch."""

    batch_size: PositiveInt | None = Field(None, description="Prompts per generate() call (count); null = 1.")
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


class VLLMEngineConfig(StrictModel):
    """vLLM ``LLM(...)`` engine arguments."""

    tensor_parallel_size: PositiveInt | None = Field(None, description="GPUs to shard each layer over (count).")
    pipeline_parallel_size: PositiveInt | None = Field(None, description="Pipeline stages (count).")
    gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0, description="Fraction of each GPU's memory vLLM may use; null = 0.9."
    )
    max_num_seqs: PositiveInt | None = Field(None, description="Maximum sequences batched per step (count).")
    max_num_batched_tokens: PositiveInt | None = Field(None, description="Token budget per scheduler step (tokens).")
    max_model_len: PositiveInt | None = Field(None, description="Context length cap (tokens); null = the model's.")
    enforce_eager: bool | None = Field(None, description="Disable CUDA graphs.")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] | None = Field(
        None, description="KV cache storage type."
    )
    block_size: Literal[8, 16, 32, 64, 128] | None = Field(None, description="KV cache block size (tokens).")
    enable_prefix_caching: bool | None = Field(None, description="Reuse KV blocks across prompts sharing a prefix.")
    enable_chunked_prefill: bool | None = Field(None, description="Split long prefills across scheduler steps.")
    quantization: str | None = Field(None, description="vLLM quantization method (awq, gptq, fp8, ...).")
    swap_space: float | None = Field(None, ge=0.0, description="CPU swap space per GPU, in GiB.")
    speculative_model: str | None = Field(None, description="Draft model (hub id or path) for speculative decoding.")
    num_speculative_tokens: PositiveInt | None = Field(None, description="Tokens proposed per speculative step.")
    max_lora_rank: PositiveInt | None = Field(None, description="Largest LoRA rank the engine reserves room for.")

    @model_validator(mode="after")
    def _speculative_pair(self) -> VLLMEngineConfig:
        if (self.speculative_model is None) != (self.num_speculative_tokens is None):
            raise ValueError(
                "speculative_model and num_speculative_tokens go together; fix: set both or neither"
            )
        return self


class VLLMSamplingConfig(StrictModel):
    """vLLM ``SamplingParams`` beyond what `decoder` maps."""

    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="Presence penalty (unitless).")
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="Frequency penalty (unitless).")
    ignore_eos: bool | None = Field(None, description="Keep generating past EOS up to max_output_tokens.")


class VLLMConfig(StrictModel):
    """vLLM offline engine."""

    engine: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig, description="Engine arguments.")
    sampling: VLLMSamplingConfig = Field(default_factory=VLLMSamplingConfig, description="Extra sampling arguments.")


class TensorRTConfig(StrictModel):
    """TensorRT-LLM through its LLM API."""

    max_batch_size: PositiveInt | None = Field(None, description="Engine's maximum batch size (count).")
    tp_size: PositiveInt | None = Field(None, description="Tensor-parallel GPUs (count).")
    pp_size: PositiveInt | None = Field(None, description="Pipeline-parallel stages (count).")
    max_input_len: PositiveInt | None = Field(None, description="Engine's maximum input length (tokens).")
    max_seq_len: PositiveInt | None = Field(None, description="Engine's maximum input + output length (tokens).")
    max_num_tokens: PositiveInt | None = Field(None, description="Engine's token budget per step (tokens).")
    quantization: Literal["fp8", "int8_sq", "int4_awq", "w4a16", "w8a16", "nvfp4"] | None = Field(
        None, description="Quantisation applied at engine build time."
    )
    kv_cache_free_gpu_memory_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="Fraction of free GPU memory given to the KV cache."
    )
    engine_path: str | None = Field(
        None, description="Directory of a prebuilt engine to use instead of building one (host path)."
    )
