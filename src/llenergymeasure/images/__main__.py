"""``python -m llenergymeasure.images FIELD BACKEND [VARIANT] [REGISTRY]``: one fact of the image catalog.

For the Makefile and shell scripts, which must not write an image reference,
base or extra list a second time. FIELD: ``ref``, ``base``, ``variant``,
``extras`` (comma-separated), ``capabilities`` (the label value). VARIANT
defaults to the backend's GPU build (``cuda<major>``); ``cpu`` names the CPU
test image. Exit code 2 on a bad argument.
"""

from __future__ import annotations

import sys

from llenergymeasure.images import (
    BASES,
    CPU_BASE,
    CPU_VARIANT,
    IMAGE_BACKENDS,
    capabilities_label_value,
    extras_of,
    gpu_variant,
    image_ref,
)

FIELDS = ("ref", "base", "variant", "extras", "capabilities")


def answer(field: str, backend: str, variant: str | None = None, registry: str | None = None) -> str:
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}; choose one of {', '.join(FIELDS)}")
    if backend not in IMAGE_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(IMAGE_BACKENDS)}")
    variant = variant or gpu_variant(backend)
    if variant == CPU_VARIANT and backend != "pytorch":
        raise ValueError(f"backend {backend} has no CPU image (only pytorch does)")
    if variant not in (CPU_VARIANT, gpu_variant(backend)):
        raise ValueError(f"backend {backend} is built as {gpu_variant(backend)} or cpu, not {variant}")
    if field == "ref":
        return image_ref(backend, variant, registry)
    if field == "base":
        return CPU_BASE.image if variant == CPU_VARIANT else BASES[backend].image
    if field == "variant":
        return variant
    if field == "extras":
        return ",".join(extras_of(backend, variant))
    return capabilities_label_value(backend, variant)


def main(argv: list[str]) -> int:
    if not 2 <= len(argv) <= 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print(answer(*argv))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
