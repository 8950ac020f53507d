"""`llem image ref|pull|build`: the harness images by the names the default config uses."""

from __future__ import annotations

from pathlib import Path

import typer

from llenergymeasure.images import CPU_VARIANT, IMAGE_BACKENDS, gpu_variant

image_app = typer.Typer(
    name="image",
    help="The harness images: print a reference, pull the published images, or build one here.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

_VARIANT_HELP = "'cpu' for the CPU image (pytorch only); default: the backend's CUDA build (cuda<major>)."
_REGISTRY_HELP = "Registry prefix (host[:port][/path]); default: LLEM_REGISTRY, else runners.registry, else none."


def _check_backend(backend: str) -> None:
    if backend not in IMAGE_BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}; choose from {', '.join(IMAGE_BACKENDS)}")


def _variant(backend: str, variant: str | None) -> str:
    chosen = variant or gpu_variant(backend)
    if chosen not in (gpu_variant(backend), CPU_VARIANT) or (chosen == CPU_VARIANT and backend != "pytorch"):
        allowed = gpu_variant(backend) + (" or cpu" if backend == "pytorch" else "")
        raise typer.BadParameter(f"backend {backend} is built as {allowed}, not {chosen}")
    return chosen


def _registry(registry: str | None) -> str | None:
    if registry is not None:
        return registry or None
    from llenergymeasure.orchestrator.user_config import load_user_config

    return load_user_config().config.runners.registry


@image_app.command("ref")
def ref_command(
    backend: str = typer.Argument(..., help="pytorch, vllm or tensorrt."),
    variant: str | None = typer.Option(None, "--variant", help=_VARIANT_HELP),
    registry: str | None = typer.Option(None, "--registry", help=_REGISTRY_HELP),
) -> None:
    """Print the reference the default config uses for BACKEND's image."""
    from llenergymeasure.images import image_ref

    _check_backend(backend)
    typer.echo(image_ref(backend, _variant(backend, variant), _registry(registry)))


@image_app.command("pull")
def pull_command(
    backends: list[str] | None = typer.Argument(None, help="Backends to pull (default: all three GPU images)."),
    variant: str | None = typer.Option(None, "--variant", help=_VARIANT_HELP),
    registry: str | None = typer.Option(None, "--registry", help=_REGISTRY_HELP),
) -> None:
    """Pull the published images, with progress; then check their protocol label."""
    from llenergymeasure.images import image_ref
    from llenergymeasure.orchestrator.image_ops import ImageError, pull_image
    from llenergymeasure.orchestrator.preflight import check_image
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions

    chosen = list(backends or IMAGE_BACKENDS)
    for b in chosen:
        _check_backend(b)
    prefix = _registry(registry)
    client = _client()
    for b in chosen:
        ref = image_ref(b, _variant(b, variant), prefix)
        pull_image(client, ref, lambda line: typer.echo(line, err=True))
        failures = check_image(client, ref, docker_exceptions())
        if failures:
            raise ImageError(failures[0].message, image=ref, fix=failures[0].fix or "")
        typer.echo(ref)


@image_app.command("build")
def build_command(
    backend: str = typer.Argument(..., help="pytorch, vllm or tensorrt."),
    base: str | None = typer.Option(None, "--base", help="Base image to build FROM (default: the pinned base)."),
    variant: str | None = typer.Option(None, "--variant", help=_VARIANT_HELP),
    registry: str | None = typer.Option(None, "--registry", help=_REGISTRY_HELP),
    tag: str | None = typer.Option(None, "--tag", help="Tag the image this way instead of the default reference."),
    wheelhouse: Path | None = typer.Option(
        None, "--wheelhouse", help="Folder with project/ and deps/ (scripts/make_wheelhouse.sh) to install from."
    ),
    offline: bool = typer.Option(False, "--offline", help="Install from the wheelhouse only (air-gapped host)."),
    project_wheel: bool = typer.Option(
        False, "--project-wheel", help="Install the wheel of this source checkout instead of the released version."
    ),
) -> None:
    """Build BACKEND's image on this host from the Dockerfile shipped in the package."""
    import tempfile

    from llenergymeasure.orchestrator.image_ops import build_image, checkout_wheel, plan_build

    _check_backend(backend)
    with tempfile.TemporaryDirectory(prefix="llem-wheel-") as tmp:
        wheel = checkout_wheel(Path(tmp)) if project_wheel else None
        plan = plan_build(
            backend,
            _variant(backend, variant),
            registry=_registry(registry),
            base=base,
            tag=tag,
            project_wheel=wheel,
            wheelhouse=wheelhouse,
            offline=offline,
        )
        built = build_image(_client(), plan, lambda line: typer.echo(line, err=True))
    typer.echo(built)


def _client() -> object:
    from llenergymeasure.errors import PreFlightError, PreFlightFailure
    from llenergymeasure.orchestrator.runners.factory import connect_docker

    client, why = connect_docker()
    if client is None:
        raise PreFlightError(
            [PreFlightFailure("docker daemon", f"cannot reach the Docker daemon: {why}", "start Docker")]
        )
    return client
