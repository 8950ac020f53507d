"""What an experiment reads from the host: local paths to mount, hub ids to find in the HF cache.

Pure functions over paths and an environment mapping — no network, no hub
client. The hub client is used only by pre-flight (to fetch a missing model
once, on the host); the runner only *looks* in the cache.

Decisions:
- A model/adapter string that names an existing directory on the host is a local
  model; one that looks like a path (absolute, ``./``, ``../``, ``~``) but does not
  exist is a local model that is *missing*; anything else is a hub id.
- A dataset string ending in ``.jsonl``/``.json`` is a local file; the built-in
  names are resolved by the harness from its dataset cache.
- The HF hub cache follows huggingface_hub's own precedence (``HF_HUB_CACHE`` >
  ``HF_HOME``/hub > ``XDG_CACHE_HOME``/huggingface/hub > ``~/.cache/huggingface/hub``),
  computed here so the host never imports huggingface_hub just to find a folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llenergymeasure.schemas.config.experiment import BUILTIN_DATASETS, ExperimentConfig, looks_like_path

InputKind = Literal["model", "dataset", "adapter"]


@dataclass(frozen=True)
class HostInput:
    """One thing an experiment reads: a local path on the host or a hub id."""

    kind: InputKind
    value: str
    local_path: Path | None  # absolute host path when local, else None (hub id)

    @property
    def is_local(self) -> bool:
        return self.local_path is not None


def host_hf_cache(env: Mapping[str, str]) -> Path:
    """The host's HF hub cache directory, by huggingface_hub's precedence."""
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def classify(kind: InputKind, value: str, cwd: Path | None = None) -> HostInput:
    """A `HostInput` for `value`: local when it exists on the host or looks like a path."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if path.exists() or looks_like_path(value) or kind == "dataset":
        return HostInput(kind, value, path.resolve())
    return HostInput(kind, value, None)


def experiment_inputs(config: ExperimentConfig, cwd: Path | None = None) -> list[HostInput]:
    """The model, the local dataset file (if any) and the LoRA adapter of `config`."""
    inputs = [classify("model", config.model, cwd)]
    if isinstance(config.dataset, str) and config.dataset not in BUILTIN_DATASETS:
        inputs.append(classify("dataset", config.dataset, cwd))
    if config.lora is not None:
        inputs.append(classify("adapter", config.lora.adapter, cwd))
    return inputs


def hub_repo_folder(cache_dir: Path, repo_id: str, repo_type: str = "model") -> Path:
    """``models--org--name`` folder of `repo_id` in an HF hub cache."""
    return cache_dir / f"{repo_type}s--{repo_id.replace('/', '--')}"


def hub_snapshot(cache_dir: Path, repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot directory of `repo_id` (at `revision`, else ``main``, else any), if complete.

    A snapshot counts as present when it holds a ``config.json`` (what
    ``from_pretrained`` reads first); weights are checked by the harness's own
    pre-flight when it loads the model.
    """
    folder = hub_repo_folder(cache_dir, repo_id)
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return None
    wanted = revision or "main"
    ref = folder / "refs" / wanted
    candidates: list[Path] = []
    if ref.is_file():
        candidates.append(snapshots / ref.read_text().strip())
    candidates.append(snapshots / wanted)  # a commit hash given directly
    if revision is None:
        candidates.extend(sorted(p for p in snapshots.iterdir() if p.is_dir()))
    for snap in candidates:
        if (snap / "config.json").is_file() or (snap / "adapter_config.json").is_file():
            return snap
    return None
