"""The ``python -m llenergymeasure.harness`` contract: events on stdout only, error.json, exit codes, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llenergymeasure.harness.entrypoint import EXIT_BAD_JOB, EXIT_PREFLIGHT, claimed_stdout, redact
from llenergymeasure.harness.events import EventEmitter
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.events import ErrorDocument, Failed, PhaseStarted, parse_event_line
from llenergymeasure.schemas.job import ExperimentJob, RunContext, to_env


def harness(results: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLEM_")}
    env.update(extra_env)
    env["LLEM_RESULTS_DIR"] = str(results)
    return subprocess.run(
        [sys.executable, "-m", "llenergymeasure.harness"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def events_of(stdout: str) -> list[object]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    events = [parse_event_line(line) for line in lines]
    assert all(e is not None for e in events), f"non-event line on stdout: {lines}"
    return events


def test_missing_job_writes_error_json_and_exits_2(tmp_path: Path) -> None:
    proc = harness(tmp_path, {})
    assert proc.returncode == EXIT_BAD_JOB
    doc = ErrorDocument.model_validate_json((tmp_path / "error.json").read_text())
    assert doc.phase is None
    assert "LLEM_EXPERIMENT is not set" in doc.message
    (failed,) = events_of(proc.stdout)
    assert isinstance(failed, Failed)
    assert failed.type == doc.type
    assert "LLEM_EXPERIMENT" in proc.stderr  # logged too


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"protocol_version": 99}', "protocol version 99"),
        ('{"protocol_version": 1}', "invalid job"),
    ],
)
def test_bad_job_documents(tmp_path: Path, payload: str, fragment: str) -> None:
    proc = harness(tmp_path, {"LLEM_EXPERIMENT": payload})
    assert proc.returncode == EXIT_BAD_JOB
    assert fragment in json.loads((tmp_path / "error.json").read_text())["message"]
    events_of(proc.stdout)


def test_preflight_failure_exits_3_with_every_failure_and_no_secret(tmp_path: Path) -> None:
    secret = "hf_SuperSecretToken123"
    cfg = ExperimentConfig(model=f"/nonexistent/{secret}", dataset=str(tmp_path / "missing.jsonl"))
    job = ExperimentJob(config=cfg, context=RunContext(heartbeat_seconds=0.2))
    (tmp_path / "result.json").write_text("{}")  # a stale result from an earlier run must not survive
    proc = harness(tmp_path / "out", {**to_env(job), "HF_TOKEN": secret})
    results = tmp_path / "out"
    assert proc.returncode == EXIT_PREFLIGHT
    doc = ErrorDocument.model_validate_json((results / "error.json").read_text())
    assert (doc.type, doc.phase) == ("PreFlightError", "preflight")
    assert "model" in doc.message
    assert "dataset" in doc.message
    assert secret not in (results / "error.json").read_text()
    assert secret not in proc.stdout
    events = events_of(proc.stdout)
    assert isinstance(events[0], PhaseStarted)
    assert isinstance(events[-1], Failed)
    assert not (results / "result.json").exists()


def test_stale_result_is_removed_before_a_run(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text("{}")
    harness(tmp_path, {})
    assert not (tmp_path / "result.json").exists()
    assert (tmp_path / "error.json").exists()


def test_stray_output_cannot_reach_the_event_stream(capfd: pytest.CaptureFixture[str]) -> None:
    with claimed_stdout() as stream:
        print("a stray print")
        sys.stdout.flush()
        os.write(1, b"a C library writing to fd 1\n")
        EventEmitter(stream).emit(PhaseStarted(phase="load"))
    print("after: stdout is stdout again")
    out, err = capfd.readouterr()
    assert out.splitlines()[0].startswith('{"ts"')
    assert isinstance(parse_event_line(out.splitlines()[0]), PhaseStarted)
    assert out.splitlines()[1] == "after: stdout is stdout again"
    assert "a stray print" in err
    assert "a C library writing to fd 1" in err


def test_redact_masks_secret_looking_variables() -> None:
    env = {"HF_TOKEN": "hf_abcdefgh", "AWS_SECRET_ACCESS_KEY": "s3cr3tvalue", "HOME": "/root", "API_KEY": "k3y-value"}
    text = "token hf_abcdefgh and s3cr3tvalue and k3y-value in /root"
    assert redact(text, env) == "token *** and *** and *** in /root"


def test_choosing_a_backend_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from llenergymeasure.harness.backends import create_backend\n"
        "from llenergymeasure.harness.pipeline import run_job\n"
        "from llenergymeasure.schemas.config.experiment import ExperimentConfig\n"
        "create_backend(ExperimentConfig(model='m'), [])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'tensorrt_llm', 'pynvml', 'pyarrow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_bad_simulated_gpu_spec_is_a_clear_job_error(tmp_path: Path) -> None:
    spec = tmp_path / "gpus.json"
    spec.write_text('{"devices": [{"power": {"kind": "sawtooth", "watts": 1}}]}')
    cfg = ExperimentConfig(model=str(tmp_path), dataset={"synthetic": True})
    job = ExperimentJob(config=cfg, context=RunContext(device_ids=[0]))
    proc = harness(tmp_path / "out", {**to_env(job), "LLEM_SIMULATE_GPUS": str(spec)})
    assert proc.returncode == 1
    doc = ErrorDocument.model_validate_json((tmp_path / "out" / "error.json").read_text())
    assert doc.type == "ConfigError"
    assert str(spec) in doc.message and "devices[0].power" in doc.message and "fix: power.kind is one of" in doc.message
