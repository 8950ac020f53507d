"""The node side of a cluster run, with our fake Docker client: the unchanged docker runner in a scratch
directory, the run's files packed for the head, failures kept structured, nothing left on the node."""

from __future__ import annotations

from pathlib import Path

from orch_factories import make_result, tiny_config
from orch_fake_docker import FakeDockerClient, Sandbox

from llenergymeasure.orchestrator.cluster.node_task import NodeRunPayload, node_docker_options, run_on_node
from llenergymeasure.orchestrator.cluster.transport import unpack_run_files
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.schemas.events import ErrorDocument, PhaseStarted, event_line, parse_event_line
from llenergymeasure.schemas.job import ERROR_FILE, RESULT_FILE, ExperimentJob, RunContext
from llenergymeasure.schemas.results import ExperimentResult

IMAGE = "llenergymeasure/pytorch:2.0.0-cpu"


def ok(box: Sandbox) -> int:
    box.out(event_line(PhaseStarted(phase="measure")))
    box.err("INFO measured")
    (box.results / RESULT_FILE).write_text(make_result(box.job).model_dump_json())
    (box.results / "timeseries.parquet").write_bytes(b"PAR1\x00\x01PAR1")
    return 0


def fails(box: Sandbox) -> int:
    doc = ErrorDocument(type="BackendError", message="weights are corrupt", phase="load")
    (box.results / ERROR_FILE).write_text(doc.model_dump_json())
    return 1


def payload() -> NodeRunPayload:
    job = ExperimentJob(config=tiny_config(), context=RunContext(study_id="s", experiment_id="000-x", cycle=1))
    return NodeRunPayload(
        job_json=job.model_dump_json(),
        run_dir_name="000_c1_tiny",
        container_name="llem-s-000-c1",
        labels={"llem.study_id": "s"},
        wall_timeout_s=30.0,
        silence_timeout_s=30.0,
        host_device_ids=(),
        images={"pytorch": IMAGE},
        docker_options=DockerOptions(stop_timeout_s=1),
    )


def test_run_on_node_returns_every_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    client = FakeDockerClient(ok)
    client.add_image(IMAGE)
    outcome = run_on_node(payload(), client=client, scratch_root=tmp_path / "scratch")
    assert outcome.error_message is None
    assert set(outcome.files) == {RESULT_FILE, "timeseries.parquet", "harness.log"}
    assert outcome.files["timeseries.parquet"] == b"PAR1\x00\x01PAR1"
    events = [parse_event_line(line) for line in outcome.event_lines]  # the events, for the head
    assert [e.phase for e in events if isinstance(e, PhaseStarted)] == ["measure"]
    assert client.live() == [] and all(c.removed for c in client.created)
    assert list((tmp_path / "scratch").iterdir()) == []  # the scratch run directory is gone
    head_dir = tmp_path / "head" / "000_c1_tiny"
    unpack_run_files(outcome.files, head_dir)
    assert ExperimentResult.model_validate_json((head_dir / RESULT_FILE).read_text()).experiment_id == "000-x"


def test_a_failed_run_on_a_node_comes_back_structured_with_its_error_file(tmp_path: Path) -> None:
    client = FakeDockerClient(fails)
    client.add_image(IMAGE)
    outcome = run_on_node(payload(), client=client, scratch_root=tmp_path)
    assert outcome.failure is not None
    assert (outcome.failure.exit_code, outcome.failure.phase, outcome.failure.error_type) == (1, "load", "BackendError")
    assert outcome.error_message is not None and "weights are corrupt" in outcome.error_message
    assert ERROR_FILE in outcome.files


def test_a_node_uses_its_own_cache_folders(tmp_path: Path) -> None:
    head = DockerOptions(shm_size="8g", hf_cache_dir=Path("/head/hf"), dataset_cache_dir=Path("/head/ds"))
    node = node_docker_options(head, {"HF_HUB_CACHE": str(tmp_path / "node-hf")})
    assert node.hf_cache_dir == tmp_path / "node-hf"
    assert node.dataset_cache_dir != Path("/head/ds")
    assert node.shm_size == "8g"  # the head's user config still decides the container's settings
