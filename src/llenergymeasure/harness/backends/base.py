"""The seam between the measurement loop and an inference framework.

`InferenceBackend` is the one small interface every backend implements
(pytorch, vllm, tensorrt). The harness drives it the same way for each:

    backend = create_backend(config, devices)   # cheap: no framework import yet
    failures = backend.preflight()               # framework importable, devices usable (reported, not raised)
    backend.prepare_device()                     # CUDA context up, nothing loaded (idle baseline runs now)
    backend.release_device()                     # after the baseline: drop what only the baseline needed
    backend.load()                               # before the window: weights, engine, CUDA graphs
    prompts = backend.prepare(prompts)           # tokenise / truncate before the window
    backend.generate(warmup_prompts)             # warmup
    backend.synchronize(); <read energy counters>
    outputs = backend.generate(prompts, on_progress)   # the measured window
    backend.synchronize(); <read energy counters>
    backend.close()

A backend imports its framework lazily (inside `load`), never at module import.

The hooks with a default body (`preflight`, `prepare_device`, `prepare`,
`preferred_batch_size`, `reproducibility_notes`, ...) were added after the first
version of this interface; a backend that does not override them still works.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, TypeVar

from llenergymeasure.errors import PreFlightFailure
from llenergymeasure.harness.params import ParameterCounts
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import CacheReuse, DeviceState, MemoryStats

SectionT = TypeVar("SectionT")

#: progress callback: (prompts done, prompts total)
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RequestOutput:
    """What one prompt produced, counted exactly.

    `output_tokens` counts generated tokens up to and including EOS, never padding
    and never anything after EOS. `latency_s` is the request's own latency when the
    backend reports it, else the latency of the batch it ran in (see `granularity`).
    """

    input_tokens: int
    output_tokens: int
    latency_s: float
    ttft_s: float | None = None
    itl_s: float | None = None
    text: str | None = None
    #: when the request's first / last token came, seconds after the first request of the call arrived
    #: (≈ the window's start for the window's one call); None when the backend does not time requests
    first_token_offset_s: float | None = None
    end_offset_s: float | None = None


@dataclass(frozen=True)
class GenerationBatch:
    """The outputs of one `generate` call, with how latency was measured."""

    outputs: list[RequestOutput]
    granularity: str  # "request" | "batch"


@dataclass(frozen=True)
class Prompt:
    """A prompt ready for the backend: its text and, for synthetic data, a fixed output length.

    `max_input_tokens` caps the prompt's length in tokens (special tokens included);
    `token_ids` is filled by `InferenceBackend.prepare` for backends that tokenise
    ahead of the measured window (then `text` is informational).
    """

    text: str
    max_new_tokens: int
    min_new_tokens: int | None = None
    max_input_tokens: int | None = None
    token_ids: tuple[int, ...] | None = None


class InferenceBackend(abc.ABC, Generic[SectionT]):
    """One inference framework behind the measurement loop."""

    name: ClassVar[str]

    def __init__(self, config: ExperimentConfig, section: SectionT | None, device_ids: Sequence[int]) -> None:
        self.config = config
        self.section = section
        self.device_ids = list(device_ids)

    @abc.abstractmethod
    def load(self) -> None:
        """Load weights / build or load the engine. Runs before the measured window."""

    @abc.abstractmethod
    def generate(self, prompts: Sequence[Prompt], on_progress: ProgressCallback | None = None) -> GenerationBatch:
        """Generate for every prompt (batching as the backend's config says)."""

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under the model's tokenizer (no special tokens)."""

    @abc.abstractmethod
    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut to at most `max_tokens` tokens."""

    def preflight(self) -> list[PreFlightFailure]:
        """Checks specific to this backend (framework importable, devices usable). Never raises; lists failures."""
        return []

    def prepare_device(self) -> None:
        """Bring every device of the set into the window's CUDA state without loading anything.

        The idle baseline is measured after this, so it must leave a CUDA context on each device
        (see `device_state`).
        """

    def release_device(self) -> None:
        """Called right after the baseline, before `load`: release what only the baseline needed."""

    @property
    def device_state(self) -> DeviceState:
        """The devices' CUDA state after `prepare_device` (recorded with the baseline)."""
        return "no_cuda_context" if self.device_ids else "no_gpu"

    def prepare(self, prompts: Sequence[Prompt]) -> list[Prompt]:
        """Truncate (and, where the backend can, tokenise) prompts before the window. Runs after `load`.

        The default cuts each text with `truncate` to its `max_input_tokens`.
        """
        return [
            p if p.max_input_tokens is None else replace(p, text=self.truncate(p.text, p.max_input_tokens))
            for p in prompts
        ]

    def reseed(self, seed: int) -> None:
        """Re-seed the framework's random generators (called right before the window)."""

    @property
    def preferred_batch_size(self) -> int:
        """Prompts per `generate` call the backend batches together (warmup uses batches of this size)."""
        return 1

    def reproducibility_notes(self) -> list[str]:
        """Decisions taken while loading that could make a rerun differ (set after `load`)."""
        return []

    def cache_reuse(self) -> CacheReuse | None:
        """The engine's cross-request prefix/KV-cache reuse setting (None: the engine has no such cache)."""
        return None

    def synchronize(self) -> None:
        """Block until queued device work is done (``torch.cuda.synchronize``); no-op on CPU."""

    def memory_stats(self) -> MemoryStats | None:
        """Peak memory since load; None if unknown."""
        return None

    def parameter_counts(self) -> ParameterCounts | None:
        """Logical parameter counts for the FLOPs estimate (see `harness.params`); None if unknown."""
        return None

    def versions(self) -> dict[str, str]:
        """Package versions relevant to this backend (name → version)."""
        return {}

    @property
    def device(self) -> str:
        """``cuda`` or ``cpu``."""
        return "cuda" if self.device_ids else "cpu"

    @property
    def effective_precision(self) -> str:
        """Precision actually used: a CPU run is fp32 whatever was asked; a ``dtype`` in ``passthrough_kwargs``
        overrides the config's precision (it is passed to the engine last)."""
        if self.device != "cuda":
            return "fp32"
        override = (self.config.passthrough_kwargs or {}).get("dtype")
        if override is None:
            return self.config.precision
        return precision_of(override) or str(override)

    def close(self) -> None:
        """Release the model and the device memory."""


#: dtype spellings (torch, transformers, vLLM, TensorRT-LLM) → our precision names
_PRECISIONS = {
    "float32": "fp32",
    "float": "fp32",
    "fp32": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "fp16": "fp16",
    "bfloat16": "bf16",
    "bf16": "bf16",
}


def precision_of(dtype: object) -> str | None:
    """``fp32`` / ``fp16`` / ``bf16`` for a dtype (``torch.bfloat16``, ``"half"``, ...); None when not one of them."""
    return _PRECISIONS.get(str(dtype).removeprefix("torch."))


#: (latency_s, ttft_s, itl_s, arrival_s) of one request, as a backend's request metrics give it; arrival_s is on
#: the backend's request clock (any origin, the same for every request of a call)
RequestTiming = tuple[float, float, float | None, float]


def batch_from_counts(
    counted: Sequence[tuple[int, int, str | None]], timings: Sequence[RequestTiming | None], call_s: float
) -> GenerationBatch:
    """A `GenerationBatch` from exact (input tokens, output tokens, text) per request and their timings.

    Latency is per request when every request has timings; otherwise each request gets the
    duration of the whole call (`call_s`) and the granularity says ``batch``: a mix of the two
    would make the latency statistics meaningless.
    """
    known = [t for t in timings if t is not None]
    if counted and len(known) == len(timings):
        first_arrival = min(t[3] for t in known)
        return GenerationBatch(
            outputs=[
                RequestOutput(
                    input_tokens=n_in,
                    output_tokens=n_out,
                    latency_s=latency,
                    ttft_s=ttft,
                    itl_s=itl,
                    text=text,
                    first_token_offset_s=arrival - first_arrival + ttft,
                    end_offset_s=arrival - first_arrival + latency,
                )
                for (n_in, n_out, text), (latency, ttft, itl, arrival) in zip(counted, known, strict=True)
            ],
            granularity="request",
        )
    return GenerationBatch(
        outputs=[
            RequestOutput(input_tokens=n_in, output_tokens=n_out, latency_s=call_s, text=text)
            for n_in, n_out, text in counted
        ],
        granularity="batch",
    )


def tokenize_prompts(tokenizer: Any, prompts: Sequence[Prompt]) -> list[Prompt]:
    """Prompts carrying their token ids (special tokens included), each cut to its ``max_input_tokens``.

    For engines that take token ids: tokenising before the window keeps it out of the measurement.
    """
    prepared = []
    for p in prompts:
        ids = list(tokenizer.encode(p.text, add_special_tokens=True))
        if p.max_input_tokens is not None:
            ids = ids[: p.max_input_tokens]
        prepared.append(dataclasses.replace(p, token_ids=tuple(ids)))
    return prepared
