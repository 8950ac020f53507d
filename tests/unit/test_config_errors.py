"""Malformed configs: `llem run --dry-run` exits 2 with one message naming the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.orchestrator.cli import main

# (case id, file content or None for special cases, field the message must name, words the message must contain)
CASES: list[tuple[str, str | bytes, str, str]] = [
    ("yaml-syntax", "model: [gpt2\nn: 3\n", "<yaml>", "invalid YAML"),
    ("unknown-field", "model: gpt2\nprecison: fp16\n", "precison", "did you mean 'precision'"),
    (
        "unknown-nested-field",
        "model: gpt2\ndecoder:\n  temprature: 0.5\n",
        "decoder.temprature",
        "did you mean 'temperature'",
    ),
    ("wrong-type", "model: gpt2\nn: many\n", "n", "valid integer"),
    ("negative-count", "model: gpt2\nn: -5\n", "n", "greater than 0"),
    ("zero-count", "model: gpt2\nmax_output_tokens: 0\n", "max_output_tokens", "greater than 0"),
    (
        "precision-vs-backend",
        "model: gpt2\nbackend: tensorrt\nprecision: fp32\ntensorrt:\n  quantization: w8a16\n",
        "<top level>",
        "builds fp16/bf16 engines",
    ),
    (
        "mismatched-section",
        "model: gpt2\nbackend: pytorch\nvllm:\n  engine:\n    max_num_seqs: 8\n",
        "<top level>",
        "'vllm:' section is set but backend is pytorch",
    ),
    ("empty-sweep-list", "model: gpt2\nsweep:\n  precision: []\n", "sweep.precision", "empty"),
    (
        "unknown-sweep-key",
        "model: gpt2\nsweep:\n  pytorch.batchsize: [1, 2]\n",
        "sweep.pytorch.batchsize",
        "did you mean 'pytorch.batch_size'",
    ),
    ("sweep-not-a-list", "model: gpt2\nsweep:\n  precision: fp16\n", "sweep.precision", "must be lists"),
    (
        "scoped-key-unused-backend",
        "model: gpt2\nsweep:\n  vllm.engine.block_size: [16, 32]\n",
        "sweep.vllm.engine.block_size",
        "no experiment uses",
    ),
    (
        "no-valid-point",
        "model: gpt2\nbackend: tensorrt\nprecision: fp32\nsweep:\n  tensorrt.quantization: [w8a16]\n",
        "sweep",
        "no valid experiment",
    ),
    ("python-tag", "model: !!python/object/apply:os.system ['touch {pwned}']\n", "<yaml>", "never executed"),
    ("binary-garbage", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "<file>", "binary"),
    ("invalid-utf8", b"model: gpt2\nname: caf\xe9\n", "<file>", "UTF-8"),
    ("empty-file", "", "<top level>", "empty"),
    ("list-top-level", "- model: gpt2\n- model: opt\n", "<top level>", "not a mapping"),
    ("missing-model", "backend: pytorch\nn: 3\n", "model", "Field required"),
    (
        "bad-execution",
        "model: gpt2\nexperiments: [{}]\nexecution:\n  n_cycles: 0\n",
        "execution.n_cycles",
        "greater than 0",
    ),
    ("top-p-range", "model: gpt2\ndecoder:\n  top_p: 1.5\n", "decoder.top_p", "less than or equal to 1"),
    ("bad-dataset", "model: gpt2\ndataset: wikipedia\n", "dataset", "unknown dataset"),
    ("experiments-not-list", "model: gpt2\nexperiments: {precision: fp16}\n", "experiments", "non-empty list"),
]


@pytest.mark.parametrize(("case", "content", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_malformed_config_exits_2_naming_file_field_and_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    content: str | bytes,
    field: str,
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    pwned = tmp_path / "PWNED"
    path = tmp_path / f"{case}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.replace("{pwned}", str(pwned)))

    code = main(["run", str(path), "--dry-run"])
    err = capsys.readouterr().err

    assert code == 2, err
    assert str(path) in err
    assert field in err
    assert words in err
    assert "fix:" in err
    assert "Traceback" not in err
    assert err.count("error:") == 1
    assert not pwned.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing executed, nothing written


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["run", str(missing), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "file not found" in err and "fix: check the path" in err


def test_directory_instead_of_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "is a directory" in err and "fix:" in err


def test_yaml_error_reports_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("model: gpt2\nn: 3\ndecoder:\n  temperature: [0.5\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert f"{path}:5" in capsys.readouterr().err or f"{path}:4" in capsys.readouterr().err


def test_validation_error_reports_line_of_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("model: gpt2\nn: 3\ndecoder:\n  top_p: 7\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert f"{path}:4: decoder.top_p" in capsys.readouterr().err


def test_verbose_shows_traceback_for_expected_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("model: gpt2\nn: 0\n")
    assert main(["run", str(path), "--dry-run", "--verbose"]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "--dry-run"], "no YAML file and no --model"),
        (["run", "--model", "gpt2", "--precision", "fp64", "--dry-run"], "fp64"),
        (["run", "--model", "gpt2", "--backend", "onnx", "--dry-run"], "onnx"),
        (["run", "--model", "gpt2", "-n", "0", "--dry-run"], "'-n'"),
        (["run", "--bogus-flag"], "bogus"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err
