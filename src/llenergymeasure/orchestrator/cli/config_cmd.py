"""`llem config`: what is installed and reachable, and the effective user config."""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from llenergymeasure.schemas.config.capabilities import BACKENDS
from llenergymeasure.schemas.simulated_gpus import SIMULATE_GPUS_ENV_VAR

if TYPE_CHECKING:
    from llenergymeasure.orchestrator.runners.gpus import GpuProbe
    from llenergymeasure.orchestrator.user_config import EffectiveUserConfig


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def _package_checks() -> list[Check]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for module, dist, purpose in [
        ("torch", "torch", "pytorch backend on the local runner"),
        ("transformers", "transformers", "pytorch backend on the local runner"),
        ("vllm", "vllm", "vllm backend on the local runner"),
        ("tensorrt_llm", "tensorrt-llm", "tensorrt backend on the local runner"),
        ("zeus", "zeus", "energy.backend: zeus"),
        ("codecarbon", "codecarbon", "energy.backend: codecarbon"),
    ]:
        if importlib.util.find_spec(module) is None:
            out.append(Check(f"package {dist}", False, f"not installed ({purpose}; not needed with the docker runner)"))
            continue
        try:
            v = version(dist)
        except PackageNotFoundError:
            v = "unknown version"
        out.append(Check(f"package {dist}", True, v))
    return out


def _docker_checks(images: dict[str, str], client: Any = None) -> list[Check]:
    """The daemon, its GPU runtime and each image, with pre-flight's own probes (`orchestrator.preflight`)."""
    from llenergymeasure.orchestrator.preflight import check_image, nvidia_runtime
    from llenergymeasure.orchestrator.runners.docker_engine import engine_of
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions
    from llenergymeasure.orchestrator.runners.factory import connect_docker
    from llenergymeasure.schemas.job import PROTOCOL_LABEL

    errors = docker_exceptions()
    client, why = connect_docker(client, timeout_s=5)
    info: dict[str, Any] = {}
    if client is not None:
        try:
            info = engine_of(client).info()
        except errors as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
    if client is None or why is not None:
        return [
            Check(
                "docker daemon",
                False,
                f"not reachable ({(why or '')[:120]})",
                "start Docker (e.g. `sudo systemctl start docker` or `make docker-engine`) or set "
                "LLEM_RUNNER_PYTORCH=local",
            )
        ]
    checks = [Check("docker daemon", True, f"server {info.get('ServerVersion', '?')}")]
    how = nvidia_runtime(info)
    detail = {
        "runtime": "nvidia runtime registered",
        "hook": "NVIDIA container hook installed",
        None: "no nvidia runtime (CPU containers only)",
    }[how]
    checks.append(
        Check(
            "docker GPU runtime",
            how is not None,
            detail,
            None if how is not None else "install the NVIDIA Container Toolkit on a GPU host",
        )
    )
    for backend, image in images.items():
        failures = check_image(client, image, errors)
        if failures:
            checks += [Check(f"image {backend}", False, f.message, f.fix) for f in failures]
            continue
        proto = engine_of(client).image_labels(image).get(PROTOCOL_LABEL)
        checks.append(Check(f"image {backend}", True, f"{image} (protocol {proto})"))
    return checks


def _gpu_checks(probe: GpuProbe) -> tuple[list[Check], int]:
    """The GPU section, from pre-flight's probe, and how many CUDA GPUs the images should expect
    (simulated GPUs are not CUDA devices: the model runs on CPU, so those hosts get the CPU image)."""
    from llenergymeasure.orchestrator.preflight import nvml_init_failure

    nvml_error = getattr(probe, "nvml_error", None)
    if nvml_error:
        failure = nvml_init_failure(nvml_error)
        return [Check("NVIDIA GPUs", False, failure.message, failure.fix)], 0
    driver, devices = probe.describe()
    if getattr(probe, "simulated", False):
        described = ", ".join(f"{d.index}: {d.name}" for d in devices)
        note = f"{SIMULATE_GPUS_ENV_VAR}: results are labelled simulated — {described}"
        return [Check("simulated GPUs", True, note)], 0
    if not devices:
        return [Check("NVIDIA GPUs", False, "none visible to NVML; experiments run on CPU, energy unavailable")], 0
    checks = [Check("NVIDIA driver", True, driver or "?")]
    checks += [Check(f"GPU {d.index}", True, f"{d.name} ({d.memory_gib:.0f} GiB)") for d in devices]
    return checks, len(devices)


def _docker_images(user: EffectiveUserConfig, cuda_gpus: int) -> dict[str, str]:
    """backend → the image its docker runner would use on this host (only the pytorch backend has a CPU
    image; vLLM and TensorRT-LLM need a GPU host, so theirs is always the GPU build)."""
    from llenergymeasure.images import gpu_variant, host_variant

    return {
        b: user.image_for(b, host_variant(b, cuda_gpus) if b == "pytorch" else gpu_variant(b))
        for b in BACKENDS
        if user.runner_for(b) == "docker"
    }


def config_command(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also list every setting and where it came from."),
) -> None:
    """Show what is installed and reachable, and the effective user config."""
    from llenergymeasure._version import __version__
    from llenergymeasure.orchestrator.runners.gpus import probe_gpus
    from llenergymeasure.orchestrator.user_config import load_user_config

    user = load_user_config()
    gpu_checks, cuda_gpus = _gpu_checks(probe_gpus())
    images = _docker_images(user, cuda_gpus)

    typer.echo(f"llenergymeasure {__version__}  (Python {platform.python_version()}, {platform.platform()})")
    sections = [
        ("GPUs", gpu_checks),
        ("Docker", _docker_checks(images)),
        ("Packages on this host", _package_checks()),
    ]
    for title, checks in sections:
        typer.echo(f"\n{title}")
        for c in checks:
            typer.echo(f"  {'✓' if c.ok else '✗'} {c.name}: {c.detail}")
            if c.fix:
                typer.echo(f"      fix: {c.fix}")

    state = "found" if user.file_found else "not found, defaults in use"
    typer.echo(f"\nUser config: {user.path} ({state})")
    typer.echo("  runners: " + ", ".join(f"{b}={user.runner_for(b)}" for b in BACKENDS))
    typer.echo(f"  results dir: {user.config.output.results_dir}")
    if verbose:
        flat = _flatten(user.config.model_dump(mode="json"))
        for key, value in sorted(flat.items()):
            typer.echo(f"  {key} = {value!r}   [{user.source_of(key)}]")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
