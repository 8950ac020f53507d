"""Inference backends behind `InferenceBackend`, chosen by name.

`create_backend` imports the chosen backend's module by name, so choosing
pytorch never imports the vLLM or TensorRT-LLM modules (and those modules import
their framework only inside `load`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from llenergymeasure.errors import BackendError
from llenergymeasure.harness.backends.base import InferenceBackend
from llenergymeasure.schemas.config.experiment import ExperimentConfig

#: backend name → (module, class)
BACKEND_CLASSES: dict[str, tuple[str, str]] = {
    "pytorch": ("llenergymeasure.harness.backends.pytorch", "PyTorchBackend"),
    "vllm": ("llenergymeasure.harness.backends.vllm", "VLLMBackend"),
    "tensorrt": ("llenergymeasure.harness.backends.tensorrt", "TensorRTBackend"),
}


def create_backend(config: ExperimentConfig, device_ids: Sequence[int]) -> InferenceBackend[Any]:
    """The backend `config.backend` names, constructed but not loaded (no framework imported yet)."""
    try:
        module_name, class_name = BACKEND_CLASSES[config.backend]
    except KeyError as e:
        raise BackendError(f"unknown backend {config.backend!r}", fix=f"use one of {sorted(BACKEND_CLASSES)}") from e
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as e:
        raise BackendError(
            f"the {config.backend} backend is not available in this installation: {e}",
            backend=config.backend,
            fix=f"install llenergymeasure[{config.backend}] or use its image",
        ) from e
    backend: InferenceBackend[Any] = cls(config, getattr(config, config.backend), list(device_ids))
    return backend
