"""`llem image pull|build` through the fake Docker client: progress, errors with a fix, the build context."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_fake_docker import FakeDockerClient

from llenergymeasure._version import __version__
from llenergymeasure.images import BASES, CPU_BASE
from llenergymeasure.orchestrator.image_ops import (
    ImageError,
    build_image,
    plan_build,
    pull_image,
    requirements_for,
)
from llenergymeasure.schemas.job import PROTOCOL_VERSION

REF = f"llenergymeasure/vllm:{__version__}-cuda12"


def test_pull_reports_one_line_per_layer_state_and_adds_the_image() -> None:
    client = FakeDockerClient()
    client.api.pull_events[REF] = [
        {"status": "Pulling from llenergymeasure/vllm", "id": __version__ + "-cuda12"},
        {"status": "Downloading", "id": "aa", "progressDetail": {"current": 1, "total": 10}},
        {"status": "Downloading", "id": "aa", "progressDetail": {"current": 5, "total": 10}},
        {"status": "Downloading", "id": "bb", "progressDetail": {"current": 1, "total": 10}},
        {"status": "Pull complete", "id": "aa"},
        {"status": "Pull complete", "id": "bb"},
        {"status": "Status: Downloaded newer image for " + REF},
    ]
    lines: list[str] = []
    pull_image(client, REF, lines.append)
    # 7 events, but the repeated "Downloading" of layer aa is one line: 1 header + 6
    assert lines[0] == f"pulling {REF}"
    assert len(lines) == 7
    assert "  aa: Downloading" in lines
    assert "  aa: Pull complete" in lines
    assert client.images.get(REF) is not None


def test_pull_error_names_image_and_fix() -> None:
    client = FakeDockerClient()
    with pytest.raises(ImageError) as err:
        pull_image(client, REF, lambda _: None)
    assert err.value.image == REF
    assert "LLEM_REGISTRY" in err.value.fix
    assert "llem image build vllm" in err.value.fix
    client.api.pull_events[REF] = [{"status": "Downloading", "id": "aa"}, {"error": "toomanyrequests: rate limit"}]
    with pytest.raises(ImageError, match="rate limit"):
        pull_image(client, REF, lambda _: None)


def test_build_uses_the_packaged_dockerfile_pinned_base_and_declares_capabilities() -> None:
    client = FakeDockerClient()
    plan = plan_build("pytorch", "cuda12", registry="mirror.internal/team")
    lines: list[str] = []
    tag = build_image(client, plan, lines.append)
    assert tag == f"mirror.internal/team/llenergymeasure/pytorch:{__version__}-cuda12"
    kwargs = client.api.builds[0]
    assert kwargs["tag"] == tag
    args = kwargs["buildargs"]
    assert args["BASE_IMAGE"] == BASES["pytorch"].image
    assert args["EXTRAS"] == "pytorch,zeus,codecarbon,lora,quantization"
    assert args["CAPABILITIES"] == "bitsandbytes,codecarbon,peft,zeus"
    assert (args["VERSION"], args["PROTOCOL"], args["PIP_INDEX_ARGS"]) == (__version__, str(PROTOCOL_VERSION), "")
    context = client.api.build_contexts[0]
    assert context["Dockerfile"].count("ARG BASE_IMAGE=") == 1
    # no project wheel and no wheelhouse: the requirement list comes from the installed metadata
    requirements = context["wheelhouse/deps/requirements.txt"]
    assert "pydantic" in requirements
    assert "peft" in requirements
    assert "bitsandbytes" in requirements
    assert not any(k.startswith("wheelhouse/project/") for k in context)
    assert "Successfully built 0123abcd" in lines


def test_engine_image_build_passes_backend_framework_and_catalog_base_to_the_shared_dockerfile() -> None:
    client = FakeDockerClient()
    build_image(client, plan_build("tensorrt", "cuda13"), lambda _: None)
    args = client.api.builds[0]["buildargs"]
    assert (args["BASE_IMAGE"], args["BACKEND"], args["FRAMEWORK"]) == (
        BASES["tensorrt"].image,
        "tensorrt",
        "tensorrt_llm",
    )
    assert args["CAPABILITIES"] == "codecarbon,zeus"
    assert "ARG BACKEND" in client.api.build_contexts[0]["Dockerfile"]
    # the pytorch Dockerfile declares no BACKEND/FRAMEWORK: it is not passed build arguments it would not consume
    build_image(client, plan_build("pytorch", "cuda12"), lambda _: None)
    assert "BACKEND" not in client.api.builds[1]["buildargs"]


def test_build_from_a_wheelhouse_offline_and_with_another_base(tmp_path: Path) -> None:
    house = tmp_path / "wh"
    (house / "project").mkdir(parents=True)
    (house / "deps").mkdir()
    (house / "project" / f"llenergymeasure-{__version__}-py3-none-any.whl").write_bytes(b"PK")
    (house / "deps" / "requirements.txt").write_text("pydantic\n")
    client = FakeDockerClient()
    plan = plan_build("pytorch", "cpu", base="my/base:1", wheelhouse=house, offline=True)
    build_image(client, plan, lambda _: None)
    args = client.api.builds[0]["buildargs"]
    assert (args["BASE_IMAGE"], args["PIP_INDEX_ARGS"]) == ("my/base:1", "--no-index")
    assert args["EXTRAS"] == "pytorch,zeus,codecarbon,lora"
    context = client.api.build_contexts[0]
    assert context["wheelhouse/deps/requirements.txt"] == "pydantic\n"
    assert f"wheelhouse/project/llenergymeasure-{__version__}-py3-none-any.whl" in context
    assert plan_build("pytorch", "cpu").base == CPU_BASE.image


def test_offline_without_wheelhouse_and_a_failed_build_are_errors() -> None:
    with pytest.raises(ImageError, match="wheelhouse"):
        plan_build("vllm", "cuda12", offline=True)
    client = FakeDockerClient()
    client.api.build_events = [{"stream": "Step 1/9 : FROM x\n"}, {"error": "pull access denied for x"}]
    with pytest.raises(ImageError, match="pull access denied") as err:
        build_image(client, plan_build("vllm", "cuda12"), lambda _: None)
    assert "--base" in err.value.fix


def test_requirements_for_keeps_base_deps_and_chosen_extras_only() -> None:
    requires = ["pydantic>=2", 'zeus>=0.11; extra == "zeus"', 'vllm>=0.8; extra == "vllm"', "tqdm"]
    assert requirements_for(["zeus"], requires) == ["pydantic>=2", "zeus>=0.11", "tqdm"]


def test_cli_errors_name_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    from llenergymeasure.orchestrator.cli import main

    assert main(["image", "build", "vllm", "--offline"]) == 1  # refused before any Docker call
    err = capsys.readouterr().err
    assert "an offline build needs a wheelhouse" in err
    assert "fix: pass --wheelhouse DIR" in err
    assert main(["image", "ref", "tensorrt", "--variant", "cpu"]) == 2
    assert main(["self-test"]) == 2
    assert "pass --gpu" in capsys.readouterr().err
