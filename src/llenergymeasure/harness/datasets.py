"""Prompt sources: the built-in AI Energy Score set, a local JSONL file, or synthetic prompts.

All of it happens before the measured window: texts are read here, selected
deterministically (``n`` prompts, ``random_seed``), and later truncated and
tokenised by the backend's `prepare`.

``aienergyscore``: the 1,000 text-generation prompts of ``AIEnergyScore/text_generation``
(WikiText, OSCAR, UltraChat; Apache-2.0), pinned to one revision of the dataset
repository (the pin and the cache file name live in `llenergymeasure.schemas.datasets`,
shared with the host). Resolution order:

1. ``<cache dir>/aienergyscore.jsonl`` — the converted copy (first line a
   provenance record with keys starting ``_``; then ``{"prompt": ...}`` rows).
   The cache dir is ``RunContext.dataset_cache_dir``, else the user cache
   (``platformdirs``). The host's pre-flight prepares this file before any run
   (``llenergymeasure.orchestrator.dataset_fetch``) — in the host dataset cache,
   which Docker runs mount read-only and local runs read directly — so the
   harness normally only reads it, offline.
2. Fallback, kept for runs whose host pre-flight was skipped (``--skip-preflight``)
   and for calling the harness directly: the pinned parquet file through
   ``huggingface_hub`` (its own cache first; ``HF_HUB_OFFLINE=1`` makes that
   cache-only), converted and written to 1. A Docker run without the prepared
   file gets network access for this fetch.
3. Otherwise a `NotAvailableError` saying how to get it.

A local JSONL file holds one ``{"prompt": "..."}`` object per line; leading
provenance lines (every key starts with ``_``) and blank lines are skipped.

Synthetic prompts are words drawn from a fixed list with ``random_seed``,
long enough to be cut to exactly ``input_tokens`` tokens by the tokenizer, and
generate exactly ``output_tokens`` tokens (min = max new tokens).

**Warmup prompts** (`build_warmup_prompts`) are disjoint from the window's, so
that no prefix or KV cache primed by warmup can serve the window's prefill
while ``input_tokens`` and FLOPs still count it. They come from the same
dataset with the same token limits. For a dataset: the texts the window did
not select, shuffled with a seed derived from ``random_seed``; for each window
prompt, the unused one closest to it in length (characters: the tokenizer is
not loaded yet), so warmup's batches have the window's length distribution
prompt for prompt. When fewer than ``n`` remain they are cycled through in
their seeded order. Synthetic warmup prompts are drawn like the window's, from
a second seeded stream, with the same input and output lengths. When the window uses
every text of the dataset, no disjoint prompt is left: warmup then uses the
window's prompts and the result carries a ``warmup_overlaps_window`` warning.
"""

from __future__ import annotations

import bisect
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llenergymeasure.errors import ConfigError, NotAvailableError
from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.sections import SyntheticDataset
from llenergymeasure.schemas.datasets import (
    AIENERGYSCORE_CACHE_FILE,
    AIENERGYSCORE_FILE,
    AIENERGYSCORE_REPO,
    AIENERGYSCORE_REVISION,
    matches_pin,
    parquet_prompts,
    prompt_cache_text,
    provenance_record,
    recorded_revision,
)
from llenergymeasure.util.files import atomic_write_text, sha256_file

logger = logging.getLogger(__name__)

Fetcher = Callable[[], Path]

_WORDS = (
    "energy",
    "power",
    "model",
    "token",
    "measure",
    "window",
    "joule",
    "watt",
    "sample",
    "batch",
    "latency",
    "throughput",
    "memory",
    "device",
    "cache",
    "layer",
    "weight",
    "input",
    "output",
    "prompt",
    "result",
    "study",
    "cycle",
    "system",
    "value",
    "signal",
    "clock",
    "thermal",
    "count",
    "record",
    "report",
    "method",
    "stable",
    "steady",
    "warm",
    "idle",
    "baseline",
    "counter",
    "average",
    "total",
    "length",
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "that",
    "this",
    "it",
    "be",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
)


@dataclass(frozen=True)
class PromptSource:
    """The texts a dataset yielded, and where they came from."""

    name: str
    texts: list[str]
    revision: str | None = None
    notes: list[str] = field(default_factory=list)


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("llenergymeasure")) / "datasets"


