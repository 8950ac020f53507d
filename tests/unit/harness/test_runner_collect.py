"""Host-side collection shared by every runner: the stream handler and result/error collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness_fakes import minimal_result

from llenergymeasure.errors import ExperimentError, ExperimentFailure
from llenergymeasure.orchestrator.runners.collect import StreamHandler, collect_result, read_error_document
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.events import ErrorDocument, Heartbeat, PhaseStarted, WindowStarted

CONFIG = ExperimentConfig(model="org/model")


def write_result(run_dir: Path, **overrides: object) -> None:
    (run_dir / "result.json").write_text(minimal_result(CONFIG, **overrides).model_dump_json())


def write_error(run_dir: Path, phase: str | None = "load") -> None:
    doc = ErrorDocument(type="BackendError", message="cannot load 'org/model'", phase=phase, traceback="tb")  # type: ignore[arg-type]
    (run_dir / "error.json").write_text(doc.model_dump_json())


def test_stream_handler_routes_events_and_logs(tmp_path: Path) -> None:
    events: list[object] = []
    logs: list[str] = []
    now = [100.0]
    handler = StreamHandler(tmp_path, events.append, logs.append, clock=lambda: now[0])
    handler.feed_stdout(PhaseStarted(phase="warmup").model_dump_json() + "\n")
    now[0] = 105.0
    handler.feed_stdout("Loading weights: 100%\n")
    handler.feed_stderr("WARNING something\n")
    handler.feed_stdout(Heartbeat(phase="measure").model_dump_json())
    handler.close()
    handler.close()  # idempotent
    assert [type(e).__name__ for e in events] == ["PhaseStarted", "Heartbeat"]
    assert logs == ["Loading weights: 100%", "WARNING something"]
    assert (tmp_path / "harness.log").read_text() == "Loading weights: 100%\nWARNING something\n"
    assert handler.last_phase == "measure"
    assert handler.last_activity_at == 105.0
    assert handler.events_seen == 2
    assert handler.log_tail(1) == ["WARNING something"]


def test_a_failing_callback_never_stops_the_stream(tmp_path: Path) -> None:
    def boom(_: object) -> None:
        raise RuntimeError("display broke")

    handler = StreamHandler(tmp_path, boom, boom)
    assert handler.feed_stdout(WindowStarted(n_prompts=3).model_dump_json()) is not None
    handler.feed_stderr("still logged")
    handler.close()
    assert "still logged" in (tmp_path / "harness.log").read_text()


def test_success_returns_the_validated_result(tmp_path: Path) -> None:
    write_result(tmp_path)
    result = collect_result(tmp_path, ExperimentFailure(exit_code=0))
    assert result.output_tokens == 80


def test_error_json_becomes_a_structured_error(tmp_path: Path) -> None:
    write_error(tmp_path, phase="load")
    with pytest.raises(ExperimentError) as err:
        collect_result(tmp_path, ExperimentFailure(exit_code=1, log_tail=["last line"], measurement_config_hash="abc"))
    f = err.value.failure
    assert err.value.message == "BackendError: cannot load 'org/model'"
    assert (f.exit_code, f.phase, f.error_type, f.log_tail, f.measurement_config_hash) == (
        1,
        "load",
        "BackendError",
        ["last line"],
        "abc",
    )


def test_timeout_wins_over_files_and_keeps_the_phase(tmp_path: Path) -> None:
    write_result(tmp_path)
    write_error(tmp_path, phase="measure")
    with pytest.raises(ExperimentError, match="timed out") as err:
        collect_result(tmp_path, ExperimentFailure(exit_code=130, timed_out="silence"))
    assert err.value.failure.phase == "measure"
    with pytest.raises(ExperimentError, match="out of memory"):
        collect_result(tmp_path, ExperimentFailure(exit_code=137, oom_killed=True))


@pytest.mark.parametrize(
    ("setup", "exit_code", "fragment"),
    [
        (lambda d: None, 0, "wrote no result.json"),
        (lambda d: None, 1, "exited with code 1 without writing error.json"),
        (
            lambda d: (d / "result.json").write_text('{"schema_version": "3.0"}'),
            0,
            "schema version 3.0; this llenergymeasure reads 2.x",
        ),
        (lambda d: (d / "result.json").write_text('{"schema_version": "2.0"}'), 0, "does not validate"),
        (lambda d: (d / "result.json").write_text("{truncated"), 0, "cannot read"),
    ],
)
def test_missing_or_bad_results(tmp_path: Path, setup, exit_code: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    setup(tmp_path)
    with pytest.raises(ExperimentError, match=fragment):
        collect_result(tmp_path, ExperimentFailure(exit_code=exit_code))


def test_error_document_reading(tmp_path: Path) -> None:
    assert read_error_document(tmp_path) is None
    write_error(tmp_path)
    doc = read_error_document(tmp_path)
    assert doc is not None
    assert doc.type == "BackendError"
    (tmp_path / "error.json").write_text(json.dumps({"nope": 1}))
    assert read_error_document(tmp_path) is None  # unreadable: None, never a crash
