"""One source of truth for the images: references, pinned bases, capabilities; the workflow pushes what the default pulls."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from orch_fake_docker import FakeDockerClient

from llenergymeasure._version import __version__
from llenergymeasure.images import (
    BASES,
    CAPABILITY_EXTRAS,
    ENGINE_BACKENDS,
    IMAGE_BACKENDS,
    IMAGE_EXTRAS,
    capabilities_of,
    dockerfile,
    engine_build_args,
    gpu_variant,
    image_ref,
    images_with,
)
from llenergymeasure.orchestrator.cli import main
from llenergymeasure.orchestrator.preflight import check_image
from llenergymeasure.orchestrator.runners import resolve_runner
from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions
from llenergymeasure.orchestrator.user_config import load_user_config

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / ".github" / "workflows" / "images.yml"


def _cli_ref(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["image", "ref", *args]) == 0
    return capsys.readouterr().out.strip()


def _make_ref(backend: str, registry: str = "") -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "image-ref", f"BACKEND={backend}", f"REGISTRY={registry}"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "MAKEFLAGS": ""},
    )  # fmt: skip
    return done.stdout.strip()


def _workflow_ref(backend: str, registry: str, tmp_path: Path) -> str:
    """Run the workflow's own 'image reference' step here, with the env GitHub would give it."""
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["build"]
    step = next(s for s in job["steps"] if s.get("id") == "ref")
    out = tmp_path / "github_output"
    out.write_text("")
    env = {**os.environ, "MAKEFLAGS": "", "BACKEND": backend, "REGISTRY": registry, "GITHUB_OUTPUT": str(out)}
    subprocess.run(["bash", "-euo", "pipefail", "-c", step["run"]], cwd=ROOT, env=env, check=True)
    values = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return values["image"]


