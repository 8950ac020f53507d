"""Sub-configs of an experiment: decoder, warmup, baseline, energy, dataset, LoRA."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from llenergymeasure.schemas._base import ConfigModel
from llenergymeasure.schemas.config.text import check_path

#: upper bounds: far above any real use, low enough to catch a typo or a runaway value
MAX_TOKENS = 1_048_576  # tokens per prompt (input or output)
MAX_WARMUP_PROMPTS = 10_000  # count
MAX_SECONDS_SHORT = 3600.0  # one hour
MAX_BASELINE_TTL_SECONDS = 30 * 86_400.0  # thirty days

DecoderPreset = Literal["deterministic", "standard", "creative", "factual"]

#: values a preset fills in for fields the user did not set
DECODER_PRESETS: dict[str, dict[str, object]] = {
    "deterministic": {"do_sample": False, "temperature": 0.0},
    "standard": {"do_sample": True, "temperature": 1.0, "top_p": 0.95, "top_k": 50},
    "creative": {"do_sample": True, "temperature": 1.2, "top_p": 0.95, "top_k": 0},
    "factual": {"do_sample": True, "temperature": 0.3, "top_p": 0.9, "top_k": 40},
}


class DecoderConfig(ConfigModel):
    """How output tokens are chosen. Greedy (deterministic) by default, for reproducible token counts."""

    preset: DecoderPreset | None = Field(
        None,
        description="Named bundle of sampling settings; fields you set explicitly win over the preset.",
    )
    do_sample: bool = Field(False, description="Sample from the distribution (true) or decode greedily (false).")
    temperature: float = Field(
        1.0, ge=0.0, le=10.0, description="Softmax temperature (unitless); 0 means greedy whatever do_sample says."
    )
    top_k: int = Field(50, ge=0, le=1_000_000, description="Sample among the k most likely tokens; 0 disables top-k.")
    top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="Nucleus sampling: smallest set with this cumulative probability."
    )
    min_p: float | None = Field(
        None, ge=0.0, le=1.0, description="Drop tokens below min_p × the top token's probability; null = off."
    )
    repetition_penalty: float = Field(
        1.0, gt=0.0, le=100.0, description="Penalty factor for repeated tokens; 1.0 = none."
    )
    min_new_tokens: int | None = Field(
        None,
        ge=0,
        le=MAX_TOKENS,
        description="Minimum number of output tokens before EOS may end a sequence; null = backend default.",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in DECODER_PRESETS:
            merged = dict(DECODER_PRESETS[str(data["preset"])])
            merged.update(data)
            return merged
        return data

    @property
    def decoding_mode(self) -> Literal["greedy", "sampling"]:
        """`greedy` when do_sample is off or temperature is 0, else `sampling`."""
        return "sampling" if self.do_sample and self.temperature > 0 else "greedy"


class WarmupConfig(ConfigModel):
    """Warm the GPU and the backend up before the measured window."""

    enabled: bool = Field(True, description="Run warmup prompts before the measured window.")
    n_warmup: int = Field(5, ge=0, le=MAX_WARMUP_PROMPTS, description="Number of full-length warmup prompts (count).")
    thermal_floor_seconds: float = Field(
        60.0,
        ge=0.0,
        le=MAX_SECONDS_SHORT,
        description="Minimum seconds of warm load before the window opens (keeps generating; never an idle sleep). "
        "0 is allowed and recorded as a warning.",
    )
    convergence_detection: bool = Field(
        False,
        description="Keep warming up until the per-prompt latency coefficient of variation drops below cv_threshold.",
    )
    cv_threshold: float = Field(
        0.05, gt=0.0, le=1.0, description="Target coefficient of variation (unitless fraction)."
    )
    window_size: PositiveInt = Field(
        5, le=MAX_WARMUP_PROMPTS, description="Number of most recent warmup latencies the CV is computed over."
    )
    min_prompts: PositiveInt = Field(
        5, le=MAX_WARMUP_PROMPTS, description="Minimum warmup prompts before convergence may be declared."
    )
    max_prompts: PositiveInt = Field(
        50, le=MAX_WARMUP_PROMPTS, description="Maximum warmup prompts when convergence detection is on."
    )

    @model_validator(mode="after")
    def _bounds(self) -> WarmupConfig:
        if self.min_prompts > self.max_prompts:
            raise ValueError(
                f"warmup.min_prompts ({self.min_prompts}) is larger than warmup.max_prompts ({self.max_prompts}); "
                "fix: raise max_prompts or lower min_prompts"
            )
        return self


class BaselineConfig(ConfigModel):
    """Idle power measured before the model loads, subtracted to give adjusted energy."""

    enabled: bool = Field(True, description="Measure (or reuse) the idle baseline power.")
    duration_seconds: float = Field(
        30.0, gt=0.0, le=MAX_SECONDS_SHORT, description="Length of the idle measurement, in seconds."
    )
    ttl_seconds: float = Field(
        3600.0,
        gt=0.0,
        le=MAX_BASELINE_TTL_SECONDS,
        description="A cached baseline older than this (seconds) is re-measured.",
    )


EnergyBackendName = Literal["auto", "nvml", "zeus", "codecarbon", "null"]


class EnergyConfig(ConfigModel):
    """Which energy meter reads the GPU, and the power timeline sampler."""

    backend: EnergyBackendName = Field(
        "auto",
        description="Energy meter: auto (zeus → nvml → codecarbon, first available), nvml, zeus, codecarbon, "
        "or null (no energy measurement).",
    )
    sample_interval_ms: int = Field(
        100, ge=10, le=10_000, description="Power timeline sampling interval, in milliseconds."
    )
    timeseries: bool = Field(True, description="Record the power timeline to timeseries.parquet.")
    cross_check_tolerance_pct: float = Field(
        10.0,
        gt=0.0,
        le=1000.0,
        description="Warn when the timeline's integrated energy differs from the counter delta by more than this (%).",
    )


class SyntheticDataset(ConfigModel):
    """Generated prompts of a fixed token length, for controlled input/output sizes."""

    synthetic: Literal[True] = Field(True, description="Marks the dataset as synthetic.")
    input_tokens: PositiveInt = Field(128, le=MAX_TOKENS, description="Length of every prompt, in tokens.")
    output_tokens: PositiveInt = Field(
        128,
        le=MAX_TOKENS,
        description="Output length per prompt, in tokens (min and max new tokens are both set to it).",
    )


class LoRAConfig(ConfigModel):
    """A LoRA adapter applied to the base model."""

    adapter: str = Field(min_length=1, description="Hub id or local path of the adapter.")
    merge: bool = Field(False, description="Merge the adapter into the base weights before measuring.")

    @field_validator("adapter")
    @classmethod
    def _adapter_path(cls, v: str) -> str:
        return check_path(v, "lora.adapter")
