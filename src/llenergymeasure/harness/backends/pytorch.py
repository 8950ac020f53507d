"""HF transformers on PyTorch: `PyTorchBackend`.

torch and transformers are imported inside the methods that need them, never at
module import. transformers 5.x API (``dtype=``, not ``torch_dtype=``).

Decisions:

- **Precision**: fp32/fp16/bf16 → torch dtype on CUDA; a run without GPUs uses
  fp32 whatever was asked (CPU half precision is slow and numerically
  different), and says so in the reproducibility notes. ``passthrough_kwargs``
  go to ``from_pretrained`` last and may override the dtype: `effective_precision`
  reports the dtype the model actually loaded in.
- **Placement**: ``pytorch.device_map`` when set; ``"auto"`` over the set's GPUs
  (``max_memory`` limited to them) when the set has several; else the model is
  moved to the set's first GPU. bitsandbytes needs a device map, so quantised
  loads use ``{"": first GPU}``.
- **Batching**: consecutive prompts with the same token limits, ``batch_size`` at
  a time (default 1), left-padded by hand from pre-tokenised ids (tokenisation
  and truncation happen in `prepare`, before the window).
- **Counting**: `llenergymeasure.harness.tokens` over the attention mask and the
  generated ids, up to and including the first id ``generate`` stops on — the
  generation config's EOS id(s) only (`stop_token_ids`), not the tokenizer's:
  tokens after a tokenizer-only EOS were generated and are counted. Rows that
  did not stop ran to the batch's full width (no padding to strip). Latency is per ``generate``
  call (batch granularity; with batch size 1 it is the request's latency).
- **Seeds**: ``torch.manual_seed(random_seed)`` at load and again by `reseed`
  right before the window, so sampling in the window does not depend on how
  long warmup ran.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from llenergymeasure.errors import BackendError, PreFlightFailure
from llenergymeasure.harness.backends.base import (
    GenerationBatch,
    InferenceBackend,
    ProgressCallback,
    Prompt,
    RequestOutput,
    precision_of,
)
from llenergymeasure.harness.params import ParameterCounts, counts_from_model
from llenergymeasure.harness.tokens import (
    count_input_tokens,
    count_output_tokens_batch,
    count_text_tokens,
    truncate_text,
)
from llenergymeasure.schemas.config.backends import PyTorchConfig
from llenergymeasure.schemas.results import DeviceState, MemoryStats

logger = logging.getLogger(__name__)

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
_MIB = 2**20


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class PyTorchBackend(InferenceBackend[PyTorchConfig]):
    """transformers ``AutoModelForCausalLM`` + ``generate``."""

    name = "pytorch"

    def __init__(self, config: Any, section: PyTorchConfig | None, device_ids: Sequence[int]) -> None:
        super().__init__(config, section, device_ids)
        self.options = section or PyTorchConfig()
        self.model: Any = None
        self.tokenizer: Any = None
        self._torch: Any = None
        self._pad_id: int = 0
        self._notes: list[str] = []
        self._context_up = False
        self._loaded_precision: str | None = None

    # ---- checks and set-up, before the window ---------------------------------------------------------------

    def preflight(self) -> list[PreFlightFailure]:
        failures = [
            PreFlightFailure("backend", f"{m} is not installed", f"pip install 'llenergymeasure[pytorch]' ({m})")
            for m in ("torch", "transformers")
            if not _installed(m)
        ]
        opts = self.options
        if (opts.load_in_4bit or opts.load_in_8bit) and not _installed("bitsandbytes"):
            failures.append(PreFlightFailure("backend", "bitsandbytes is not installed", "pip install bitsandbytes"))
        if (opts.load_in_4bit or opts.load_in_8bit) and not self.device_ids:
            failures.append(PreFlightFailure("backend", "bitsandbytes quantisation needs a GPU", "remove load_in_*bit"))
        if self.config.lora is not None and not _installed("peft"):
            failures.append(PreFlightFailure("backend", "a lora section needs peft", "pip install peft"))
        if opts.attn_implementation == "flash_attention_2" and not _installed("flash_attn"):
            failures.append(
                PreFlightFailure("backend", "flash_attention_2 needs flash-attn", "pip install flash-attn or use sdpa")
            )
        if (
            self.device_ids
            and (opts.device_map is not None or len(self.device_ids) > 1)
            and not _installed("accelerate")
        ):
            failures.append(PreFlightFailure("backend", "device_map needs accelerate", "pip install accelerate"))
        if self.device_ids and not failures:
            import torch

            visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
            missing = [i for i in self.device_ids if i >= visible]
            if missing:
                failures.append(
                    PreFlightFailure(
                        "gpu",
                        f"torch sees {visible} CUDA device(s); GPUs {missing} of the set are not visible",
                        "check the container's GPU pinning / CUDA_VISIBLE_DEVICES and the CUDA build of torch",
                    )
                )
        return failures

    def prepare_device(self) -> None:
        import torch

        self._torch = torch
        for i in self.device_ids:
            torch.zeros(1, device=f"cuda:{i}")
            torch.cuda.synchronize(i)
        self._context_up = bool(self.device_ids)

    @property
    def device_state(self) -> DeviceState:
        return "cuda_context" if self._context_up else super().device_state

    def load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise BackendError(f"cannot import the pytorch stack: {e}", backend="pytorch") from e
        self._torch = torch
        torch.manual_seed(self.config.random_seed)
        trust = bool(self.options.trust_remote_code)
        kwargs = self._from_pretrained_kwargs(torch)
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(
                self.config.model, trust_remote_code=trust, revision=self.config.model_revision
            )
            model: Any = AutoModelForCausalLM.from_pretrained(self.config.model, **kwargs)
        except (OSError, ValueError, ImportError) as e:
            raise BackendError(
                f"cannot load {self.config.model!r}: {e}",
                backend="pytorch",
                fix="check the model id/path, that the weights are in the cache, and HF_TOKEN for gated models",
            ) from e
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
            self._notes.append("the tokenizer has no pad token: EOS is used for padding")
        if self.device_ids and "device_map" not in kwargs:
            model.to(f"cuda:{self.device_ids[0]}")
        if self.config.lora is not None:
            model = self._apply_lora(model)
        model.eval()
        if self.options.torch_compile:
            model.forward = torch.compile(model.forward, mode=self.options.torch_compile_mode or "default")
        self.model, self.tokenizer = model, tokenizer
        self._loaded_precision = precision_of(getattr(model, "dtype", None))
        asked = "fp32" if not self.device_ids else self.config.precision
        if self._loaded_precision is not None and self._loaded_precision != asked:
            self._notes.append(f"the model loaded in {self._loaded_precision} (passthrough_kwargs), not {asked}")
        self._pad_id = int(tokenizer.pad_token_id)
        for i in self.device_ids:
            torch.cuda.reset_peak_memory_stats(i)

    def _from_pretrained_kwargs(self, torch: Any) -> dict[str, Any]:
        opts = self.options
        if self.device_ids:
            dtype = getattr(torch, _DTYPES[self.config.precision])
        else:
            dtype = torch.float32
            if self.config.precision != "fp32":
                self._notes.append(f"no GPU: ran on CPU in fp32 (config asked {self.config.precision})")
        kwargs: dict[str, Any] = {"dtype": dtype}
        if self.config.model_revision is not None:
            kwargs["revision"] = self.config.model_revision
        if opts.attn_implementation:
            kwargs["attn_implementation"] = opts.attn_implementation
        if opts.trust_remote_code:
            kwargs["trust_remote_code"] = True
        if opts.load_in_4bit or opts.load_in_8bit:
            from transformers import BitsAndBytesConfig

            bnb_config: Any = BitsAndBytesConfig
            kwargs["quantization_config"] = bnb_config(
                load_in_4bit=bool(opts.load_in_4bit), load_in_8bit=bool(opts.load_in_8bit)
            )
        if self.device_ids:
            if opts.device_map is not None:
                kwargs["device_map"] = opts.device_map
            elif len(self.device_ids) > 1:
                kwargs["device_map"] = "auto"
                kwargs["max_memory"] = {i: torch.cuda.get_device_properties(i).total_memory for i in self.device_ids}
            elif "quantization_config" in kwargs:
                kwargs["device_map"] = {"": self.device_ids[0]}
        elif opts.device_map is not None:
            self._notes.append(f"no GPU: pytorch.device_map={opts.device_map!r} ignored")
        kwargs.update(self.config.passthrough_kwargs or {})
        return kwargs

    def _apply_lora(self, model: Any) -> Any:
        lora = self.config.lora
        assert lora is not None
        try:
            from peft import PeftModel
        except ImportError as e:
            raise BackendError("a lora section needs peft", backend="pytorch", fix="pip install peft") from e
        try:
            model = PeftModel.from_pretrained(model, lora.adapter)
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load LoRA adapter {lora.adapter!r}: {e}", backend="pytorch") from e
        return model.merge_and_unload() if lora.merge else model

    def prepare(self, prompts: Sequence[Prompt]) -> list[Prompt]:
        """Tokenise (special tokens included) and cut each prompt to its `max_input_tokens`."""
        tok = self._require_loaded()[1]
        encoded = tok([p.text for p in prompts], add_special_tokens=True)["input_ids"]
        out = []
        for p, ids in zip(prompts, encoded, strict=True):
            if p.max_input_tokens is not None:
                ids = ids[: p.max_input_tokens]
            out.append(replace(p, token_ids=tuple(int(i) for i in ids)))
        return out

    def reseed(self, seed: int) -> None:
        if self._torch is not None:
            self._torch.manual_seed(seed)

    # ---- the hot path ---------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], on_progress: ProgressCallback | None = None) -> GenerationBatch:
        model = self._require_loaded()[0]
        torch = self._torch
        if any(p.token_ids is None for p in prompts):
            prompts = self.prepare(prompts)
        batch_size = self.preferred_batch_size
        outputs: list[RequestOutput] = []
        device = model.device
        stop_ids = self.stop_token_ids()
        for batch in _batches(prompts, batch_size):
            rows = [list(p.token_ids or ()) for p in batch]
            width = max(len(r) for r in rows)
            input_ids = [[self._pad_id] * (width - len(r)) + r for r in rows]
            mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
            ids_t = torch.tensor(input_ids, dtype=torch.long, device=device)
            mask_t = torch.tensor(mask, dtype=torch.long, device=device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                sequences = model.generate(input_ids=ids_t, attention_mask=mask_t, **self.generation_kwargs(batch[0]))
            self.synchronize()
            latency_s = time.perf_counter() - t0
            generated = sequences[:, width:].tolist()
            n_out = count_output_tokens_batch(generated, stop_ids)
            n_in = count_input_tokens(mask)
            outputs.extend(RequestOutput(i, o, latency_s) for i, o in zip(n_in, n_out, strict=True))
            if on_progress is not None:
                on_progress(len(outputs), len(prompts))
        return GenerationBatch(outputs, "request" if batch_size == 1 else "batch")

    def stop_token_ids(self) -> frozenset[int]:
        """The ids ``generate`` stops on: the generation config's EOS id(s) (not the tokenizer's)."""
        model = self._require_loaded()[0]
        return frozenset(_as_ids(model.generation_config.eos_token_id))

    def generation_kwargs(self, prompt: Prompt) -> dict[str, Any]:
        """The ``generate`` keyword arguments for `prompt`'s limits and the decoder config."""
        dec = self.config.decoder
        kwargs: dict[str, Any] = {
            "max_new_tokens": prompt.max_new_tokens,
            "pad_token_id": self._pad_id,
            "do_sample": dec.decoding_mode == "sampling",
        }
        if prompt.min_new_tokens is not None:
            kwargs["min_new_tokens"] = prompt.min_new_tokens
        if dec.decoding_mode == "sampling":
            kwargs.update(temperature=dec.temperature, top_k=dec.top_k, top_p=dec.top_p)
            if dec.min_p is not None:
                kwargs["min_p"] = dec.min_p
        if dec.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = dec.repetition_penalty
        if self.options.use_cache is not None:
            kwargs["use_cache"] = self.options.use_cache
        return kwargs

    # ---- the rest of the interface --------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return count_text_tokens(self._require_loaded()[1], text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return truncate_text(self._require_loaded()[1], text, max_tokens)

    def synchronize(self) -> None:
        if self.device_ids and self._torch is not None:
            for i in self.device_ids:
                self._torch.cuda.synchronize(i)

    def memory_stats(self) -> MemoryStats | None:
        if not self.device_ids or self._torch is None:
            return MemoryStats(device="cpu")
        cuda = self._torch.cuda
        return MemoryStats(
            device="cuda",
            peak_allocated_mb=sum(cuda.max_memory_allocated(i) for i in self.device_ids) / _MIB,
            peak_reserved_mb=sum(cuda.max_memory_reserved(i) for i in self.device_ids) / _MIB,
            device_total_mb=sum(cuda.get_device_properties(i).total_memory for i in self.device_ids) / _MIB,
        )

    def parameter_counts(self) -> ParameterCounts | None:
        return counts_from_model(self.model) if self.model is not None else None

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in ("torch", "transformers", "accelerate", "peft", "bitsandbytes", "safetensors", "tokenizers"):
            try:
                out[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return out

    @property
    def preferred_batch_size(self) -> int:
        return self.options.batch_size or 1

    @property
    def effective_precision(self) -> str:
        if self.device_ids and (self.options.load_in_4bit or self.options.load_in_8bit):
            bits = 4 if self.options.load_in_4bit else 8
            return f"int{bits} (bitsandbytes; compute {self._loaded_precision or self.config.precision})"
        return self._loaded_precision or super().effective_precision

    def reproducibility_notes(self) -> list[str]:
        return list(self._notes)

    def close(self) -> None:
        self.model = None
        if self.device_ids and self._torch is not None:
            self._torch.cuda.empty_cache()

    def _require_loaded(self) -> tuple[Any, Any]:
        if self.model is None or self.tokenizer is None:
            raise BackendError("the model is not loaded (call load() first)", backend="pytorch")
        return self.model, self.tokenizer


def _as_ids(value: int | list[int] | None) -> set[int]:
    if value is None:
        return set()
    return {int(v) for v in value} if isinstance(value, (list, tuple)) else {int(value)}


def _batches(prompts: Sequence[Prompt], size: int) -> list[list[Prompt]]:
    """Consecutive runs of at most `size` prompts sharing the same new-token limits."""
    out: list[list[Prompt]] = []
    for p in prompts:
        last = out[-1] if out else None
        if (
            last is not None
            and len(last) < size
            and (last[0].max_new_tokens, last[0].min_new_tokens) == (p.max_new_tokens, p.min_new_tokens)
        ):
            last.append(p)
        else:
            out.append([p])
    return out