@pytest.mark.parametrize("registry", ["", "mirror.internal:5000/team"])
def test_config_default_cli_hint_make_and_workflow_name_the_same_image(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.yaml").write_text("")
    env = {"LLEM_CONFIG": str(tmp_path / "empty.yaml"), **({"LLEM_REGISTRY": registry} if registry else {})}
    user = load_user_config(env=env)
    for backend in IMAGE_BACKENDS:
        default = resolve_runner(backend, user, gpu_count=1).image
        assert default is not None
        # written out by hand: the card's name, the package version, the base's CUDA major
        major = {"pytorch": 12, "vllm": 12, "tensorrt": 13}[backend]
        prefix = f"{registry}/" if registry else ""
        assert default == f"{prefix}llenergymeasure/{backend}:{__version__}-cuda{major}"
        assert _cli_ref(capsys, backend, "--registry", registry) == default
        hint = check_image(FakeDockerClient(), default, docker_exceptions())[0].fix
        assert f"docker pull {default}`" in (hint or "")
        assert _make_ref(backend, registry) == default
        assert _workflow_ref(backend, registry, tmp_path) == default


def test_workflow_pushes_only_the_reference_it_asked_the_project_for() -> None:
    text = WORKFLOW.read_text()
    assert "llenergymeasure/" not in text.replace("llenergymeasure/images", "")  # no namespace written twice
    assert not re.search(r"\b[a-z0-9-]+\.(io|com)\b", text), "no registry host is written in the workflow"
    job = yaml.safe_load(text)["jobs"]["build"]
    pushes = [s for s in job["steps"] if "push" in str(s.get("run", ""))]
    assert pushes
    assert all("steps.ref.outputs.image" in str(s.get("env", {})) or "make push-image" in s["run"] for s in pushes)


def test_registry_env_beats_user_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("runners:\n  registry: files.example/ns\n")
    user = load_user_config(env={"LLEM_CONFIG": str(cfg), "LLEM_REGISTRY": "env.example/ns"})
    assert user.image_for("vllm", "cuda12") == f"env.example/ns/llenergymeasure/vllm:{__version__}-cuda12"
    assert user.source_of("runners.registry") == "env:LLEM_REGISTRY"
    assert image_ref("pytorch", "cpu", "host:5000/") == f"host:5000/llenergymeasure/pytorch:{__version__}-cpu"


# ---------------------------------------------------------------- version skew


def _docs_table() -> dict[str, tuple[str, str, str]]:
    """backend → (base image, framework version, CUDA) from the table in docs/images.md."""
    rows = {}
    for line in (ROOT / "docs" / "images.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] in IMAGE_BACKENDS:
            rows[cells[0]] = (cells[1], cells[3], cells[4])
    return rows


def test_dockerfile_bases_docs_table_and_catalog_agree() -> None:
    table = _docs_table()
    assert set(table) == set(IMAGE_BACKENDS)
    for backend, base in BASES.items():
        text = dockerfile(backend).read_text()
        if backend in ENGINE_BACKENDS:  # the shared engine Dockerfile has no default to drift: the catalog passes it
            assert re.findall(r"^ARG BASE_IMAGE(\S*)$", text, re.M) == [""], f"{dockerfile(backend)} ARG BASE_IMAGE"
        else:
            args = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
            assert args == [base.image], f"{dockerfile(backend)} ARG BASE_IMAGE default"
        assert table[backend] == (base.image, base.framework_version, base.cuda), f"docs/images.md row {backend}"


def test_engine_backends_share_one_dockerfile_told_their_backend_and_framework() -> None:
    assert dockerfile("vllm") == dockerfile("tensorrt") != dockerfile("pytorch")
    text = dockerfile("vllm").read_text()
    for arg in ("BACKEND", "FRAMEWORK"):
        assert re.search(rf"^ARG {arg}$", text, re.M), arg
    assert 'io.llenergymeasure.backend="${BACKEND}"' in text
    assert engine_build_args("tensorrt") == {"BACKEND": "tensorrt", "FRAMEWORK": "tensorrt_llm"}
    assert engine_build_args("vllm") == {"BACKEND": "vllm", "FRAMEWORK": "vllm"}
    assert engine_build_args("pytorch") == {}


def test_bases_are_the_versions_the_adapters_target() -> None:
    # vLLM 0.33 engine API, TensorRT-LLM 1.2 LLM API, torch 2.13 as in the CPU image (Makefile TORCH_CPU)
    assert BASES["vllm"].framework_version.startswith("0.33.")
    assert BASES["tensorrt"].framework_version.startswith("1.2.")
    torch_cpu = re.search(r"^TORCH_CPU \?= torch==(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert torch_cpu is not None
    assert BASES["pytorch"].framework_version == torch_cpu.group(1)
    assert [gpu_variant(b) for b in IMAGE_BACKENDS] == ["cuda12", "cuda12", "cuda13"]


# ---------------------------------------------------------------- capabilities


def test_every_capability_is_a_project_extra_that_installs_its_package() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for capability, extra in CAPABILITY_EXTRAS.items():
        dists = [re.split(r"[<>=\[ ]", req)[0].replace("-", "_") for req in extras[extra]]
        assert capability in dists, f"extra {extra} installs {capability}"
    for key, names in IMAGE_EXTRAS.items():
        assert set(names) <= set(extras), key


def test_image_capabilities_as_the_issue_asks() -> None:
    assert {"zeus", "codecarbon"} <= capabilities_of("vllm", "cuda12")
    assert {"zeus", "codecarbon"} <= capabilities_of("tensorrt", "cuda13")
    assert capabilities_of("pytorch", "cuda12") == {"zeus", "codecarbon", "peft", "bitsandbytes"}
    assert capabilities_of("pytorch", "cpu") == {"zeus", "codecarbon", "peft"}
    assert images_with("bitsandbytes") == [f"llenergymeasure/pytorch:{__version__}-cuda12"]
    assert images_with("flash_attn") == []


def test_images_module_cli(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "llenergymeasure.images", *args], capture_output=True, text=True)

    assert run("extras", "pytorch", "cpu").stdout.strip() == "pytorch,zeus,codecarbon,lora"
    assert run("capabilities", "vllm").stdout.strip() == "codecarbon,zeus"
    assert run("base", "tensorrt").stdout.strip() == BASES["tensorrt"].image
    bad = run("ref", "vllm", "cpu")
    assert bad.returncode == 2
    assert "no CPU image" in bad.stderr


@pytest.mark.parametrize("backend", IMAGE_BACKENDS)
def test_dockerfile_capability_check_fails_on_a_missing_package(backend: str) -> None:
    # the RUN line each Dockerfile uses to hold its capabilities label to what the image can import
    text = dockerfile(backend).read_text()
    match = re.search(r'python3? -c "(import importlib\.util as u, sys;[^"]+)" "\$\{CAPABILITIES\}"', text)
    assert match is not None
    script = match.group(1)
    ok = subprocess.run([sys.executable, "-c", script, "json,os"], capture_output=True, text=True)
    assert ok.returncode == 0
    missing = subprocess.run([sys.executable, "-c", script, "json,no_such_module_here"], capture_output=True, text=True)
    assert missing.returncode != 0
    assert "CAPABILITIES lists ['no_such_module_here']" in missing.stderr