def read_prompt_jsonl(path: Path) -> tuple[list[str], dict[str, object]]:
    """Prompts of a JSONL file, and its provenance record ({} if none). Raises `ConfigError` on bad rows."""
    if not path.is_file():
        raise ConfigError(f"dataset file not found: {path}", source=str(path))
    prompts: list[str] = []
    provenance: dict[str, object] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise ConfigError(f"{path}:{lineno}: not valid JSON ({e})", source=str(path)) from e
            if isinstance(row, dict) and row and all(str(k).startswith("_") for k in row):
                if not prompts:
                    provenance.update(row)
                continue
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise ConfigError(f'{path}:{lineno}: expected an object with a string "prompt" field', source=str(path))
            prompts.append(row["prompt"])
    if not prompts:
        raise ConfigError(f"dataset file has no prompts: {path}", source=str(path))
    return prompts, provenance


def hub_fetcher(cache_dir: Path | None = None) -> Fetcher:
    """A fetcher that downloads the pinned AI Energy Score parquet via huggingface_hub (or finds it cached)."""

    def fetch() -> Path:
        from huggingface_hub import hf_hub_download

        return Path(
            hf_hub_download(
                AIENERGYSCORE_REPO,
                AIENERGYSCORE_FILE,
                repo_type="dataset",
                revision=AIENERGYSCORE_REVISION,
                cache_dir=cache_dir,
            )
        )

    return fetch


def read_parquet_texts(path: Path) -> list[str]:
    """The prompt column of a parquet file (``text`` or ``prompt``)."""
    try:
        return parquet_prompts(path)
    except ValueError as e:
        raise NotAvailableError(str(e)) from e


def write_prompt_jsonl(path: Path, prompts: list[str], provenance: dict[str, object]) -> None:
    """Write `prompts` with a provenance line, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, prompt_cache_text(prompts, provenance), mode=0o644)


def load_aienergyscore(cache_dir: Path, fetch: Fetcher | None = None) -> PromptSource:
    """The AI Energy Score prompts from the cache, else fetched once at the pinned revision."""
    cached = cache_dir / AIENERGYSCORE_CACHE_FILE
    if cached.is_file():
        texts, provenance = read_prompt_jsonl(cached)
        revision = recorded_revision(provenance)
        notes = []
        if not matches_pin(provenance):
            notes.append(
                f"aienergyscore cache {cached} is at revision {revision}, not the pinned {AIENERGYSCORE_REVISION}"
            )
            logger.warning("%s", notes[-1])
        return PromptSource("aienergyscore", texts, revision, notes)
    fetch = fetch or hub_fetcher()
    try:
        parquet = fetch()
        texts = read_parquet_texts(parquet)
    except NotAvailableError:
        raise
    except Exception as e:  # huggingface_hub / network / file errors: one clear message
        raise NotAvailableError(
            f"the aienergyscore dataset is neither in the cache ({cached}) nor downloadable: {e}. "
            f"fix: run once with network access (it is fetched from {AIENERGYSCORE_REPO} at revision "
            f"{AIENERGYSCORE_REVISION[:12]} and cached), mount a prepared cache as dataset_cache_dir, "
            "or set dataset to a local JSONL file"
        ) from e
    record: dict[str, object] = dict(
        provenance_record(AIENERGYSCORE_REPO, AIENERGYSCORE_REVISION, AIENERGYSCORE_FILE, sha256_file(parquet))
    )
    try:
        write_prompt_jsonl(cached, texts, record)
    except OSError as e:
        logger.info("could not cache the dataset at %s (%s); continuing without the cache", cached, e)
    return PromptSource("aienergyscore", texts, AIENERGYSCORE_REVISION)


def synthetic_texts(spec: SyntheticDataset, n: int, seed: int) -> list[str]:
    """`n` word sequences from a fixed vocabulary, deterministic in `seed`, long enough for `spec.input_tokens`."""
    rng = random.Random(seed)
    n_words = spec.input_tokens + 16
    return [" ".join(rng.choice(_WORDS) for _ in range(n_words)) for _ in range(n)]


def select_indices(n_texts: int, n: int, seed: int) -> list[int]:
    """Indices of `n` texts out of `n_texts`, chosen with `seed` (repeating, shuffled, when n exceeds the set)."""
    rng = random.Random(seed)
    if n <= n_texts:
        return rng.sample(range(n_texts), n)
    order = list(range(n_texts))
    rng.shuffle(order)
    return [order[i % len(order)] for i in range(n)]


def select(texts: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` texts chosen with `seed` (repeating, in a shuffled order, when n exceeds the set); plus notes."""
    chosen = [texts[i] for i in select_indices(len(texts), n, seed)]
    notes = [] if n <= len(texts) else [f"n={n} exceeds the dataset's {len(texts)} prompts: prompts repeat"]
    return chosen, notes


