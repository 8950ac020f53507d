"""Capability tables: what each inference backend supports.

One module, read by the cross-validators of `ExperimentConfig`, so that an
impossible combination (min_p on a backend without it, a vLLM temperature above
2, an int4 TensorRT engine in fp32, ...) fails when the config is loaded — never
inside a container an hour into a study.

Versions the tables were checked against. The backend images are built on vLLM 0.33.0
and TensorRT-LLM 1.2.1 (the image catalog, ``llenergymeasure.images.BASES``); the
tables hold for those and for vLLM 0.12.0, and say where the two vLLM releases differ.

- **transformers** ``GenerationConfig``: temperature, top_k, top_p, min_p,
  repetition_penalty, min_new_tokens, do_sample; dtypes float32/float16/bfloat16.
- **vLLM 0.33.0 and 0.12.0** (read from both wheels: ``vllm/sampling_params.py``,
  ``vllm/engine/arg_utils.py``, ``vllm/config/{cache,lora,speculative}.py``,
  ``vllm/model_executor/layers/quantization/__init__.py``,
  ``vllm/platforms/cuda.py``):
  ``SamplingParams`` has temperature, top_k, top_p, min_p, repetition_penalty,
  min_tokens; greedy = temperature 0; ``_verify_args`` rejects temperature > 2
  (since 0.27) and min_tokens > max_tokens. The CUDA platform lists float32 among its
  supported dtypes and the Triton/Flex attention backends run float32, so fp32 is
  allowed (older tables refused it; vLLM's V0 fused kernels did not run fp32).
  Quantised checkpoints run fp16/bf16 activations only (every quantisation
  config's ``get_supported_act_dtypes`` omits float32 except torchao, bitsandbytes
  and gguf).
- **TensorRT-LLM 1.2** (LLM API, TensorRT-engine flow; read from the repository
  source: ``tensorrt_llm/sampling_params.py``, ``tensorrt_llm/llmapi/llm_args.py``,
  ``tensorrt_llm/quantization/mode.py``): ``SamplingParams`` has temperature,
  top_k (0 = all logits), top_p, min_p, repetition_penalty, min_tokens; greedy =
  temperature 0. Models build in FP32, FP16 and BF16 ("Numerical Precision"
  reference); quantised engines (SmoothQuant, AWQ, weight-only, FP8, NVFP4) use
  fp16/bf16 activations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, get_args

if TYPE_CHECKING:
    from llenergymeasure.schemas.config.experiment import ExperimentConfig

Backend = Literal["pytorch", "vllm", "tensorrt"]
Precision = Literal["fp32", "fp16", "bf16"]
DecodingMode = Literal["greedy", "sampling"]

BACKENDS: Final[tuple[str, ...]] = get_args(Backend)
PRECISIONS: Final[tuple[str, ...]] = get_args(Precision)

#: precisions each backend can run the model in
PRECISION_SUPPORT: Final[dict[str, frozenset[str]]] = {
    "pytorch": frozenset({"fp32", "fp16", "bf16"}),
    "vllm": frozenset({"fp32", "fp16", "bf16"}),
    "tensorrt": frozenset({"fp32", "fp16", "bf16"}),
}

#: `precision` → the dtype string each framework's constructor takes
FRAMEWORK_DTYPE: Final[dict[str, str]] = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

#: decoding modes each backend supports
DECODING_SUPPORT: Final[dict[str, frozenset[str]]] = {
    "pytorch": frozenset({"greedy", "sampling"}),
    "vllm": frozenset({"greedy", "sampling"}),
    "tensorrt": frozenset({"greedy", "sampling"}),
}

_ALL_DECODER_FIELDS: Final[frozenset[str]] = frozenset(
    {"temperature", "do_sample", "top_k", "top_p", "min_p", "repetition_penalty", "min_new_tokens"}
)

#: `decoder` fields each backend maps onto its own sampling parameters
DECODER_FIELD_SUPPORT: Final[dict[str, frozenset[str]]] = {
    "pytorch": _ALL_DECODER_FIELDS,
    "vllm": _ALL_DECODER_FIELDS,
    "tensorrt": _ALL_DECODER_FIELDS,
}

#: inclusive (low, high) bounds a backend puts on a decoder value when sampling (None = unbounded);
#: vLLM's SamplingParams._verify_args rejects temperature outside [0, 2] since 0.27 (0.12 only checks >= 0);
#: the bound applies to every version so a study stays valid when the image's vLLM is upgraded
DECODER_VALUE_LIMITS: Final[dict[str, dict[str, tuple[float | None, float | None]]]] = {
    "pytorch": {},
    "vllm": {"temperature": (0.0, 2.0)},
    "tensorrt": {},
}

#: whether LoRA adapters can be applied by the backend
LORA_SUPPORT: Final[dict[str, bool]] = {"pytorch": True, "vllm": True, "tensorrt": True}

#: backends that can merge a LoRA adapter into the base weights (vLLM and TensorRT-LLM apply adapters per request)
LORA_MERGE_SUPPORT: Final[dict[str, bool]] = {"pytorch": True, "vllm": False, "tensorrt": False}

#: the precision a backend falls back to on a host without a GPU (only pytorch runs on CPU)
CPU_CAPABLE: Final[frozenset[str]] = frozenset({"pytorch"})

#: backends whose worker processes exchange tensors through shared memory (/dev/shm, NCCL/MPI IPC)
MULTI_PROCESS_BACKENDS: Final[frozenset[str]] = frozenset({"vllm", "tensorrt"})

#: vLLM ``QuantizationMethods`` (``vllm.model_executor.layers.quantization``): the union of 0.12 and 0.33
#: (the image's base), so a name valid in either passes; a name the installed vLLM lacks fails at engine start
VLLM_QUANTIZATION_METHODS: Final[frozenset[str]] = frozenset(
    {
        # in both
        "awq", "fp8", "fbgemm_fp8", "fp_quant", "modelopt", "modelopt_fp4", "gptq_marlin", "awq_marlin", "gptq",
        "compressed-tensors", "experts_int8", "quark", "moe_wna16", "torchao", "inc", "mxfp4",
        # 0.12 only
        "deepspeedfp", "tpu_int8", "ptpc_fp8", "bitblas", "gguf", "gptq_marlin_24", "gptq_bitblas", "bitsandbytes",
        "hqq", "ipex", "auto-round", "rtn", "petit_nvfp4", "cpu_gptq", "cpu_awq",
        # 0.33 only
        "auto_awq", "modelopt_mxfp8", "modelopt_mixed", "auto_gptq", "humming", "gpt_oss_mxfp4", "deepseek_v4_fp8",
        "online", "fp8_per_tensor", "fp8_per_block", "fp8_per_channel", "int8_per_channel_weight_only",
        "nvfp4_per_token", "mxfp8",
    }
)  # fmt: skip

#: vLLM quantisation methods whose kernels accept float32 activations (``get_supported_act_dtypes``)
VLLM_FP32_QUANTIZATION: Final[frozenset[str]] = frozenset({"torchao", "bitsandbytes", "gguf"})

#: vLLM ``MaxLoRARanks`` (the same in 0.12 and 0.33)
VLLM_LORA_RANKS: Final[tuple[int, ...]] = (1, 8, 16, 32, 64, 128, 256, 320, 512)

#: vLLM speculative methods (in both 0.12 and 0.33) that need a draft model, and those that must not have one
VLLM_SPECULATIVE_NEEDS_MODEL: Final[frozenset[str]] = frozenset({"draft_model", "eagle", "eagle3"})
VLLM_SPECULATIVE_MODEL_FREE: Final[frozenset[str]] = frozenset({"ngram", "suffix", "mtp"})

#: our TensorRT `quantization` names → TensorRT-LLM ``QuantAlgo`` member names (``quantization/mode.py``)
TENSORRT_QUANT_ALGO: Final[dict[str, str]] = {
    "fp8": "FP8",
    "int8_sq": "W8A8_SQ_PER_CHANNEL",
    "int4_awq": "W4A16_AWQ",
    "w4a16": "W4A16",
    "w8a16": "W8A16",
    "nvfp4": "NVFP4",
}

#: quantisations that need calibration data at engine build time (ModelOpt); weight-only ones do not
TENSORRT_QUANT_NEEDS_CALIBRATION: Final[frozenset[str]] = frozenset({"fp8", "int8_sq", "int4_awq", "nvfp4"})

#: our TensorRT `kv_cache_quantization` names → ``QuantAlgo`` (``KV_CACHE_QUANT_ALGO_LIST`` holds FP8, INT8, NVFP4)
TENSORRT_KV_CACHE_QUANT_ALGO: Final[dict[str, str]] = {"fp8": "FP8", "int8": "INT8"}


#: attention kernels and the precisions they run (flash-attn 2 kernels are fp16/bf16 only)
ATTENTION_PRECISIONS: Final[dict[str, frozenset[str]]] = {
    "eager": frozenset({"fp32", "fp16", "bf16"}),
    "sdpa": frozenset({"fp32", "fp16", "bf16"}),
    "flash_attention_2": frozenset({"fp16", "bf16"}),
}


def supported_precisions(backend: str) -> list[str]:
    """Precisions of `backend`, in the canonical order fp32, fp16, bf16."""
    return [p for p in PRECISIONS if p in PRECISION_SUPPORT[backend]]


def prompt_token_budget(config: ExperimentConfig) -> tuple[int, int]:
    """(input tokens, output tokens) a prompt of `config` may need: the synthetic sizes, else the caps."""
    dataset = config.dataset
    if not isinstance(dataset, str):
        return dataset.input_tokens, dataset.output_tokens
    return config.max_input_tokens, config.max_output_tokens


def backend_rule_violations(config: ExperimentConfig) -> list[tuple[str, str]]:
    """``(message, fix)`` for every backend-specific rule `config` breaks, in a stable order.

    Called by `ExperimentConfig`'s cross-validator after the generic checks
    (precision, sections, decoder fields); each pair becomes an
    *incompatible combination*, which a sweep skips and reports.
    """
    backend = config.backend
    found: list[tuple[str, str]] = []
    if config.decoder.decoding_mode == "sampling":
        for name, (low, high) in DECODER_VALUE_LIMITS[backend].items():
            value = getattr(config.decoder, name)
            if (low is not None and value < low) or (high is not None and value > high):
                found.append(
                    (f"decoder.{name}={value} is outside the range [{low}, {high}] backend {backend} accepts",
                     f"set decoder.{name} within [{low}, {high}]")
                )  # fmt: skip
    if config.lora is not None and config.lora.merge and not LORA_MERGE_SUPPORT[backend]:
        found.append(
            (f"backend {backend} applies LoRA adapters per request and cannot merge them", "set lora.merge: false")
        )
    if backend == "pytorch":
        found.extend(_pytorch_rules(config))
    elif backend == "vllm":
        found.extend(_vllm_rules(config))
    elif backend == "tensorrt":
        found.extend(_tensorrt_rules(config))
    return found


def _pytorch_rules(config: ExperimentConfig) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    attention = config.pytorch.attn_implementation if config.pytorch is not None else None
    if attention is not None and config.precision not in ATTENTION_PRECISIONS[attention]:
        allowed = " or ".join(p for p in PRECISIONS if p in ATTENTION_PRECISIONS[attention])
        found.append(
            (f"pytorch.attn_implementation {attention} runs {allowed} only, not {config.precision}",
             f"set precision: {allowed.split(' or ')[-1]}, or pytorch.attn_implementation: sdpa")
        )  # fmt: skip
    return found


def required_capabilities(config: ExperimentConfig) -> dict[str, str]:
    """Optional features `config` needs from the image it runs in: capability → the config field asking for it.

    Capability names are the modules the harness imports (``llenergymeasure.images``
    maps them to the project extra and the images that carry them).
    """
    needs: dict[str, str] = {}
    if config.energy.backend in ("zeus", "codecarbon"):
        needs[config.energy.backend] = f"energy.backend: {config.energy.backend}"
    if config.backend != "pytorch":
        return needs  # vLLM and TensorRT-LLM apply LoRA and quantisation natively
    if config.lora is not None:
        needs["peft"] = "lora"
    section = config.pytorch
    if section is not None:
        if section.load_in_4bit or section.load_in_8bit:
            needs["bitsandbytes"] = "pytorch.load_in_4bit" if section.load_in_4bit else "pytorch.load_in_8bit"
        if section.attn_implementation == "flash_attention_2":
            needs["flash_attn"] = "pytorch.attn_implementation: flash_attention_2"
    return needs


def _vllm_rules(config: ExperimentConfig) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    input_tokens, output_tokens = prompt_token_budget(config)
    engine = config.vllm.engine if config.vllm is not None else None
    quantization = engine.quantization if engine is not None else None
    if quantization is not None and config.precision == "fp32" and quantization not in VLLM_FP32_QUANTIZATION:
        found.append(
            (f"vLLM quantization {quantization} runs fp16/bf16 activations only, not fp32",
             "set precision: fp16 or bf16, or remove vllm.engine.quantization")
        )  # fmt: skip
    if engine is not None and engine.max_model_len is not None and engine.max_model_len < input_tokens + output_tokens:
        found.append(
            (f"vllm.engine.max_model_len ({engine.max_model_len}) is shorter than a prompt of {input_tokens} tokens "
             f"plus {output_tokens} output tokens",
             f"raise max_model_len to at least {input_tokens + output_tokens} or lower the token limits")
        )  # fmt: skip
    min_new = config.decoder.min_new_tokens
    if min_new is not None and min_new > output_tokens:
        found.append(
            (f"decoder.min_new_tokens ({min_new}) exceeds the {output_tokens} output tokens allowed; vLLM rejects it",
             "lower decoder.min_new_tokens or raise max_output_tokens")
        )  # fmt: skip
    return found


def _tensorrt_rules(config: ExperimentConfig) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    section = config.tensorrt
    if section is None:
        return found
    input_tokens, output_tokens = prompt_token_budget(config)
    if section.quantization is not None and config.precision == "fp32":
        found.append(
            (f"TensorRT quantization {section.quantization} builds fp16/bf16 engines, not fp32",
             "set precision: fp16 or bf16, or remove tensorrt.quantization")
        )  # fmt: skip
    if section.max_input_len is not None and section.max_input_len < input_tokens:
        found.append(
            (f"tensorrt.max_input_len ({section.max_input_len}) is shorter than prompts of {input_tokens} tokens",
             f"raise max_input_len to at least {input_tokens} or lower max_input_tokens")
        )  # fmt: skip
    if section.max_seq_len is not None and section.max_seq_len < input_tokens + output_tokens:
        found.append(
            (f"tensorrt.max_seq_len ({section.max_seq_len}) is shorter than {input_tokens} input plus "
             f"{output_tokens} output tokens",
             f"raise max_seq_len to at least {input_tokens + output_tokens} or lower the token limits")
        )  # fmt: skip
    return found
