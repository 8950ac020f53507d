"""The helpers both wings share (`llenergymeasure.util`): atomic writes, unique directories, the clock."""

from __future__ import annotations

import os
from datetime import timezone
from pathlib import Path

import pytest

from llenergymeasure.util import files
from llenergymeasure.util.clock import utc_now
from llenergymeasure.util.files import atomic_write_text, make_unique_directory, sha256_file


def test_atomic_write_leaves_no_temp_file_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_atomic_write_failure_while_writing_keeps_old_content_and_removes_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_text(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_atomic_write_failure_at_rename_removes_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "result.json"

    def refuse(src: str, dst: Path) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_text(target, "new")
    assert os.listdir(tmp_path) == []


def test_unique_directory_never_reuses_an_existing_one(tmp_path: Path) -> None:
    made = [make_unique_directory(tmp_path / "out", "run") for _ in range(3)]
    assert [p.name for p in made if p is not None] == ["run", "run_1", "run_2"]


def test_unique_directory_is_none_when_every_name_is_taken(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run_1").mkdir()
    assert make_unique_directory(tmp_path, "run", max_tries=2) is None


def test_utc_now_is_timezone_aware_utc() -> None:
    assert utc_now().tzinfo == timezone.utc


def test_atomic_write_sets_the_requested_mode_else_keeps_the_private_one(tmp_path: Path) -> None:
    shared, private = tmp_path / "shared.jsonl", tmp_path / "private.json"
    atomic_write_text(shared, "x\n", mode=0o644)
    atomic_write_text(private, "y\n")
    assert (shared.stat().st_mode & 0o777, private.stat().st_mode & 0o777) == (0o644, 0o600)


def test_sha256_file_is_the_digest_of_the_bytes(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_a_prompt_cache_written_by_the_host_is_read_by_the_harness(tmp_path: Path) -> None:
    from llenergymeasure.harness.datasets import read_prompt_jsonl
    from llenergymeasure.schemas.datasets import matches_pin, prompt_cache_text, provenance_record

    record = provenance_record("org/ds", "abc123", "data/x.parquet", "00" * 32)
    prompts = ['first "quoted"', "second\nwith a newline", "naïve"]
    path = tmp_path / "cache.jsonl"
    atomic_write_text(path, prompt_cache_text(prompts, record), mode=0o644)
    read, provenance = read_prompt_jsonl(path)
    assert read == prompts
    assert provenance == record and matches_pin(provenance, "org/ds", "abc123", "data/x.parquet")
