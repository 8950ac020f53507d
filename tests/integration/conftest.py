"""Fixtures for the integration tests on a real Docker engine with the CPU image.

These tests must run, not skip: when the engine is unreachable or the image
cannot be built, the session fixtures *fail* with the command that fixes it.

- ``cpu_image``: runs ``make image-cpu`` (a no-op when the image already matches
  the sources; see scripts/build_image.sh), so the image always carries the
  harness of this checkout. ``LLEM_TEST_SKIP_IMAGE_BUILD=1`` uses an existing image
  as is (quicker local iterations).
- ``tiny_model``: a random-weight Llama + tokenizer built on the host with
  `llenergymeasure.harness.tiny_model`, world-readable so a container running as
  another uid can read it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import CPU_IMAGE

from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION

REPO = Path(__file__).resolve().parents[2]
SHARED_DATASET = REPO.parent / "shared" / "datasets" / "aienergyscore.jsonl"


def _image_protocol(client: Any) -> str | None:
    import docker.errors

    try:
        return str((client.images.get(CPU_IMAGE).labels or {}).get(PROTOCOL_LABEL))
    except docker.errors.ImageNotFound:
        return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:
        pytest.fail(
            f"the integration tests need a running Docker engine and none answers ({e}); "
            "start one: scripts/install_docker_engine.sh (or `setsid dockerd &`), then check `docker info`",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture(scope="session")
def cpu_image(docker_client: Any) -> str:
    skip_build = os.environ.get("LLEM_TEST_SKIP_IMAGE_BUILD") and _image_protocol(docker_client) is not None
    if not skip_build:
        if not (REPO / "Makefile").is_file() or shutil.which("make") is None:
            if _image_protocol(docker_client) is None:
                pytest.fail(
                    f"image {CPU_IMAGE} is missing and there is no `make` / Makefile to build it", pytrace=False
                )
        else:
            proc = subprocess.run(["make", "image-cpu"], cwd=REPO, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                pytest.fail(
                    f"`make image-cpu` failed (exit {proc.returncode}); the integration tests need {CPU_IMAGE}.\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False,
                )
    protocol = _image_protocol(docker_client)
    if protocol != str(PROTOCOL_VERSION):
        pytest.fail(
            f"{CPU_IMAGE} carries protocol {protocol!r}, expected {PROTOCOL_VERSION}; rebuild it", pytrace=False
        )
    return CPU_IMAGE


def _world_readable(root: Path) -> None:
    """Let a container running as any uid read `root` (a bind mount ignores the host parents' modes)."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llenergymeasure.harness.tiny_model import build_tiny_llama

    model = build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")
    _world_readable(model)
    return model


@pytest.fixture(scope="session")
def dataset_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An XDG cache root whose ``llenergymeasure/datasets`` holds the prepared aienergyscore prompts."""
    if not SHARED_DATASET.is_file():
        pytest.fail(f"{SHARED_DATASET} is missing: the default-dataset test reads the shared copy", pytrace=False)
    root = tmp_path_factory.mktemp("xdg-cache")
    target = root / "llenergymeasure" / "datasets"
    target.mkdir(parents=True)
    shutil.copy(SHARED_DATASET, target / "aienergyscore.jsonl")
    _world_readable(root)
    return root
