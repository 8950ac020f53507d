"""Fakes of the thin adapters around vLLM and TensorRT-LLM, shaped like the real classes.

Attribute names follow the real objects (vLLM 0.33 ``vllm/outputs.py`` and
``vllm/v1/metrics/stats.py``; TensorRT-LLM 1.2 ``executor/result.py``), so the
accounting code reads them exactly as it reads the real ones. Each fake LLM
records what it was constructed and called with; a *responder* decides what
every request produces.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.harness.backends.tensorrt import TensorRTApi
from llenergymeasure.harness.backends.vllm import VLLMApi

BOS = 1
EOS = 2


class WordTokenizer:
    """Whitespace tokenizer: word *i* of a fixed vocabulary ↔ id *i + 10*; BOS prepended on request."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.words: dict[int, str] = {}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [BOS] if add_special_tokens else []
        for word in text.split():
            if word not in self.vocab:
                self.vocab[word] = len(self.vocab) + 10
                self.words[self.vocab[word]] = word
            ids.append(self.vocab[word])
        return ids

    def decode(self, ids: list[int], **_: Any) -> str:
        return " ".join(self.words[i] for i in ids if i in self.words)


class Clock:
    """A clock that returns the given readings in order."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0)


# ------------------------------------------------------------------ vLLM (0.33)


@dataclass
class FakeCompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: Any = None
    finish_reason: str | None = "stop"
    stop_reason: int | str | None = None


@dataclass
class FakeRequestStateStats:
    """vllm.v1.metrics.stats.RequestStateStats."""

    num_generation_tokens: int = 0
    num_preemptions: int = 0
    arrival_time: float = 0.0
    queued_ts: float = 0.0
    scheduled_ts: float = 0.0
    first_token_ts: float = 0.0
    last_token_ts: float = 0.0
    first_token_latency: float = 0.0


@dataclass
class FakeV0RequestMetrics:
    """vllm.sequence.RequestMetrics of the V0 engine (wall-clock seconds)."""

    arrival_time: float
    last_token_time: float
    first_scheduled_time: float | None
    first_token_time: float | None
    time_in_queue: float | None
    finished_time: float | None = None


@dataclass
class FakeVLLMRequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[FakeCompletionOutput]
    finished: bool = True
    metrics: Any = None
    lora_request: Any = None
    num_cached_tokens: int | None = None


@dataclass
class FakeSamplingParams:
    kwargs: dict[str, Any]


def fake_sampling_params(**kwargs: Any) -> FakeSamplingParams:
    return FakeSamplingParams(kwargs)


@dataclass
class FakeLoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str = ""


#: (prompt token ids, sampling kwargs) → (output token ids, metrics, num_cached_tokens)
VLLMResponder = Callable[[list[int], dict[str, Any]], tuple[list[int], Any, int | None]]


def eos_after(n: int) -> VLLMResponder:
    """Every request generates n-1 word tokens then EOS (vLLM keeps EOS in token_ids), no metrics."""
    return lambda ids, kw: ([*range(100, 100 + n - 1), EOS], None, None)


class FakeEngineCore:
    def __init__(self) -> None:
        self.shut_down = False

    def shutdown(self) -> None:
        self.shut_down = True


class FakeLLMEngine:
    def __init__(self) -> None:
        self.engine_core = FakeEngineCore()


class FakeVLLM:
    """Stands in for ``vllm.LLM``."""

    def __init__(self, responder: VLLMResponder, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.responder = responder
        self.tokenizer = WordTokenizer()
        self.generate_calls: list[dict[str, Any]] = []
        self.prefix_cache_resets = 0
        self.llm_engine = FakeLLMEngine()

    def get_tokenizer(self) -> WordTokenizer:
        return self.tokenizer

    def reset_prefix_cache(self) -> bool:
        self.prefix_cache_resets += 1
        return True

    def generate(self, prompts: list[Any], sampling_params: list[FakeSamplingParams], **kwargs: Any) -> list[Any]:
        self.generate_calls.append({"prompts": prompts, "sampling_params": sampling_params, **kwargs})
        outputs = []
        for i, (prompt, params) in enumerate(zip(prompts, sampling_params, strict=True)):
            ids = prompt["prompt_token_ids"] if isinstance(prompt, dict) else self.tokenizer.encode(prompt)
            out_ids, metrics, cached = self.responder(list(ids), params.kwargs)
            completion = FakeCompletionOutput(0, self.tokenizer.decode(out_ids), out_ids)
            outputs.append(
                FakeVLLMRequestOutput(str(i), None, list(ids), None, [completion], True, metrics, None, cached)
            )
        return outputs


def vllm_api(responder: VLLMResponder, created: list[FakeVLLM], fail: Exception | None = None) -> Callable[[], VLLMApi]:
    """An api_loader returning fakes; every LLM constructed is appended to `created`."""

    def make_llm(**kwargs: Any) -> FakeVLLM:
        if fail is not None:
            raise fail
        llm = FakeVLLM(responder, **kwargs)
        created.append(llm)
        return llm

    return lambda: VLLMApi(make_llm, fake_sampling_params, FakeLoRARequest, "0.33.0")


# ------------------------------------------------------------------ TensorRT-LLM (1.2)


class FakeQuantAlgo(enum.Enum):
    W8A16 = "W8A16"
    W4A16 = "W4A16"
    W4A16_AWQ = "W4A16_AWQ"
    W8A8_SQ_PER_CHANNEL = "W8A8_SQ_PER_CHANNEL"
    FP8 = "FP8"
    NVFP4 = "NVFP4"
    INT8 = "INT8"


@dataclass
class FakeQuantConfig:
    quant_algo: FakeQuantAlgo | None = None
    kv_cache_quant_algo: FakeQuantAlgo | None = None


@dataclass
class FakeConfigObject:
    """Stands in for CalibConfig / KvCacheConfig / LoraConfig: keeps its fields."""

    fields: dict[str, Any]


def config_object(**kwargs: Any) -> FakeConfigObject:
    return FakeConfigObject(kwargs)


@dataclass
class FakeTimingMetrics:
    arrival_time: datetime.timedelta
    first_scheduled_time: datetime.timedelta
    first_token_time: datetime.timedelta
    last_token_time: datetime.timedelta


@dataclass
class FakeRequestPerfMetrics:
    timing_metrics: FakeTimingMetrics


@dataclass
class FakeTrtCompletionOutput:
    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    cumulative_logprob: float | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    request_perf_metrics: FakeRequestPerfMetrics | None = None


@dataclass
class FakeTrtRequestOutput:
    request_id: int
    prompt_token_ids: list[int]
    outputs: list[FakeTrtCompletionOutput]
    finished: bool = True


def timing(arrival_s: float, first_s: float, last_s: float) -> FakeRequestPerfMetrics:
    td = datetime.timedelta
    return FakeRequestPerfMetrics(
        FakeTimingMetrics(td(seconds=arrival_s), td(seconds=arrival_s), td(seconds=first_s), td(seconds=last_s))
    )


#: (prompt token ids, sampling kwargs) → completion
TrtResponder = Callable[[list[int], dict[str, Any]], FakeTrtCompletionOutput]


class FakeTrtLLM:
    """Stands in for ``tensorrt_llm._tensorrt_engine.LLM``."""

    def __init__(self, responder: TrtResponder, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.responder = responder
        self.tokenizer = WordTokenizer()
        self.saved_to: list[str] = []
        self.generate_calls: list[dict[str, Any]] = []
        self.shut_down = False

    def save(self, engine_dir: str) -> None:
        path = Path(engine_dir)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"built_with": sorted(self.kwargs)}))
        (path / "rank0.engine").write_bytes(b"engine")
        self.saved_to.append(engine_dir)

    def generate(self, inputs: list[Any], sampling_params: list[FakeSamplingParams], **kwargs: Any) -> list[Any]:
        self.generate_calls.append({"inputs": inputs, "sampling_params": sampling_params, **kwargs})
        outputs = []
        for i, (prompt, params) in enumerate(zip(inputs, sampling_params, strict=True)):
            ids = list(prompt) if isinstance(prompt, list) else self.tokenizer.encode(prompt)
            outputs.append(FakeTrtRequestOutput(i, ids, [self.responder(ids, params.kwargs)]))
        return outputs

    def shutdown(self) -> None:
        self.shut_down = True


def trt_api(
    responder: TrtResponder, created: list[FakeTrtLLM], fail: Exception | None = None, version: str = "1.2.1"
) -> Callable[[], TensorRTApi]:
    def make_llm(**kwargs: Any) -> FakeTrtLLM:
        if fail is not None:
            raise fail
        llm = FakeTrtLLM(responder, **kwargs)
        created.append(llm)
        return llm

    def lora_request(name: str, int_id: int, path: str) -> FakeLoRARequest:
        return FakeLoRARequest(name, int_id, path)

    return lambda: TensorRTApi(
        llm_cls=make_llm,
        sampling_params_cls=fake_sampling_params,
        quant_config_cls=FakeQuantConfig,
        quant_algo=FakeQuantAlgo,
        calib_config_cls=config_object,
        kv_cache_config_cls=config_object,
        lora_config_cls=config_object,
        lora_request_cls=lora_request,
        version=version,
    )


# ------------------------------------------------------------------ CUDA context holder


class FakeHolderProcess:
    """Stands in for the context-holder subprocess: says `first_line`, then waits for stdin to close."""

    def __init__(self, argv: list[str], first_line: str = "ready\n") -> None:
        import io

        self.argv = argv
        self.stdout = io.StringIO(first_line)
        self.stdin = io.StringIO()
        self.stderr = io.StringIO("" if first_line else "RuntimeError: Found no NVIDIA driver on your system.\n")
        self.killed = False
        self.waited = False

    def wait(self, timeout: float | None = None) -> int:
        assert self.stdin.closed or self.killed, "waited on the holder before closing its stdin"
        self.waited = True
        return 0

    def kill(self) -> None:
        self.killed = True


class FakeSpawner:
    """Records every holder process it starts (`first_line` = what the helper prints)."""

    def __init__(self, first_line: str = "ready\n") -> None:
        self.first_line = first_line
        self.started: list[FakeHolderProcess] = []

    def __call__(self, argv: Any) -> FakeHolderProcess:
        proc = FakeHolderProcess(list(argv), self.first_line)
        self.started.append(proc)
        return proc
