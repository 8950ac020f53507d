"""`ExperimentConfig`: one model × backend × settings to measure."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, JsonValue, PositiveInt, field_validator, model_validator

from llenergymeasure.schemas._base import ConfigModel, incompatible
from llenergymeasure.schemas.config.backends import PyTorchConfig, TensorRTConfig, VLLMConfig
from llenergymeasure.schemas.config.capabilities import (
    BACKENDS,
    DECODER_FIELD_SUPPORT,
    DECODING_SUPPORT,
    LORA_SUPPORT,
    PRECISION_SUPPORT,
    Backend,
    Precision,
    backend_rule_violations,
    supported_precisions,
)
from llenergymeasure.schemas.config.sections import (
    MAX_TOKENS,
    BaselineConfig,
    DecoderConfig,
    EnergyConfig,
    LoRAConfig,
    SyntheticDataset,
    WarmupConfig,
)
from llenergymeasure.schemas.config.text import check_path

#: built-in dataset names (anything else must be a path to a JSONL file)
BUILTIN_DATASETS: tuple[str, ...] = ("aienergyscore",)


def looks_like_path(value: str) -> bool:
    """True when a `model`/adapter string is meant as a filesystem path rather than a hub id.

    Hub ids are ``name`` or ``org/name``; a path starts with ``/``, ``./``, ``../`` or ``~``, is ``.``
    or ``..``, or has more than one ``/``. One rule for the host (mounts, YAML-relative paths) and the
    harness (model lookup).
    """
    return value.startswith(("/", "./", "../", "~")) or value in {".", ".."} or value.count("/") > 1


#: longest `model_revision` (characters): a branch or tag name, or a 40-character commit hash
MAX_REVISION_CHARS = 255

#: largest `n` (prompts per window, count)
MAX_PROMPTS = 1_000_000
#: largest `random_seed`: torch.manual_seed accepts up to 2**64 - 1
MAX_SEED = 2**64 - 1
#: largest GPU index in `gpus`
MAX_GPU_INDEX = 1023

#: fields that do not change what is measured: left out of `measurement_config_hash`
OPERATIONAL_FIELDS: frozenset[str] = frozenset({"gpus"})


class ExperimentConfig(ConfigModel):
    """One experiment: a model, a backend and everything that defines the measurement."""

    model: str = Field(min_length=1, description="Hub id (org/name) or local directory of the model.")
    model_revision: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_REVISION_CHARS,
        description="Branch, tag or commit of a hub model to fetch and load; null = the repository's main. "
        "The result records the commit actually loaded (model_commit). Not allowed with a local directory.",
    )
    backend: Backend = Field("pytorch", description="Inference backend: pytorch, vllm or tensorrt.")
    precision: Precision = Field(
        "bf16", description="Weights/activation precision: fp32, fp16 or bf16. A host without a GPU runs fp32."
    )
    dataset: str | SyntheticDataset = Field(
        "aienergyscore",
        description="Prompt source: 'aienergyscore' (built-in), a path to a JSONL file of {\"prompt\": ...} rows, "
        "or {synthetic: true, input_tokens: N, output_tokens: M}.",
    )
    n: PositiveInt = Field(100, le=MAX_PROMPTS, description="Number of prompts in the measured window (count).")
    random_seed: int = Field(
        42,
        ge=0,
        le=MAX_SEED,
        description="Seed for prompt selection and sampling; 0 to 2**64 - 1, the range torch.manual_seed accepts.",
    )
    max_input_tokens: PositiveInt = Field(512, le=MAX_TOKENS, description="Prompts are truncated to this many tokens.")
    max_output_tokens: PositiveInt = Field(128, le=MAX_TOKENS, description="Maximum new tokens generated per prompt.")
    decoder: DecoderConfig = Field(default_factory=DecoderConfig, description="Decoding settings.")
    warmup: WarmupConfig = Field(default_factory=WarmupConfig, description="Warmup before the window.")
    baseline: BaselineConfig = Field(default_factory=BaselineConfig, description="Idle baseline power.")
    energy: EnergyConfig = Field(default_factory=EnergyConfig, description="Energy meter and power timeline.")
    pytorch: PyTorchConfig | None = Field(None, description="PyTorch/transformers section (backend: pytorch only).")
    vllm: VLLMConfig | None = Field(None, description="vLLM section (backend: vllm only).")
    tensorrt: TensorRTConfig | None = Field(None, description="TensorRT-LLM section (backend: tensorrt only).")
    lora: LoRAConfig | None = Field(None, description="LoRA adapter applied to the model.")
    passthrough_kwargs: dict[str, JsonValue] | None = Field(
        None, description="Extra keyword arguments passed verbatim to the backend's model/engine constructor."
    )
    gpus: list[int] | None = Field(
        None,
        description="Host GPU indices to pin the experiment to; null = the first N the backend needs. "
        "Operational: not part of the measurement hash.",
    )

    @field_validator("model")
    @classmethod
    def _model_path(cls, v: str) -> str:
        return check_path(v, "model")

    @field_validator("model_revision")
    @classmethod
    def _revision_text(cls, v: str | None) -> str | None:
        if v is not None and (v != v.strip() or any(ch.isspace() for ch in v) or not v.isprintable()):
            raise ValueError(
                f"model_revision {v!r} is not a branch, tag or commit name; fix: remove spaces and control characters"
            )
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset_name_or_path(cls, v: str | SyntheticDataset) -> str | SyntheticDataset:
        if isinstance(v, str):
            check_path(v, "dataset")
        if isinstance(v, str) and v not in BUILTIN_DATASETS and not v.endswith((".jsonl", ".json")):
            raise ValueError(
                f"unknown dataset {v!r}; fix: use one of {list(BUILTIN_DATASETS)}, a path ending in .jsonl, "
                "or {synthetic: true, input_tokens: N, output_tokens: M}"
            )
        return v

    @field_validator("gpus")
    @classmethod
    def _gpus_unique(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("gpus is an empty list; fix: leave it out or list GPU indices like [0, 1]")
            if len(set(v)) != len(v) or min(v) < 0 or max(v) > MAX_GPU_INDEX:
                raise ValueError(f"gpus must be distinct indices from 0 to {MAX_GPU_INDEX}; fix: e.g. gpus: [0, 1]")
        return v

    @model_validator(mode="after")
    def _cross_validate(self) -> ExperimentConfig:
        backend = self.backend
        if self.precision not in PRECISION_SUPPORT[backend]:
            raise incompatible(
                f"precision {self.precision} is not supported by backend {backend}",
                f"use one of {supported_precisions(backend)}",
            )
        if self.model_revision is not None and looks_like_path(self.model):
            raise incompatible(
                f"model_revision {self.model_revision} is set but model {self.model} is a local directory",
                "remove model_revision (a local directory has no revisions) or give a hub id (org/name) as model",
            )
        for other in BACKENDS:
            if other != backend and getattr(self, other) is not None:
                raise incompatible(
                    f"a '{other}:' section is set but backend is {backend}",
                    f"remove the '{other}:' section or set backend: {other}",
                )
        if self.decoder.decoding_mode not in DECODING_SUPPORT[backend]:
            raise incompatible(
                f"{self.decoder.decoding_mode} decoding is not supported by backend {backend}",
                "change decoder.do_sample / decoder.temperature",
            )
        unsupported = sorted(self.decoder.model_fields_set - {"preset"} - DECODER_FIELD_SUPPORT[backend])
        if unsupported:
            raise incompatible(
                f"decoder field(s) {unsupported} are not supported by backend {backend}",
                "remove them or choose another backend",
            )
        if self.lora is not None and not LORA_SUPPORT[backend]:
            raise incompatible(f"LoRA is not supported by backend {backend}", "remove the lora section")
        for message, fix in backend_rule_violations(self):
            raise incompatible(message, fix)  # the first one; the rest show once it is fixed
        if self.gpus is not None and len(self.gpus) < self.device_count():
            raise incompatible(
                f"the backend needs {self.device_count()} GPU(s) (tensor × pipeline parallel) but gpus lists "
                f"{len(self.gpus)}",
                "list more GPUs or lower the parallelism",
            )
        return self

    def device_count(self) -> int:
        """GPUs this experiment measures: tensor × pipeline parallel, else the pinned list, else 1."""
        if self.backend == "vllm" and self.vllm is not None:
            e = self.vllm.engine
            return (e.tensor_parallel_size or 1) * (e.pipeline_parallel_size or 1)
        if self.backend == "tensorrt" and self.tensorrt is not None:
            return (self.tensorrt.tp_size or 1) * (self.tensorrt.pp_size or 1)
        return len(self.gpus) if self.gpus else 1

    @field_validator("passthrough_kwargs")
    @classmethod
    def _sorted_kwargs(cls, v: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        # key order must not change the measurement hash: store mappings sorted
        return _sorted_mapping(v) if v is not None else None

    def measurement_config_hash(self) -> str:
        """SHA-256[:16] of the fields that define the measurement (not `gpus`, paths or timing gaps).

        The serialisation is canonical: fields in declaration order, free-form mappings sorted by key.
        Local inputs (model, dataset, adapter, engine) count by content, not by path
        (`llenergymeasure.schemas.identity`): the same study in two directories has the same hashes.
        """
        exclude = set(OPERATIONAL_FIELDS)
        if self.model_revision is None:  # unset: the hash of every config written before the field existed
            exclude.add("model_revision")
        payload = self.model_dump_json(exclude=exclude)
        identities = self._local_identities()
        if identities:
            data = json.loads(payload)
            for keys, identity in identities:
                node = data
                for key in keys[:-1]:
                    node = node[key]
                node[keys[-1]] = identity
            payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _local_identities(self) -> list[tuple[tuple[str, ...], str]]:
        """(path in the dumped config, content identity) of every local input."""
        from llenergymeasure.schemas.identity import content_identity

        candidates: list[tuple[tuple[str, ...], str]] = [(("model",), self.model)]
        if isinstance(self.dataset, str) and self.dataset not in BUILTIN_DATASETS:
            candidates.append((("dataset",), self.dataset))
        if self.lora is not None:
            candidates.append((("lora", "adapter"), self.lora.adapter))
        if self.tensorrt is not None and self.tensorrt.engine_path:
            candidates.append((("tensorrt", "engine_path"), self.tensorrt.engine_path))
        found = []
        for keys, value in candidates:
            identity = content_identity(value)
            if identity != value:
                found.append((keys, identity))
        return found

    @property
    def decoding_mode(self) -> Literal["greedy", "sampling"]:
        return self.decoder.decoding_mode

    def label(self) -> str:
        """Short human-readable label, e.g. ``gpt2 · pytorch · bf16 · bs4``."""
        parts = [self.model.rstrip("/").split("/")[-1], self.backend, self.precision]
        if self.pytorch and self.pytorch.batch_size:
            parts.append(f"bs{self.pytorch.batch_size}")
        return " · ".join(parts)


def _sorted_mapping(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_mapping(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_mapping(v) for v in value]
    return value
