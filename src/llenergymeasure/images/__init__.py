"""The harness images: their references, their pinned bases and what each one carries.

The one place that says

- how an image is named: ``[<registry>/]llenergymeasure/<backend>:<version>-<variant>``,
  the variant being ``cuda<major>`` (the CUDA major of the image's base) or ``cpu``;
  the default config, ``llem config``, pre-flight hints, ``llem image``, the
  Makefile and the image workflow all ask `image_ref`;
- which base each image is built ``FROM`` and which framework versions that
  base brings (`BASES`; the Dockerfiles' ``ARG BASE_IMAGE`` defaults and the
  docs table must agree, a unit test checks it);
- which optional features each image carries (`CAPABILITIES`), written into the
  image as the label `CAPABILITIES_LABEL` at build time and checked by host
  pre-flight against what a config needs.

The Dockerfiles live next to this module and ship in the wheel, so a
pip-installed host can build the images (``llem image build``):
``pytorch/Dockerfile`` installs torch from the project's extras; the engine
backends (`ENGINE_BACKENDS`), whose base brings the engine, share
``engine/Dockerfile``, told the backend, the engine's distribution and the base
by `engine_build_args` (it has no defaults of its own to drift).

Pure data and string functions, standard library only: the host imports it
without docker, and the harness could too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llenergymeasure._version import __version__

#: the repository namespace every image lives under (the card's ``llenergymeasure/<backend>``)
NAMESPACE: Final = "llenergymeasure"
#: image label listing the optional features the image carries (comma-separated capability names)
CAPABILITIES_LABEL: Final = "io.llenergymeasure.capabilities"
#: image label naming the backend
BACKEND_LABEL: Final = "io.llenergymeasure.backend"
CPU_VARIANT: Final = "cpu"
#: the backends with an image
IMAGE_BACKENDS: Final[tuple[str, ...]] = ("pytorch", "vllm", "tensorrt")


@dataclass(frozen=True)
class Base:
    """The official runtime image a harness image is built on, and what it brings."""

    image: str
    framework: str  # the distribution the backend imports (torch, vllm, tensorrt_llm)
    framework_version: str
    cuda: str  # CUDA runtime version of the base, "" for CPU

    @property
    def cuda_major(self) -> int | None:
        return int(self.cuda.split(".")[0]) if self.cuda else None


#: GPU bases, pinned to the framework versions the backend adapters were written against
#: (vLLM 0.33 engine API, TensorRT-LLM 1.2 LLM API, torch 2.13 as in the CPU image).
#: vLLM's default image of a release is a CUDA 13 build; its ``-cu129`` build of the same
#: release runs on CUDA 12 drivers. TensorRT-LLM 1.2 releases are CUDA 13 builds only.
BASES: Final[dict[str, Base]] = {
    "pytorch": Base("pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime", "torch", "2.13.0", "12.6"),
    "vllm": Base("vllm/vllm-openai:v0.33.0-cu129", "vllm", "0.33.0", "12.9"),
    "tensorrt": Base("nvcr.io/nvidia/tensorrt-llm/release:1.2.1", "tensorrt_llm", "1.2.1", "13.0"),
}
#: the CPU test image's base is made locally (scripts/bootstrap_base_image.sh); torch comes from the wheelhouse
CPU_BASE: Final = Base("llenergymeasure/base:bookworm", "torch", "2.13.0", "")

#: optional feature (the module a harness imports to use it) → the project extra that installs it
CAPABILITY_EXTRAS: Final[dict[str, str]] = {
    "zeus": "zeus",
    "codecarbon": "codecarbon",
    "peft": "lora",
    "bitsandbytes": "quantization",
    "flash_attn": "flash-attn",
}

#: the project extras installed into each image, by (backend, variant kind); the image's
#: capabilities follow from them. The vLLM and TensorRT-LLM images never get their framework's
#: extra (the base brings the framework). flash-attn is in none: the package index has only its
#: source distribution (an hour-long CUDA compile), no wheel for the pinned torch. bitsandbytes
#: needs a GPU, so the CPU image leaves it out.
IMAGE_EXTRAS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("pytorch", "gpu"): ("pytorch", "zeus", "codecarbon", "lora", "quantization"),
    ("pytorch", "cpu"): ("pytorch", "zeus", "codecarbon", "lora"),
    ("vllm", "gpu"): ("zeus", "codecarbon"),
    ("tensorrt", "gpu"): ("zeus", "codecarbon"),
}


def _kind(variant: str) -> str:
    return "cpu" if variant == CPU_VARIANT else "gpu"


def extras_of(backend: str, variant: str) -> tuple[str, ...]:
    """The project extras the image of (`backend`, `variant`) installs."""
    return IMAGE_EXTRAS[(backend, _kind(variant))]


def capabilities_of(backend: str, variant: str) -> frozenset[str]:
    """The optional features the image of (`backend`, `variant`) carries."""
    extras = IMAGE_EXTRAS.get((backend, _kind(variant)), ())
    return frozenset(cap for cap, extra in CAPABILITY_EXTRAS.items() if extra in extras)


def capabilities_label_value(backend: str, variant: str) -> str:
    return ",".join(sorted(capabilities_of(backend, variant)))


def parse_capabilities(label: str | None) -> frozenset[str]:
    return frozenset(c.strip() for c in (label or "").split(",") if c.strip())


def images_with(capability: str, registry: str | None = None) -> list[str]:
    """The default references of every image that carries `capability` (GPU builds first)."""
    found = []
    for (backend, kind), extras in IMAGE_EXTRAS.items():
        if CAPABILITY_EXTRAS.get(capability) in extras:
            variant = CPU_VARIANT if kind == "cpu" else gpu_variant(backend)
            found.append(image_ref(backend, variant, registry))
    return found


def gpu_variant(backend: str) -> str:
    """``cuda<major>`` of `backend`'s pinned base."""
    return f"cuda{BASES[backend].cuda_major}"


def host_variant(backend: str, gpu_count: int) -> str:
    """The variant a host runs: the GPU build where NVIDIA GPUs are visible, else ``cpu``."""
    return gpu_variant(backend) if gpu_count > 0 else CPU_VARIANT


def image_ref(backend: str, variant: str, registry: str | None = None, version: str = __version__) -> str:
    """``[<registry>/]llenergymeasure/<backend>:<version>-<variant>``.

    `registry` is a host with an optional path (a mirror or private registry);
    empty or None means the default registry of the Docker engine.
    """
    prefix = f"{registry.strip().rstrip('/')}/" if registry and registry.strip() else ""
    return f"{prefix}{NAMESPACE}/{backend}:{version}-{variant}"


#: backends whose base image brings the inference engine; they share one Dockerfile
ENGINE_BACKENDS: Final[tuple[str, ...]] = ("vllm", "tensorrt")


def dockerfile(backend: str) -> Path:
    """The Dockerfile of `backend`'s image, shipped inside the package."""
    folder = "engine" if backend in ENGINE_BACKENDS else backend
    return Path(__file__).parent / folder / "Dockerfile"


def engine_build_args(backend: str) -> dict[str, str]:
    """The build arguments that make ``engine/Dockerfile`` the image of `backend` ({} for the others)."""
    if backend not in ENGINE_BACKENDS:
        return {}
    return {"BACKEND": backend, "FRAMEWORK": BASES[backend].framework}
