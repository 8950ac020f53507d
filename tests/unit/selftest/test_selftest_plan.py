"""What the GPU check runs: every model on every backend, TP 2 where two GPUs exist; the GPU tier's counts."""

from __future__ import annotations

from pathlib import Path

from llenergymeasure.orchestrator.selftest.run import SelfTestOptions, _junit_counts, experiments_for
from llenergymeasure.schemas.study import StudyConfig


def test_experiments_cover_backends_models_and_tp2_with_two_gpus() -> None:
    opts = SelfTestOptions(models=("tiny", "Qwen/Qwen2.5-0.5B-Instruct"))
    one = experiments_for(opts, ["/m/tiny", "Qwen/Qwen2.5-0.5B-Instruct"], gpu_count=1)
    assert len(one) == 3 * 2
    two = experiments_for(opts, ["/m/tiny", "Qwen/Qwen2.5-0.5B-Instruct"], gpu_count=2)
    assert len(two) == 3 * 2 + 2 * 2  # + TP 2 on vllm and tensorrt for each model
    study = StudyConfig.model_validate({"name": "c", "experiments": two, "execution": {"n_cycles": 5}})
    tp = sorted((e.backend, e.device_count()) for e in study.experiments if e.device_count() == 2)
    assert tp == [("tensorrt", 2), ("tensorrt", 2), ("vllm", 2), ("vllm", 2)]


def test_junit_counts(tmp_path: Path) -> None:
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite tests="7" failures="1" errors="1" skipped="2"/></testsuites>')
    assert _junit_counts(xml) == {"passed": 3, "failed": 2, "skipped": 2}
    assert _junit_counts(tmp_path / "missing.xml")["failed"] == 1
