"""vLLM backend: the offline ``vllm.LLM`` engine behind `InferenceBackend`.

Targets **vLLM 0.33.0** (the image's base), checked against **0.12.0** (both
wheels read; see `vllm_mapping` for the exact files and the config → argument mapping). vLLM is imported in `load`, never
at module import, through `load_vllm` — the one line where the framework enters,
and the seam tests replace with a fake `VLLMApi`.

Measurement decisions:

- `load` starts the whole engine (weights, KV cache profiling, CUDA graph capture,
  worker processes for tensor/pipeline parallel) — all before the window.
- `generate` submits the *whole* prompt list in one ``llm.generate`` call, so the
  engine's continuous batching decides the batch shape, as in serving. The call
  returns when every request has finished: the last sampled token was copied to
  the host, so no device work of the window is left queued and `synchronize` has
  nothing to wait for (the work runs in vLLM's engine-core process, which a
  ``torch.cuda.synchronize`` here could not reach anyway).
- Token counts, latency, TTFT and ITL come from vLLM's request outputs
  (`vllm_mapping.batch_from_vllm`); without per-request metrics the latency
  granularity falls back to ``batch`` and the result says so.
- `prepare` tokenises and truncates every prompt before the window (special tokens
  included, cut to ``max_input_tokens``) and `generate` passes the token ids, so no
  tokenisation runs inside the window and ``input_tokens`` is exactly what was cut.
- `reseed`, called right before the window, also empties vLLM's prefix cache
  (``LLM.reset_prefix_cache``): warmup prompts must not be served from the cache
  in the window. Prefix reuse *among* the window's prompts stays, as configured
  (vLLM enables prefix caching by default).
- `preferred_batch_size` is the number of prompts the window submits at once,
  capped by ``max_num_seqs`` when set, so warmup runs at the window's concurrency.
- `prepare_device` brings a CUDA context up on every device of the set in a
  helper process (`context.CudaContextHolder`) for the idle baseline, and
  `release_device` ends it before the engine starts: vLLM's worker processes own
  the window's contexts, and a context in this process would make vLLM fall back
  to ``spawn`` and hold device memory its profiler counts as foreign.
- Progress is reported once the call returns (vLLM's offline API has no
  per-request callback other than its tqdm hook, which we keep off).
- Peak memory is not reported: the model lives in another process, so this
  process's allocator statistics would read zero; NVML's memory readings in the
  power timeline cover it.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llenergymeasure.errors import BackendError, PreFlightFailure
from llenergymeasure.harness.backends.base import (
    GenerationBatch,
    InferenceBackend,
    ProgressCallback,
    Prompt,
    tokenize_prompts,
)
from llenergymeasure.harness.backends.context import CudaContextHolder, HelperHeldContexts, Spawner, spawn
from llenergymeasure.harness.backends.vllm_mapping import (
    batch_from_vllm,
    cached_prompt_tokens,
    engine_kwargs,
    lora_request_kwargs,
    sampling_kwargs,
    section_of,
)
from llenergymeasure.harness.params import ParameterCounts, counts_from_model_dir
from llenergymeasure.harness.tokens import count_text_tokens, truncate_text
from llenergymeasure.harness.weights import locate_model
from llenergymeasure.schemas.config.backends import VLLMConfig
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import CacheReuse, DeviceState

logger = logging.getLogger(__name__)

INSTALL_FIX = "run in the llenergymeasure/vllm image, or pip install 'llenergymeasure[vllm]' on a CUDA host"


@dataclass(frozen=True)
class VLLMApi:
    """The parts of the ``vllm`` package the backend uses (the thin adapter tests fake)."""

    llm_cls: Callable[..., Any]
    sampling_params_cls: Callable[..., Any]
    lora_request_cls: Callable[..., Any]
    version: str


def load_vllm() -> VLLMApi:
    """Import vLLM (the only place it is imported)."""
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as e:
        raise BackendError(f"vLLM is not installed: {e}", backend="vllm", fix=INSTALL_FIX) from e
    return VLLMApi(
        llm_cls=vllm.LLM,
        sampling_params_cls=vllm.SamplingParams,
        lora_request_cls=LoRARequest,
        version=str(getattr(vllm, "__version__", "unknown")),
    )


class VLLMBackend(HelperHeldContexts, InferenceBackend[VLLMConfig]):
    """vLLM's offline engine, one ``generate`` call per prompt set."""

    name = "vllm"

    def __init__(
        self,
        config: ExperimentConfig,
        section: VLLMConfig | None,
        device_ids: Sequence[int],
        *,
        api_loader: Callable[[], VLLMApi] = load_vllm,
        clock: Callable[[], float] = time.perf_counter,
        spawner: Spawner = spawn,
    ) -> None:
        super().__init__(config, section, device_ids)
        self._api_loader = api_loader
        self._clock = clock
        self._context = CudaContextHolder(self.device_ids, spawner)
        self._device_state: DeviceState = InferenceBackend.device_state.fget(self)  # type: ignore[attr-defined]
        self._prefix_cache_emptied = False
        self._api: VLLMApi | None = None
        self._llm: Any = None
        self._tokenizer: Any = None
        self._lora_request: Any = None
        #: prompt tokens the prefix cache served in the last `generate` call (count)
        self.last_cached_prompt_tokens = 0
        self._notes: list[str] = []

    def load(self) -> None:
        """Start the engine: weights, KV cache, CUDA graphs, parallel workers."""
        self._context.release()
        if not self.device_ids:
            raise BackendError("vLLM needs an NVIDIA GPU and none was given", backend="vllm", fix=INSTALL_FIX)
        api = self._api_loader()
        kwargs = engine_kwargs(self.config)
        logger.info("starting vLLM %s engine: %s", api.version, {k: v for k, v in kwargs.items() if k != "model"})
        try:
            self._llm = api.llm_cls(**kwargs)
            self._tokenizer = self._llm.get_tokenizer()
            lora = lora_request_kwargs(self.config)
            self._lora_request = api.lora_request_cls(**lora) if lora is not None else None
        except Exception as e:  # vLLM raises ValueError, RuntimeError, torch OOM, ...
            raise BackendError(
                f"vLLM engine failed to start for {self.config.model}: {type(e).__name__}: {e}",
                backend="vllm",
                fix="check the vllm section (memory utilization, max_model_len, parallel sizes) and the model path",
            ) from e
        self._api = api
        self._notes = [
            f"vLLM {api.version}: all prompts submitted in one generate call; continuous batching decides the batches",
            f"vLLM engine arguments: {_describe(kwargs)}",
            "vLLM prefix cache emptied right before the measured window (warmup prompts are never served from it)",
        ]

    def generate(self, prompts: Sequence[Prompt], on_progress: ProgressCallback | None = None) -> GenerationBatch:
        """All `prompts` in one ``llm.generate`` call; exact tokens and per-request timings from vLLM."""
        llm, api = self._require_loaded()
        params = [api.sampling_params_cls(**sampling_kwargs(self.config, p)) for p in prompts]
        started = self._clock()
        try:
            outputs = llm.generate(
                [_vllm_input(p) for p in prompts], params, use_tqdm=False, lora_request=self._lora_request
            )
        except Exception as e:
            raise BackendError(f"vLLM generation failed: {type(e).__name__}: {e}", backend="vllm") from e
        window_s = self._clock() - started
        if len(outputs) != len(prompts):
            raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts", backend="vllm")
        self.last_cached_prompt_tokens = cached_prompt_tokens(outputs)
        batch = batch_from_vllm(outputs, window_s)
        if batch.granularity == "batch":
            logger.info("vLLM returned no per-request metrics: latency is reported per batch")
        if self.last_cached_prompt_tokens:
            logger.info("prefix cache served %d prompt tokens", self.last_cached_prompt_tokens)
        if on_progress is not None:
            on_progress(len(prompts), len(prompts))
        return batch

    def preflight(self) -> list[PreFlightFailure]:
        failures = []
        if importlib.util.find_spec("vllm") is None:
            failures.append(PreFlightFailure("vllm", "the vllm package is not installed", INSTALL_FIX))
        if not self.device_ids:
            failures.append(
                PreFlightFailure("vllm", "vLLM needs an NVIDIA GPU and the run was given none", INSTALL_FIX)
            )
        return failures

    def prepare(self, prompts: Sequence[Prompt]) -> list[Prompt]:
        """Tokenise (special tokens included) and cut each prompt to its ``max_input_tokens``, before the window."""
        return tokenize_prompts(self._require_tokenizer(), prompts)

    def reseed(self, seed: int) -> None:
        """Right before the window: empty the prefix cache (seeds are fixed per request in `SamplingParams`)."""
        reset = getattr(self._llm, "reset_prefix_cache", None)
        if callable(reset):
            reset()
            self._prefix_cache_emptied = True
        elif self._llm is not None:
            logger.warning("this vLLM has no reset_prefix_cache(): warmup prompts may be served from the prefix cache")

    def cache_reuse(self) -> CacheReuse:
        """vLLM prefix caching as the engine ran it: config or passthrough, else vLLM's default (on)."""
        kwargs = engine_kwargs(self.config)
        return CacheReuse(
            mechanism="vLLM prefix caching",
            enabled=bool(kwargs.get("enable_prefix_caching", True)),
            configured="enable_prefix_caching" in kwargs,
            emptied_before_window=self._prefix_cache_emptied,
        )

    @property
    def preferred_batch_size(self) -> int:
        cap = section_of(self.config).engine.max_num_seqs
        return min(self.config.n, cap) if cap else self.config.n

    def reproducibility_notes(self) -> list[str]:
        return list(self._notes)

    def parameter_counts(self) -> ParameterCounts | None:
        """From the model's config.json (the weights live in the engine's processes)."""
        return counts_from_model_dir(locate_model(self.config.model, self.config.model_revision)[0])

    def count_tokens(self, text: str) -> int:
        return count_text_tokens(self._require_tokenizer(), text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return truncate_text(self._require_tokenizer(), text, max_tokens)

    def versions(self) -> dict[str, str]:
        return {"vllm": self._api.version} if self._api is not None else {}

    def close(self) -> None:
        """Shut the engine-core process down and drop the engine."""
        self._context.release()
        llm, self._llm = self._llm, None
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(engine_core, "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception as e:  # best effort: the container exits right after
                logger.debug("vLLM engine shutdown raised %s", e)
        del llm
        gc.collect()

    def _require_loaded(self) -> tuple[Any, VLLMApi]:
        if self._llm is None or self._api is None:
            raise BackendError("generate() called before load()", backend="vllm")
        return self._llm, self._api

    def _require_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise BackendError("the tokenizer is available after load()", backend="vllm")
        return self._tokenizer


def _vllm_input(prompt: Prompt) -> Any:
    """vLLM's prompt: a ``TokensPrompt`` dict when `prepare` tokenised it, else the text."""
    return {"prompt_token_ids": list(prompt.token_ids)} if prompt.token_ids is not None else prompt.text


def _describe(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if k != "model")
