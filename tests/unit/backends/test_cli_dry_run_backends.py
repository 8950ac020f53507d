"""`llem run --dry-run` on vLLM / TensorRT-LLM studies: previews, skipped points, rejected configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llenergymeasure.orchestrator.cli import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_vllm_study_previews(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXAMPLES / "vllm-study.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^8 experiments [×x] 3 cycles = 24 runs", out, re.M)
    assert "vllm.engine.max_num_seqs" in out
    assert "vllm.engine.tensor_parallel_size" in out
    assert "left out 1 point" in out
    assert "temperature=2.5" in out


def test_tensorrt_study_previews(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXAMPLES / "tensorrt-study.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^8 experiments [×x] 3 cycles = 24 runs", out, re.M)
    assert "left out 2 point" in out
    assert "fp16/bf16 engines" in out


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("model: m\nbackend: vllm\nvllm:\n  engine:\n    quantization: gtpq\n", "did you mean 'gptq'?"),
        (
            "model: m\nbackend: vllm\nvllm:\n  engine:\n    speculative_model: d\n",
            "speculative decoding needs num_speculative_tokens",
        ),
        (
            "model: m\nbackend: tensorrt\nprecision: fp32\nsweep:\n  tensorrt.quantization: [w8a16, int4_awq]\n",
            "no valid experiment",
        ),
        ("model: m\nbackend: tensorrt\ntensorrt:\n  max_seq_len: 100\n", "raise max_seq_len to at least 640"),
        ("model: m\nbackend: vllm\nlora:\n  adapter: a\n  merge: true\n", "cannot merge"),
        ("model: m\nbackend: tensorrt\ntensorrt:\n  tp_size: 4\ngpus: [0, 1]\n", "needs 4 GPU(s)"),
    ],
    ids=[
        "vllm-quantization-typo",
        "speculative-unpaired",
        "trt-all-skipped",
        "trt-seq-len",
        "vllm-lora-merge",
        "trt-gpus",
    ],
)
def test_invalid_backend_configs_exit_2_with_a_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    assert main(["run", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    err = captured.err + captured.out
    assert expected in err
    assert "fix" in err
