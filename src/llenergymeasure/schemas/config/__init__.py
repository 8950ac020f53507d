"""Experiment configuration models."""

from llenergymeasure.schemas.config.backends import (
    PyTorchConfig,
    TensorRTConfig,
    VLLMConfig,
    VLLMEngineConfig,
    VLLMSamplingConfig,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.sections import (
    BaselineConfig,
    DecoderConfig,
    EnergyConfig,
    LoRAConfig,
    SyntheticDataset,
    WarmupConfig,
)

__all__ = [
    "BaselineConfig",
    "DecoderConfig",
    "EnergyConfig",
    "ExperimentConfig",
    "LoRAConfig",
    "PyTorchConfig",
    "SyntheticDataset",
    "TensorRTConfig",
    "VLLMConfig",
    "VLLMEngineConfig",
    "VLLMSamplingConfig",
    "WarmupConfig",
]
