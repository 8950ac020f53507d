"""Prompt sources: the AI Energy Score cache and fetch path, local JSONL, synthetic prompts, selection."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llenergymeasure.errors import ConfigError, NotAvailableError
from llenergymeasure.harness.datasets import (
    build_prompts,
    build_warmup_prompts,
    length_matched,
    load_aienergyscore,
    load_source,
    read_prompt_jsonl,
    select,
    synthetic_texts,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.sections import SyntheticDataset
from llenergymeasure.schemas.datasets import AIENERGYSCORE_CACHE_FILE, AIENERGYSCORE_REVISION

SHARED = Path(__file__).resolve().parents[4] / "shared" / "datasets"


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_aienergyscore_from_a_prepared_cache_dir() -> None:
    source = load_aienergyscore(SHARED, fetch=lambda: pytest.fail("must not fetch when cached"))
    assert len(source.texts) == 1000
    assert source.revision == AIENERGYSCORE_REVISION
    assert source.notes == []
    assert source.texts[0].startswith("Du Fu 's work is notable")


def test_aienergyscore_is_fetched_once_converted_and_cached(tmp_path: Path) -> None:
    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["first prompt", "second prompt", "third"]}), parquet)
    calls: list[int] = []

    def fetch() -> Path:
        calls.append(1)
        return parquet

    cache = tmp_path / "cache"
    first = load_aienergyscore(cache, fetch)
    second = load_aienergyscore(cache, fetch)
    assert first.texts == second.texts == ["first prompt", "second prompt", "third"]
    assert calls == [1]
    prompts, provenance = read_prompt_jsonl(cache / AIENERGYSCORE_CACHE_FILE)
    assert prompts == first.texts
    assert provenance["_revision"] == AIENERGYSCORE_REVISION


def test_aienergyscore_neither_cached_nor_fetchable_says_what_to_do(tmp_path: Path) -> None:
    def offline() -> Path:
        raise OSError("network unreachable")

    with pytest.raises(NotAvailableError) as err:
        load_aienergyscore(tmp_path, offline)
    message = err.value.message
    assert "network unreachable" in message
    assert "JSONL" in message
    assert str(tmp_path) in message


def test_jsonl_skips_provenance_and_blank_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"_provenance": "x", "_commit": "abc"}, {"prompt": "a"}, {"prompt": "b"}])
    path.write_text(path.read_text() + "\n\n", encoding="utf-8")
    prompts, provenance = read_prompt_jsonl(path)
    assert prompts == ["a", "b"]
    assert provenance == {"_provenance": "x", "_commit": "abc"}


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [([{"text": "no prompt key"}], ':1: expected an object with a string "prompt"'), ([], "has no prompts")],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, rows: list[object], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_prompt_jsonl(write_jsonl(tmp_path / "bad.jsonl", rows))
    assert fragment in err.value.message


def test_missing_jsonl_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_prompt_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "broken.jsonl").write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(ConfigError, match=":2: not valid JSON"):
        read_prompt_jsonl(tmp_path / "broken.jsonl")


def test_selection_is_deterministic_in_the_seed() -> None:
    texts = [f"t{i}" for i in range(100)]
    a, notes = select(texts, 10, seed=42)
    assert a == select(texts, 10, seed=42)[0]
    assert a != select(texts, 10, seed=43)[0]
    assert len(set(a)) == 10
    assert notes == []


def test_selection_beyond_the_set_repeats_with_a_note() -> None:
    chosen, notes = select(["a", "b", "c"], 7, seed=1)
    assert len(chosen) == 7
    assert set(chosen) == {"a", "b", "c"}
    assert len(notes) == 1
    assert "repeat" in notes[0]


def test_synthetic_prompts_are_deterministic_and_long_enough() -> None:
    spec = SyntheticDataset(input_tokens=32, output_tokens=16)
    texts = synthetic_texts(spec, 4, seed=3)
    assert texts == synthetic_texts(spec, 4, seed=3)
    assert texts != synthetic_texts(spec, 4, seed=4)
    assert all(len(t.split()) >= 32 for t in texts)


def test_build_prompts_from_config(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"p{i}"} for i in range(20)])
    cfg = ExperimentConfig(model="m", dataset=str(path), n=5, max_input_tokens=64, max_output_tokens=32)
    prompts, _ = build_prompts(cfg, load_source(cfg, None))
    assert len(prompts) == 5
    assert {(p.max_new_tokens, p.min_new_tokens, p.max_input_tokens) for p in prompts} == {(32, None, 64)}

    synth = ExperimentConfig(
        model="m", dataset={"synthetic": True, "input_tokens": 100, "output_tokens": 7}, n=3, max_input_tokens=64
    )
    prompts, notes = build_prompts(synth, load_source(synth, None))
    assert {(p.max_new_tokens, p.min_new_tokens, p.max_input_tokens) for p in prompts} == {(7, 7, 64)}
    assert notes == ["synthetic input_tokens capped at max_input_tokens=64"]


def test_warmup_prompts_are_disjoint_from_the_window_and_seeded(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"p{i}"} for i in range(30)])
    cfg = ExperimentConfig(model="m", dataset=str(path), n=10, max_input_tokens=64, max_output_tokens=32)
    source = load_source(cfg, None)
    window = {p.text for p in build_prompts(cfg, source)[0]}
    warm = build_warmup_prompts(cfg, source)
    texts = [p.text for p in warm.prompts]
    assert len(texts) == 10 and len(set(texts)) == 10  # n prompts drawn without repeats from the 20 left
    assert window.isdisjoint(texts)
    assert not warm.overlaps_window
    assert {(p.max_new_tokens, p.min_new_tokens, p.max_input_tokens) for p in warm.prompts} == {(32, None, 64)}
    assert [p.text for p in build_warmup_prompts(cfg, source).prompts] == texts  # deterministic in the seed
    other = build_warmup_prompts(cfg.model_copy(update={"random_seed": 7}), source)
    assert [p.text for p in other.prompts] != texts


def test_warmup_cycles_through_few_remaining_prompts_and_flags_a_full_overlap(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"p{i}"} for i in range(12)])
    cfg = ExperimentConfig(model="m", dataset=str(path), n=10)
    source = load_source(cfg, None)
    window = {p.text for p in build_prompts(cfg, source)[0]}
    warm = [p.text for p in build_warmup_prompts(cfg, source).prompts]
    assert len(warm) == 10 and set(warm) == {f"p{i}" for i in range(12)} - window  # the 2 left, repeated
    everything = cfg.model_copy(update={"n": 12})
    full = build_warmup_prompts(everything, source)
    assert full.overlaps_window


def test_synthetic_warmup_prompts_differ_from_the_window_with_the_same_lengths() -> None:
    cfg = ExperimentConfig(model="m", dataset={"synthetic": True, "input_tokens": 20, "output_tokens": 7}, n=4)
    source = load_source(cfg, None)
    window = build_prompts(cfg, source)[0]
    warm = build_warmup_prompts(cfg, source).prompts
    assert {p.text for p in window}.isdisjoint(p.text for p in warm)
    assert [(p.max_new_tokens, p.min_new_tokens, p.max_input_tokens) for p in warm] == [(7, 7, 20)] * 4
    assert {len(p.text.split()) for p in warm} == {36}  # input_tokens + 16 words, like the window's


def test_warmup_prompts_match_the_window_prompts_length_for_length() -> None:
    # target 4 chars: 3 and 5 are both 1 away → the earlier in the (seeded) pool, "ccc"; target 2: 1 left at 1 away
    assert length_matched(["dddd", "bb"], ["a", "ccc", "eeeee", "ffffff"]) == ["ccc", "a"]


def test_warmup_length_distribution_follows_the_window(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "x" * k} for k in range(1, 201)])  # lengths 1 … 200
    cfg = ExperimentConfig(model="m", dataset=str(path), n=8)
    source = load_source(cfg, None)
    window = [len(p.text) for p in build_prompts(cfg, source)[0]]
    warm = [len(p.text) for p in build_warmup_prompts(cfg, source).prompts]
    # every length but the window's 8 is free, so each warmup prompt is within n characters of its window prompt
    assert all(abs(w - v) <= 8 for w, v in zip(window, warm, strict=True))
    assert set(window).isdisjoint(warm)
