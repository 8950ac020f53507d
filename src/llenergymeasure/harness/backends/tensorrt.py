"""TensorRT-LLM backend: the LLM API's TensorRT-engine flow behind `InferenceBackend`.

Targets **TensorRT-LLM 1.2** (signatures read from the repository source; the image's
base is the 1.2.1 release, see `llenergymeasure.images`; see `tensorrt_mapping` for
the files and the config → argument mapping). TensorRT-LLM is
imported in `load` through `load_tensorrt_llm`, the one line where it enters and the
seam tests replace with a fake `TensorRTApi`.

`load` gets an engine before the measured window, in this order:

1. ``tensorrt.engine_path`` set → load that prebuilt engine (``source = "prebuilt"``);
2. a complete engine under the cache hash (`engine_cache`) → load it (``"cache"``);
3. else build from the checkpoint with the section's limits and quantisation, save it
   into the cache atomically, and keep the built instance for the run (``"built"``).

`engine_info` tells the harness which of the three happened (with the hash and the
path), so the result can say how the engine was obtained. Build time is never inside
the window. `generate` submits every prompt in one ``llm.generate`` call (in-flight
batching decides the batches) and returns once all requests finished; token counts
and per-request latency/TTFT/ITL come from the request outputs and their perf
metrics (`tensorrt_mapping.batch_from_trt`).

Other decisions: `prepare` tokenises and truncates before the window and `generate`
passes token ids; `preferred_batch_size` is the window's concurrency (all prompts,
capped by ``max_batch_size``); `prepare_device` holds a CUDA context on every device
of the set in a helper process for the idle baseline and `release_device` ends it
before the engine starts (TensorRT-LLM's executor and MPI workers own the window's
contexts). TensorRT-LLM reuses KV-cache blocks across requests by default and its
LLM API has no call to empty that cache, so the harness warms up on prompts
disjoint from the window's; reuse among the window's own prompts stays as
configured (``tensorrt.enable_kv_cache_reuse``) and is recorded in the result.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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
from llenergymeasure.harness.backends.engine_cache import (
    EngineCache,
    engine_cache_root,
    engine_hash,
    engine_key_inputs,
)
from llenergymeasure.harness.backends.tensorrt_mapping import (
    batch_from_trt,
    build_kwargs,
    load_kwargs,
    sampling_kwargs,
    section_of,
)
from llenergymeasure.harness.params import ParameterCounts, counts_from_model_dir
from llenergymeasure.harness.tokens import count_text_tokens, truncate_text
from llenergymeasure.harness.weights import locate_model
from llenergymeasure.schemas.config.backends import TensorRTConfig
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import CacheReuse, DeviceState

logger = logging.getLogger(__name__)

INSTALL_FIX = "run in the llenergymeasure/tensorrt image (NVIDIA's TensorRT-LLM release image underneath)"
LORA_INT_ID = 1
LORA_NAME = "llem-adapter"


@dataclass(frozen=True)
class TensorRTApi:
    """The parts of ``tensorrt_llm`` the backend uses (the thin adapter tests fake)."""

    llm_cls: Callable[..., Any]
    sampling_params_cls: Callable[..., Any]
    quant_config_cls: Callable[..., Any]
    quant_algo: Any  # the QuantAlgo enum: members looked up by name
    calib_config_cls: Callable[..., Any]
    kv_cache_config_cls: Callable[..., Any]
    lora_config_cls: Callable[..., Any]
    lora_request_cls: Callable[..., Any]
    version: str


@dataclass(frozen=True)
class EngineInfo:
    """How the engine of this run was obtained."""

    source: str  # "prebuilt" | "cache" | "built"
    path: str | None
    key: str | None
    build_s: float | None = None


def load_tensorrt_llm() -> TensorRTApi:
    """Import TensorRT-LLM (the only place it is imported)."""
    try:
        import tensorrt_llm
        from tensorrt_llm.llmapi import (
            CalibConfig,
            KvCacheConfig,
            LoRARequest,
            QuantAlgo,
            QuantConfig,
            SamplingParams,
        )

        try:  # 1.x: the TensorRT-engine flow lives here; tensorrt_llm.LLM is the PyTorch flow
            from tensorrt_llm._tensorrt_engine import LLM
        except ImportError:  # < 1.0: tensorrt_llm.LLM builds engines
            from tensorrt_llm import LLM
        try:
            from tensorrt_llm.lora_helper import LoraConfig
        except ImportError:
            from tensorrt_llm.lora_manager import LoraConfig
    except ImportError as e:
        raise BackendError(f"TensorRT-LLM is not installed: {e}", backend="tensorrt", fix=INSTALL_FIX) from e
    return TensorRTApi(
        llm_cls=LLM,
        sampling_params_cls=SamplingParams,
        quant_config_cls=QuantConfig,
        quant_algo=QuantAlgo,
        calib_config_cls=CalibConfig,
        kv_cache_config_cls=KvCacheConfig,
        lora_config_cls=LoraConfig,
        lora_request_cls=LoRARequest,
        version=str(getattr(tensorrt_llm, "__version__", "unknown")),
    )


def torch_gpu_identity() -> str:
    """Name and compute capability of CUDA device 0, e.g. ``NVIDIA H100 80GB HBM3 sm90`` (engines are tied to it)."""
    import torch

    major, minor = torch.cuda.get_device_capability(0)
    return f"{torch.cuda.get_device_name(0)} sm{major}{minor}"


def materialize(kwargs: Mapping[str, Any], api: TensorRTApi) -> dict[str, Any]:
    """Turn the plain sub-config dicts of `tensorrt_mapping` into TensorRT-LLM objects."""
    out = dict(kwargs)
    quant = out.get("quant_config")
    if isinstance(quant, Mapping):
        try:
            out["quant_config"] = api.quant_config_cls(
                **{k: api.quant_algo[v] if k.endswith("quant_algo") else v for k, v in quant.items()}
            )
        except KeyError as e:
            raise BackendError(f"this TensorRT-LLM has no QuantAlgo {e}", backend="tensorrt") from e
    for name, cls in (
        ("calib_config", api.calib_config_cls),
        ("kv_cache_config", api.kv_cache_config_cls),
        ("lora_config", api.lora_config_cls),
    ):
        value = out.get(name)
        if isinstance(value, Mapping):
            out[name] = cls(**value)
    return out


class TensorRTBackend(HelperHeldContexts, InferenceBackend[TensorRTConfig]):
    """TensorRT-LLM engine, built once per build-affecting configuration and cached."""

    name = "tensorrt"

    def __init__(
        self,
        config: ExperimentConfig,
        section: TensorRTConfig | None,
        device_ids: Sequence[int],
        *,
        api_loader: Callable[[], TensorRTApi] = load_tensorrt_llm,
        gpu_identity: Callable[[], str] = torch_gpu_identity,
        cache: EngineCache | None = None,
        clock: Callable[[], float] = time.perf_counter,
        environ: Mapping[str, str] | None = None,
        spawner: Spawner = spawn,
    ) -> None:
        super().__init__(config, section, device_ids)
        self._context = CudaContextHolder(self.device_ids, spawner)
        self._device_state: DeviceState = InferenceBackend.device_state.fget(self)  # type: ignore[attr-defined]
        self._api_loader = api_loader
        self._gpu_identity = gpu_identity
        self._cache = cache
        self._clock = clock
        self._environ = environ if environ is not None else os.environ
        self._api: TensorRTApi | None = None
        self._llm: Any = None
        self._lora_request: Any = None
        self.engine_info: EngineInfo | None = None

    def load(self) -> None:
        """Load the prebuilt or cached engine, or build and cache one; all before the window."""
        self._context.release()
        if not self.device_ids:
            raise BackendError(
                "TensorRT-LLM needs an NVIDIA GPU and none was given", backend="tensorrt", fix=INSTALL_FIX
            )
        api = self._api_loader()
        section = section_of(self.config)
        if section.engine_path is not None:
            self._llm = self._start(api, load_kwargs(self.config, section.engine_path), "load the prebuilt engine")
            self.engine_info = EngineInfo("prebuilt", section.engine_path, None)
        else:
            self._load_or_build(api)
        lora = self.config.lora
        if lora is not None:
            self._lora_request = api.lora_request_cls(LORA_NAME, LORA_INT_ID, lora.adapter)
        self._api = api

    def _load_or_build(self, api: TensorRTApi) -> None:
        inputs = engine_key_inputs(self.config, tensorrt_llm_version=api.version, gpu=self._gpu_identity())
        key = engine_hash(inputs)
        cache = self._cache or EngineCache(engine_cache_root(self._environ, Path.home()))
        cached = cache.lookup(key)
        if cached is not None:
            logger.info("using cached TensorRT engine %s", cached)
            self._llm = self._start(api, load_kwargs(self.config, str(cached)), "load the cached engine")
            self.engine_info = EngineInfo("cache", str(cached), key)
            return
        logger.info("building TensorRT engine %s (not in %s)", key, cache.root)
        started = self._clock()
        llm = self._start(api, build_kwargs(self.config), "build the engine")
        build_s = self._clock() - started
        try:
            path = cache.publish(key, inputs, lambda staging: llm.save(str(staging)))
        except Exception as e:
            _shutdown(llm)
            raise BackendError(
                f"could not save the built engine into {cache.root}: {type(e).__name__}: {e}",
                backend="tensorrt",
                fix="check that the engine cache directory is mounted writable",
            ) from e
        self._llm = llm
        self.engine_info = EngineInfo("built", str(path), key, build_s)
        logger.info("built TensorRT engine in %.1f s, cached at %s", build_s, path)

    def _start(self, api: TensorRTApi, kwargs: Mapping[str, Any], what: str) -> Any:
        try:
            return api.llm_cls(**materialize(kwargs, api))
        except BackendError:
            raise
        except Exception as e:
            raise BackendError(
                f"TensorRT-LLM could not {what} for {self.config.model}: {type(e).__name__}: {e}",
                backend="tensorrt",
                fix="check the tensorrt section (limits, quantisation, tp/pp) against the model and GPU",
            ) from e

    def generate(self, prompts: Sequence[Prompt], on_progress: ProgressCallback | None = None) -> GenerationBatch:
        """All `prompts` in one ``llm.generate`` call; exact tokens and per-request timings."""
        llm, api = self._require_loaded()
        params = [api.sampling_params_cls(**sampling_kwargs(self.config, p)) for p in prompts]
        started = self._clock()
        try:
            outputs = llm.generate(
                [list(p.token_ids) if p.token_ids is not None else p.text for p in prompts],
                sampling_params=params,
                use_tqdm=False,
                lora_request=self._lora_request,
            )
        except Exception as e:
            raise BackendError(f"TensorRT-LLM generation failed: {type(e).__name__}: {e}", backend="tensorrt") from e
        window_s = self._clock() - started
        if len(outputs) != len(prompts):
            raise BackendError(
                f"TensorRT-LLM returned {len(outputs)} outputs for {len(prompts)} prompts", backend="tensorrt"
            )
        batch = batch_from_trt(outputs, window_s)
        if batch.granularity == "batch":
            logger.info("TensorRT-LLM returned no per-request perf metrics: latency is reported per batch")
        if on_progress is not None:
            on_progress(len(prompts), len(prompts))
        return batch

    def preflight(self) -> list[PreFlightFailure]:
        failures = []
        if importlib.util.find_spec("tensorrt_llm") is None:
            failures.append(PreFlightFailure("tensorrt", "the tensorrt_llm package is not installed", INSTALL_FIX))
        if not self.device_ids:
            failures.append(
                PreFlightFailure("tensorrt", "TensorRT-LLM needs an NVIDIA GPU and the run was given none", INSTALL_FIX)
            )
        engine_path = section_of(self.config).engine_path
        if engine_path is not None and not Path(engine_path, "config.json").is_file():
            failures.append(
                PreFlightFailure(
                    "tensorrt",
                    f"engine_path {engine_path} holds no TensorRT-LLM engine (no config.json)",
                    "mount the engine directory into the container at the same path, or remove engine_path",
                )
            )
        return failures

    def prepare(self, prompts: Sequence[Prompt]) -> list[Prompt]:
        """Tokenise (special tokens included) and cut each prompt to its ``max_input_tokens``, before the window."""
        return tokenize_prompts(self._tokenizer(), prompts)

    def cache_reuse(self) -> CacheReuse:
        """KV-cache block reuse: ``tensorrt.enable_kv_cache_reuse``, else TensorRT-LLM's default (on).

        The LLM API offers no call to empty the cache, so it is never emptied; warmup prompts are disjoint.
        """
        configured = section_of(self.config).enable_kv_cache_reuse
        return CacheReuse(
            mechanism="TensorRT-LLM KV-cache block reuse",
            enabled=configured is not False,
            configured=configured is not None,
            emptied_before_window=False,
        )

    @property
    def preferred_batch_size(self) -> int:
        cap = section_of(self.config).max_batch_size
        return min(self.config.n, cap) if cap else self.config.n

    def reproducibility_notes(self) -> list[str]:
        if self._api is None or self.engine_info is None:
            return []
        info = self.engine_info
        notes = [f"TensorRT-LLM {self._api.version}, TensorRT-engine flow; all prompts submitted in one generate call"]
        if info.source == "built":
            notes.append(f"engine built for this run in {info.build_s:.1f} s and cached as {info.key} at {info.path}")
        elif info.source == "cache":
            notes.append(f"engine loaded from the cache: {info.key} at {info.path}")
        else:
            notes.append(f"prebuilt engine from engine_path {info.path}: its build settings are not verified")
        if section_of(self.config).enable_kv_cache_reuse is not False:
            notes.append("KV-cache block reuse on: prompts sharing a prefix within the window may hit the cache")
        return notes

    def parameter_counts(self) -> ParameterCounts | None:
        """From the model's config.json (the weights live in the engine's processes)."""
        return counts_from_model_dir(locate_model(self.config.model, self.config.model_revision)[0])

    def count_tokens(self, text: str) -> int:
        return count_text_tokens(self._tokenizer(), text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return truncate_text(self._tokenizer(), text, max_tokens)

    def versions(self) -> dict[str, str]:
        return {"tensorrt_llm": self._api.version} if self._api is not None else {}

    def close(self) -> None:
        """Shut the executor (and its MPI workers) down."""
        self._context.release()
        llm, self._llm = self._llm, None
        _shutdown(llm)

    def _require_loaded(self) -> tuple[Any, TensorRTApi]:
        if self._llm is None or self._api is None:
            raise BackendError("generate() called before load()", backend="tensorrt")
        return self._llm, self._api

    def _tokenizer(self) -> Any:
        tokenizer = getattr(self._llm, "tokenizer", None)
        if tokenizer is None:
            raise BackendError("the tokenizer is available after load()", backend="tensorrt")
        return tokenizer


def _shutdown(llm: Any) -> None:
    """Best-effort ``llm.shutdown()`` (executor and MPI workers); the container exits right after anyway."""
    shutdown = getattr(llm, "shutdown", None)
    if callable(shutdown):
        try:
            shutdown()
        except Exception as e:
            logger.debug("TensorRT-LLM shutdown raised %s", e)
