"""`llem run --ray`: a malformed or unreachable address is a configuration error (exit 2), before any
study directory exists."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from llenergymeasure.orchestrator.cli import main


def _study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_config: str = "{}\n") -> Path:
    (tmp_path / "user.yaml").write_text(user_config)
    monkeypatch.setenv("LLEM_CONFIG", str(tmp_path / "user.yaml"))
    study = tmp_path / "study.yaml"
    study.write_text("model: org/tiny\nprecision: fp32\nexperiments:\n  - {n: 1}\n")
    return study


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_malformed_ray_address_exits_2_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study(tmp_path, monkeypatch)
    assert main(["run", str(study), "-o", str(tmp_path / "out"), "--ray", "http://head"]) == 2
    err = capsys.readouterr().err
    assert "--ray" in err and "ray://host:port" in err
    assert not (tmp_path / "out").exists()


def test_unreachable_ray_address_exits_2_with_a_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study(tmp_path, monkeypatch)
    port = _free_port()
    assert main(["run", str(study), "-o", str(tmp_path / "out"), "--ray", f"ray://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "fix:" in err
    assert not (tmp_path / "out").exists()


def test_user_config_ray_address_is_used_without_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    study = _study(tmp_path, monkeypatch, f"runners:\n  ray:\n    address: 127.0.0.1:{port}\n")
    assert main(["run", str(study), "-o", str(tmp_path / "out")]) == 2
    assert "runners.ray.address (user config)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