def load_source(config: ExperimentConfig, cache_dir: Path | None, fetch: Fetcher | None = None) -> PromptSource:
    """Read the configured dataset's texts (not yet selected)."""
    dataset = config.dataset
    if isinstance(dataset, SyntheticDataset):
        return PromptSource("synthetic", synthetic_texts(dataset, config.n, config.random_seed))
    if dataset == "aienergyscore":
        return load_aienergyscore(cache_dir or default_cache_dir(), fetch)
    texts, provenance = read_prompt_jsonl(Path(dataset))
    revision = recorded_revision(provenance)
    return PromptSource(str(dataset), texts, revision)


def build_prompts(config: ExperimentConfig, source: PromptSource) -> tuple[list[Prompt], list[str]]:
    """The window's `n` prompts with their token limits, and notes about the selection."""
    dataset = config.dataset
    if isinstance(dataset, SyntheticDataset):
        cap = min(dataset.input_tokens, config.max_input_tokens)
        notes = [] if cap == dataset.input_tokens else [f"synthetic input_tokens capped at max_input_tokens={cap}"]
        return _prompts(config, source.texts[: config.n]), notes
    texts, notes = select(source.texts, config.n, config.random_seed)
    return _prompts(config, texts), notes


def _prompts(config: ExperimentConfig, texts: list[str]) -> list[Prompt]:
    dataset = config.dataset
    if isinstance(dataset, SyntheticDataset):
        cap = min(dataset.input_tokens, config.max_input_tokens)
        return [
            Prompt(text, dataset.output_tokens, min_new_tokens=dataset.output_tokens, max_input_tokens=cap)
            for text in texts
        ]
    return [
        Prompt(
            text,
            config.max_output_tokens,
            min_new_tokens=config.decoder.min_new_tokens,
            max_input_tokens=config.max_input_tokens,
        )
        for text in texts
    ]


@dataclass(frozen=True)
class WarmupPrompts:
    """Warmup's prompts, and whether they had to overlap the window's."""

    prompts: list[Prompt]
    overlaps_window: bool = False


def build_warmup_prompts(config: ExperimentConfig, source: PromptSource) -> WarmupPrompts:
    """`n` warmup prompts from the same dataset, disjoint from the window's (see the module docstring)."""
    dataset = config.dataset
    warmup_seed = f"warmup:{config.random_seed}"
    if isinstance(dataset, SyntheticDataset):
        rng = random.Random(warmup_seed)
        n_words = dataset.input_tokens + 16
        window = set(source.texts[: config.n])
        texts: list[str] = []
        while len(texts) < config.n:
            text = " ".join(rng.choice(_WORDS) for _ in range(n_words))
            if text not in window:
                texts.append(text)
        return WarmupPrompts(_prompts(config, texts))
    window_indices = select_indices(len(source.texts), config.n, config.random_seed)
    window_texts = [source.texts[i] for i in window_indices]
    taken = set(window_texts)
    remaining = [t for t in source.texts if t not in taken]
    if not remaining:
        return WarmupPrompts(_prompts(config, window_texts), overlaps_window=True)
    pool = [remaining[i] for i in select_indices(len(remaining), len(remaining), hash_seed(warmup_seed))]
    if len(pool) < config.n:  # too few to match one for one: cycle through them in their seeded order
        return WarmupPrompts(_prompts(config, [pool[i % len(pool)] for i in range(config.n)]))
    return WarmupPrompts(_prompts(config, length_matched(window_texts, pool)))


def length_matched(targets: list[str], pool: list[str]) -> list[str]:
    """For each target, in order, the unused text of `pool` closest to it in length (earlier in `pool` on ties)."""
    by_length = sorted(range(len(pool)), key=lambda i: (len(pool[i]), i))
    lengths = [len(pool[i]) for i in by_length]
    out = []
    for target in targets:
        at = bisect.bisect_left(lengths, len(target))
        candidates = [j for j in (at - 1, at) if 0 <= j < len(lengths)]
        j = min(candidates, key=lambda j: (abs(lengths[j] - len(target)), by_length[j]))
        out.append(pool[by_length[j]])
        del lengths[j], by_length[j]
    return out


def hash_seed(text: str) -> int:
    """A stable integer seed from `text` (``random.Random`` hashes str seeds with SHA-512 the same way)."""
    return random.Random(text).getrandbits(32)
