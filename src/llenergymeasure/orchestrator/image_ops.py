"""Pull and build the harness images through the Docker SDK (``llem image pull|build``).

The Docker client is injected (tests pass a fake); progress goes to an
``on_line`` callback, one line per layer state change, not one per byte. A
failure becomes an `ImageError` naming the image and the fix, never an SDK
traceback.

A build works on a pip-installed host without a clone: the Dockerfile ships in
the package (`llenergymeasure.images.dockerfile`), the requirement list is read
from the installed distribution's metadata, and without a project wheel the
image installs the release of this version from the index. A clone passes
``project_wheel`` (the wheel of its own sources); an air-gapped host passes a
wheelhouse (``scripts/make_wheelhouse.sh``) and ``offline``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llenergymeasure._version import __version__
from llenergymeasure.errors import LLEMError
from llenergymeasure.images import (
    BASES,
    CPU_BASE,
    CPU_VARIANT,
    capabilities_label_value,
    dockerfile,
    engine_build_args,
    extras_of,
    image_ref,
)
from llenergymeasure.schemas.job import PROTOCOL_VERSION

LineSink = Callable[[str], None]


class ImageError(LLEMError):
    """An image could not be pulled or built."""

    def __init__(self, message: str, *, image: str, fix: str) -> None:
        super().__init__(message)
        self.image = image
        self.fix = fix

    def render(self) -> str:
        return f"{self.message}\n  fix: {self.fix}"


def pull_image(client: Any, ref: str, on_line: LineSink) -> None:
    """``docker pull ref`` with progress; raises `ImageError` when it fails."""
    from llenergymeasure.orchestrator.runners.docker_engine import engine_of
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions

    repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    on_line(f"pulling {ref}")
    last: dict[str, str] = {}
    try:
        for event in engine_of(client).pull(repository, tag):
            if event.get("error"):
                raise ImageError(f"cannot pull {ref}: {event['error']}", image=ref, fix=_pull_fix(ref))
            status, layer = str(event.get("status", "")), str(event.get("id", ""))
            if status and last.get(layer) != status:
                last[layer] = status
                on_line(f"  {layer + ': ' if layer else ''}{status}")
    except docker_exceptions() as e:
        raise ImageError(f"cannot pull {ref}: {_first_line(e)}", image=ref, fix=_pull_fix(ref)) from e


def _pull_fix(ref: str) -> str:
    return (
        "check the name and your network; for a mirror or private registry set LLEM_REGISTRY (or runners.registry "
        "in the user config) and `docker login` to it; or build the image here: "
        f"llem image build {_backend_of(ref)}"
    )


def _backend_of(ref: str) -> str:
    match = re.search(r"llenergymeasure/([a-z]+):", ref)
    return match.group(1) if match else "<backend>"


@dataclass(frozen=True)
class BuildPlan:
    """Everything one `docker build` of a harness image needs."""

    backend: str
    variant: str
    tag: str
    base: str
    extras: tuple[str, ...]
    capabilities: str
    project_wheel: Path | None = None
    wheelhouse: Path | None = None
    offline: bool = False

    def build_args(self) -> dict[str, str]:
        return {
            "BASE_IMAGE": self.base,
            "WHEELHOUSE": "wheelhouse",
            "PIP_INDEX_ARGS": "--no-index" if self.offline else "",
            "VERSION": __version__,
            "PROTOCOL": str(PROTOCOL_VERSION),
            "EXTRAS": ",".join(self.extras),
            "CAPABILITIES": self.capabilities,
            **engine_build_args(self.backend),
        }


def plan_build(
    backend: str,
    variant: str,
    *,
    registry: str | None = None,
    base: str | None = None,
    tag: str | None = None,
    project_wheel: Path | None = None,
    wheelhouse: Path | None = None,
    offline: bool = False,
) -> BuildPlan:
    default_base = CPU_BASE.image if variant == CPU_VARIANT else BASES[backend].image
    if offline and wheelhouse is None:
        raise ImageError(
            "an offline build needs a wheelhouse with every dependency wheel",
            image=tag or image_ref(backend, variant, registry),
            fix="pass --wheelhouse DIR filled by scripts/make_wheelhouse.sh",
        )
    return BuildPlan(
        backend=backend,
        variant=variant,
        tag=tag or image_ref(backend, variant, registry),
        base=base or default_base,
        extras=extras_of(backend, variant),
        capabilities=capabilities_label_value(backend, variant),
        project_wheel=project_wheel,
        wheelhouse=wheelhouse,
        offline=offline,
    )


def requirements_for(extras: Iterable[str], requires: list[str] | None = None) -> list[str]:
    """The project's base requirements plus those of `extras`, from the installed distribution's metadata."""
    if requires is None:
        from importlib.metadata import requires as dist_requires

        requires = dist_requires("llenergymeasure") or []
    wanted = set(extras)
    out = []
    for req in requires:
        spec, _, marker = req.partition(";")
        match = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if match is None or match.group(1) in wanted:
            out.append(spec.strip())
    return out


def prepare_context(plan: BuildPlan, context: Path) -> None:
    """Lay out the build context: the Dockerfile and ``wheelhouse/{project,deps}``."""
    shutil.copyfile(dockerfile(plan.backend), context / "Dockerfile")
    project, deps = context / "wheelhouse" / "project", context / "wheelhouse" / "deps"
    project.mkdir(parents=True)
    deps.mkdir(parents=True)
    if plan.wheelhouse is not None:
        for sub, dest in (("project", project), ("deps", deps)):
            for f in sorted((plan.wheelhouse / sub).glob("*")):
                if f.is_file():
                    _link_or_copy(f, dest / f.name)
    if plan.project_wheel is not None:
        for old in project.glob("llenergymeasure-*.whl"):
            old.unlink()
        _link_or_copy(plan.project_wheel, project / plan.project_wheel.name)
    if not (deps / "requirements.txt").is_file():
        lines = ["# written by llem image build from the installed distribution", *requirements_for(plan.extras)]
        (deps / "requirements.txt").write_text("\n".join(lines) + "\n")


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def build_image(client: Any, plan: BuildPlan, on_line: LineSink, *, scratch: Path | None = None) -> str:
    """Build `plan` into the engine behind `client`; returns the tag. Raises `ImageError` on failure."""
    from llenergymeasure.orchestrator.runners.docker_engine import engine_of
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions

    # next to the wheelhouse, so its wheels are hard-linked into the context rather than copied
    scratch = scratch or (plan.wheelhouse.parent if plan.wheelhouse is not None else None)
    with tempfile.TemporaryDirectory(prefix="llem-image-", dir=scratch) as tmp:
        context = Path(tmp)
        prepare_context(plan, context)
        on_line(f"building {plan.tag} FROM {plan.base} (extras: {','.join(plan.extras)})")
        try:
            stream = engine_of(client).build(
                path=str(context), dockerfile="Dockerfile", tag=plan.tag, buildargs=plan.build_args(), rm=True
            )
            for chunk in stream:
                if chunk.get("error"):
                    raise ImageError(
                        f"building {plan.tag} failed: {str(chunk['error']).strip()}",
                        image=plan.tag,
                        fix=f"read the build output above; the base is {plan.base} (choose another with --base)",
                    )
                text = str(chunk.get("stream", "")).rstrip()
                if text:
                    on_line(text)
        except docker_exceptions() as e:
            raise ImageError(
                f"building {plan.tag} failed: {_first_line(e)}", image=plan.tag, fix="check `docker info` and the base"
            ) from e
    return plan.tag


def checkout_wheel(out_dir: Path) -> Path:
    """Build the wheel of the source checkout this package runs from (an editable install of a clone)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        raise ImageError(
            f"--project-wheel needs a source checkout; {root} has no pyproject.toml",
            image="-",
            fix="drop --project-wheel to install this version from the index",
        )
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out_dir), str(root)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(out_dir.glob("llenergymeasure-*.whl"))
    if done.returncode != 0 or not wheels:
        raise ImageError(f"building the project wheel failed: {done.stderr.strip()[-500:]}", image="-", fix="see pip")
    return wheels[-1]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
