"""`llem` CLI: --version, dry-run preview, config overrides, `llem config`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from llenergymeasure._version import __version__
from llenergymeasure.orchestrator.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"llem {__version__}"


def test_dry_run_previews_grid_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: demo\nmodel: gpt2\nsweep:\n  precision: [fp16, bf16]\n  pytorch.batch_size: [1, 4, 8]\n"
        "execution:\n  n_cycles: 2\n"
    )
    assert main(["run", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^6 experiments [×x] 2 cycles = 12 runs", out, re.M)
    assert "pytorch.batch_size" in out
    assert "VRAM est." in out and "unknown" in out  # gpt2 is not in any offline cache here
    assert "dry run: nothing was executed" in out


def test_dry_run_cli_default_three_cycles_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "s.yaml"
    study.write_text("model: gpt2\nsweep:\n  precision: [fp16, bf16]\n")
    assert main(["run", str(study), "--dry-run", "--precision", "fp32", "--cycles", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^1 experiment [×x] 4 cycles = 4 runs", out, re.M)  # --precision replaced the sweep dimension
    assert main(["run", str(study), "--dry-run"]) == 0
    assert re.search(r"^2 experiments [×x] 3 cycles = 6 runs", capsys.readouterr().out, re.M)


def test_dry_run_from_flags_only_with_local_model_vram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    model.mkdir()
    # llama-like: vocab 1000, hidden 64, 2 layers, 4 heads, intermediate 128, tied embeddings
    (model / "config.json").write_text(
        '{"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, '
        '"intermediate_size": 128, "tie_word_embeddings": true}'
    )
    assert main(["run", "--model", str(model), "--precision", "fp32", "-n", "5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    # params = 1000*64 + 2*(4*64*64 + 3*64*128 + 4*64) = 64000 + 2*(16384 + 24576 + 256) = 146432 → ×4 B = 0.5586 MiB
    # kv = 2*2*4*16*4 B*1*(512+128) = 655360 B = 0.625 MiB → total 1.18 MiB
    assert "1.2 MiB" in out
    assert re.search(r"^1 experiment [×x] 3 cycles = 3 runs", out, re.M)


def test_dry_run_shortens_large_grids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "s.yaml"
    study.write_text("model: gpt2\nsweep:\n  n: [" + ", ".join(str(i) for i in range(1, 101)) + "]\n")
    assert main(["run", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(60 rows not shown; --verbose lists all)" in out
    assert re.search(r"^100 experiments [×x] 3 cycles = 300 runs", out, re.M)


def test_dry_run_reports_skipped_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        "model: gpt2\ndecoder: {do_sample: true}\nsweep:\n  backend: [pytorch, vllm]\n  decoder.temperature: [1.0, 2.5]\n"
    )
    assert main(["run", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "left out 1 point(s)" in out
    assert "backend=vllm, decoder.temperature=2.5" in out
    assert re.search(r"^3 experiments", out, re.M)


def test_llem_config_runs_without_docker_or_gpu_requirements(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LLEM_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # the default location, with no file in it
    monkeypatch.setenv("LLEM_RUNNER_VLLM", "local")
    assert main(["config", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "GPUs" in out and "Docker" in out and "Packages on this host" in out
    assert f"{tmp_path / 'llenergymeasure' / 'config.yaml'} (not found, defaults in use)" in out
    assert "runners.vllm = 'local'   [env:LLEM_RUNNER_VLLM]" in out


def test_import_llenergymeasure_loads_no_framework() -> None:
    code = (
        "import sys, llenergymeasure\n"
        "from llenergymeasure import ExperimentConfig, StudyConfig, ExperimentResult, StudyResult, run_experiment\n"
        "import llenergymeasure.orchestrator.cli, llenergymeasure.orchestrator.loader\n"
        "heavy = {'torch','transformers','vllm','tensorrt_llm','zeus','codecarbon','docker','pyarrow','pynvml','huggingface_hub','pandas','matplotlib','numpy'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_api_is_exactly_the_documented_names() -> None:
    import llenergymeasure

    assert sorted(llenergymeasure.__all__) == sorted(
        [
            "run_experiment",
            "run_study",
            "ExperimentConfig",
            "StudyConfig",
            "ExperimentResult",
            "StudyResult",
            "__version__",
        ]
    )
    assert llenergymeasure.__version__ == "2.0.0"
    for name in llenergymeasure.__all__:
        assert getattr(llenergymeasure, name) is not None


def test_console_script_version_fast_path_matches_the_cli() -> None:
    llem = Path(sys.executable).with_name("llem")
    fast = subprocess.run([str(llem), "--version"], capture_output=True, text=True, check=True).stdout
    full = subprocess.run(
        [sys.executable, "-c", "from llenergymeasure.orchestrator.cli import main; main(['--version'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert fast == full == f"llem {__version__}\n"
