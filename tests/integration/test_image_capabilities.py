"""The CPU image carries what its capabilities label promises, and pre-flight reads that label."""

from __future__ import annotations

from typing import Any

import pytest

from llenergymeasure.images import CAPABILITIES_LABEL, capabilities_of, parse_capabilities

pytestmark = pytest.mark.docker


def test_cpu_image_imports_zeus_codecarbon_and_peft(docker_client: Any, cpu_image: str) -> None:
    label = parse_capabilities((docker_client.images.get(cpu_image).labels or {}).get(CAPABILITIES_LABEL))
    assert label == capabilities_of("pytorch", "cpu") == {"zeus", "codecarbon", "peft"}
    # a real import, not find_spec: the packages and their dependencies load in the image
    script = "import zeus, codecarbon, peft; print('imported', zeus.__name__, codecarbon.__name__, peft.__version__)"
    out = docker_client.containers.run(
        cpu_image, entrypoint=["python", "-c", script], remove=True, network_mode="none", stdout=True, stderr=False
    )
    # stdout only: codecarbon logs a warning about AMD tooling on stderr when imported
    assert out.decode().strip().splitlines()[-1].startswith("imported zeus codecarbon ")
