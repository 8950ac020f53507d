"""A run's files travel from a node to the head as bytes: byte for byte, never outside the run directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llenergymeasure.orchestrator.cluster.transport import TransportError, pack_run_files, unpack_run_files


def test_run_files_come_back_byte_for_byte(tmp_path: Path) -> None:
    node_dir = tmp_path / "node" / "000_c1_run"
    node_dir.mkdir(parents=True)
    files = {"result.json": b'{"a": 1}', "timeseries.parquet": os.urandom(4096), "harness.log": b"line\n"}
    for name, data in files.items():
        (node_dir / name).write_bytes(data)
    packed = pack_run_files(node_dir)
    head_dir = tmp_path / "head" / "000_c1_run"
    written = unpack_run_files(packed, head_dir)
    assert {p.name: p.read_bytes() for p in written} == files
    assert written[-1].name == "result.json"  # last: never a result without its timeseries


def test_only_regular_files_travel(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "error.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "error.json")
    assert set(pack_run_files(tmp_path)) == {"error.json"}


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ""])
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(TransportError):
        unpack_run_files({name: b"x"}, tmp_path / "run")
    assert not (tmp_path / "escape").exists()


def test_too_many_bytes_fail_on_the_node(tmp_path: Path) -> None:
    (tmp_path / "timeseries.parquet").write_bytes(b"x" * 100)
    with pytest.raises(TransportError, match="exceed 50 bytes"):
        pack_run_files(tmp_path, max_bytes=50)
