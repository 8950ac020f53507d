"""Retries: Docker calls and model downloads that fail for a transient reason, and `execution.max_attempts`.

The fake Docker client fails scripted calls with the SDK's own exception classes; waits go to a
recording `sleep`, so nothing here actually sleeps.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from orch_factories import ScriptedRunner, make_result, study_of, tiny_config
from orch_fake_docker import FakeDockerClient, Sandbox, connection_reset, http_error
from pydantic import ValidationError

from llenergymeasure.errors import ExperimentError, ExperimentFailure
from llenergymeasure.orchestrator.api import run_study
from llenergymeasure.orchestrator.preflight import HostServices, PreflightPlan, run_preflight
from llenergymeasure.orchestrator.retry import RetryPolicy, is_transient_download_error
from llenergymeasure.orchestrator.runners.base import RunRequest
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.orchestrator.runners.gpus import NoGpus
from llenergymeasure.orchestrator.runners.reaper import owner_labels
from llenergymeasure.orchestrator.user_config import load_user_config
from llenergymeasure.schemas.job import PROTOCOL_LABEL, PROTOCOL_VERSION, RESULT_FILE, ExperimentJob, RunContext
from llenergymeasure.schemas.manifest import StudyManifest
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import ExecutionConfig

IMAGE = "llenergymeasure/pytorch:2.0.0-cpu"


def _ok(box: Sandbox) -> int:
    (box.results / RESULT_FILE).write_text(make_result(box.job).model_dump_json())
    return 0


class Sleeps(list[float]):
    """A `sleep` that records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _runner(client: FakeDockerClient, sleeps: Sleeps, attempts: int = 4) -> DockerRunner:
    client.add_image(IMAGE, {PROTOCOL_LABEL: str(PROTOCOL_VERSION)})
    policy = RetryPolicy(attempts=attempts, initial_s=0.5, max_s=8.0, jitter_s=0.5, sleep=sleeps)
    return DockerRunner(client, {"pytorch": IMAGE}, DockerOptions(stop_timeout_s=1), host_env={}, retry=policy)


def _request(tmp_path: Path) -> RunRequest:
    job = ExperimentJob(config=tiny_config(), context=RunContext(study_id="s", experiment_id="000-x", cycle=1))
    return RunRequest(job=job, run_dir=tmp_path / "run", name="llem-s-000-c1", wall_timeout_s=30, silence_timeout_s=30)


# -- one Docker call ---------------------------------------------------------------------------------------


def test_connection_reset_and_5xx_on_create_are_retried_with_growing_jittered_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeDockerClient(_ok)
    client.fail_next("create", connection_reset(), http_error(500), http_error(503))
    sleeps = Sleeps()
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.orchestrator.retry"):
        result = _runner(client, sleeps).run(_request(tmp_path))
    assert result.experiment_id == "000-x"
    assert client.calls.count("create") == 4  # 3 failures + the success
    # exponential: 0.5 × 2^k s (k = 0, 1, 2) plus jitter in [0, 0.5] s
    assert len(sleeps) == 3
    for k, wait_s in enumerate(sleeps):
        assert 0.5 * 2**k <= wait_s <= 0.5 * 2**k + 0.5
    retries = [r.getMessage() for r in caplog.records]
    assert len(retries) == 3
    assert "creating container llem-s-000-c1 failed (ConnectionError" in retries[0]
    assert "retry 1 of 3" in retries[0] and "retry 3 of 3" in retries[2]
    assert client.live() == []


def test_a_5xx_on_start_is_retried(tmp_path: Path) -> None:
    client = FakeDockerClient(_ok)
    client.fail_next("start", http_error(500, "OCI runtime start failed"))
    sleeps = Sleeps()
    _runner(client, sleeps).run(_request(tmp_path))
    assert client.calls.count("start") == 2
    assert len(sleeps) == 1


def test_a_4xx_is_not_retried_and_not_transient(tmp_path: Path) -> None:
    client = FakeDockerClient(_ok)
    client.fail_next("create", http_error(400, "invalid mount config"))
    sleeps = Sleeps()
    with pytest.raises(ExperimentError) as info:
        _runner(client, sleeps).run(_request(tmp_path))
    assert sleeps == []
    assert client.calls.count("create") == 1
    assert info.value.failure.phase == "container"
    assert info.value.failure.transient is False


def test_transient_errors_past_the_last_try_give_a_transient_failure(tmp_path: Path) -> None:
    client = FakeDockerClient(_ok)
    client.fail_next("create", *[connection_reset() for _ in range(4)])
    sleeps = Sleeps()
    with pytest.raises(ExperimentError, match="could not create container") as info:
        _runner(client, sleeps, attempts=4).run(_request(tmp_path))
    assert client.calls.count("create") == 4
    assert len(sleeps) == 3
    assert info.value.failure.transient is True


def test_own_never_started_leftover_of_a_lost_create_answer_is_removed_and_created_again(tmp_path: Path) -> None:
    # the daemon created the container but the answer was lost (connection reset): the retry hits a name
    # conflict with a container this very process owns and never started — ours to remove
    client = FakeDockerClient(_ok)
    client.add_image(IMAGE)
    leftover = client.containers.create(
        image=IMAGE, name="llem-s-000-c1", labels=owner_labels(), environment={}, volumes={}
    )
    sleeps = Sleeps()
    result = _runner(client, sleeps).run(_request(tmp_path))
    assert result.experiment_id == "000-x"
    assert leftover.removed
    assert len(sleeps) == 1  # one backoff between the removal and the second create


def test_a_running_container_of_this_live_process_is_never_removed(tmp_path: Path) -> None:
    client = FakeDockerClient(_ok)
    client.add_image(IMAGE)
    other = client.containers.create(
        image=IMAGE, name="llem-s-000-c1", labels=owner_labels(), environment={}, volumes={}
    )
    other.status = "running"
    with pytest.raises(ExperimentError, match="docker rm -f") as info:
        _runner(client, Sleeps()).run(_request(tmp_path))
    assert not other.removed
    assert info.value.failure.transient is False


# -- a whole run: execution.max_attempts -------------------------------------------------------------------


def _transient(message: str = "could not start container: 500 Server Error") -> ExperimentError:
    return ExperimentError(message, ExperimentFailure(phase="container", transient=True))


def _study_run(tmp_path: Path, runner: Any, max_attempts: int) -> tuple[Any, StudyManifest]:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    study = study_of(1, 1, max_attempts=max_attempts)
    study = study.model_copy(update={"experiments": [study.experiments[0].model_copy(update={"model": str(model)})]})
    result = run_study(
        study,
        output_dir=tmp_path / "out",
        runner=runner,
        quiet=True,
        user_config=load_user_config(env={}, path=tmp_path / "none.yaml"),
        gpu_probe=NoGpus(),
    )
    manifest = StudyManifest.model_validate_json((Path(result.study_dir) / "manifest.json").read_text())
    return result, manifest


def test_max_attempts_reruns_a_transient_failure_and_records_every_try(tmp_path: Path) -> None:
    failures = [_transient("first"), _transient("second")]
    runner = ScriptedRunner(lambda r: failures.pop(0) if failures else None)
    result, manifest = _study_run(tmp_path, runner, max_attempts=3)
    assert (result.status, result.runs_completed) == ("completed", 1)
    (entry,) = manifest.entries
    assert entry.attempts == 3
    assert [f.message for f in entry.retried] == ["first", "second"]
    assert all(f.transient for f in entry.retried)
    assert len(runner.requests) == 3
    stored = ExperimentResult.model_validate_json(
        (Path(result.study_dir) / str(entry.run_dir) / RESULT_FILE).read_text()
    )
    assert stored.attempt == 3  # written by the harness as 1, stamped by the host's loop
    # the earlier tries' files were set aside, never mixed with the last one
    assert len(list((Path(result.study_dir) / ".attempts").glob("*/attempt_*"))) <= 2


@pytest.mark.parametrize(
    "failure",
    [
        ExperimentFailure(phase="measure", exit_code=137, oom_killed=True, transient=True),  # OOM: never
        ExperimentFailure(phase="load", exit_code=1, error_type="BackendError"),  # harness error
        ExperimentFailure(phase="container", error_type="ImageNotFound"),  # config error
        ExperimentFailure(phase="measure", timed_out="silence", transient=True),  # a hang: never
    ],
)
def test_max_attempts_never_reruns_oom_config_harness_errors_or_timeouts(
    tmp_path: Path, failure: ExperimentFailure
) -> None:
    runner = ScriptedRunner(lambda r: ExperimentError("failed", failure))
    result, manifest = _study_run(tmp_path, runner, max_attempts=3)
    assert len(runner.requests) == 1
    assert (result.status, manifest.entries[0].status, manifest.entries[0].attempts) == ("failed", "failed", 1)
    assert manifest.entries[0].retried == []


def test_default_max_attempts_is_one_try(tmp_path: Path) -> None:
    assert ExecutionConfig().max_attempts == 1
    runner = ScriptedRunner(lambda r: _transient())
    _, manifest = _study_run(tmp_path, runner, max_attempts=1)
    assert len(runner.requests) == 1
    assert manifest.entries[0].failure is not None and manifest.entries[0].failure.transient


@pytest.mark.parametrize("value", [0, 11, True])
def test_max_attempts_is_bounded(value: object) -> None:
    with pytest.raises(ValidationError):
        ExecutionConfig.model_validate({"max_attempts": value})


def test_study_with_a_flaky_daemon_completes_with_call_and_run_retries(tmp_path: Path) -> None:
    """The real DockerRunner + loop: 4 connection resets exhaust one run's call retries (a transient
    run failure); max_attempts = 2 runs it again, and the daemon answers."""
    client = FakeDockerClient(_ok)
    client.fail_next("create", *[connection_reset() for _ in range(4)])
    sleeps = Sleeps()
    result, manifest = _study_run(tmp_path, _runner(client, sleeps, attempts=4), max_attempts=2)
    assert result.status == "completed"
    assert client.calls.count("create") == 5
    (entry,) = manifest.entries
    assert entry.attempts == 2
    assert entry.retried[0].transient and entry.retried[0].type == "ConnectionError"
    assert client.live() == []


# -- model downloads on the host ---------------------------------------------------------------------------


class _Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class _HubError(OSError):
    def __init__(self, status: int) -> None:
        super().__init__(f"{status} Client Error")
        self.response = _Response(status)


def _plan(tmp_path: Path) -> PreflightPlan:
    return PreflightPlan(
        experiments=[tiny_config()],  # model org/tiny, a hub id
        runner_kinds={"pytorch": "local"},
        images={},
        host_device_ids=[[]],
        output_dir=tmp_path,
        hf_cache_dir=tmp_path / "hub",
    )


def _fetcher(errors: list[BaseException], calls: list[str]) -> Any:
    def fetch(repo_id: str, cache_dir: Path) -> Path:
        calls.append(repo_id)
        if errors:
            raise errors.pop(0)
        snapshot = cache_dir / "models--org--tiny" / "snapshots" / "abc"
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")
        return snapshot

    return fetch


def test_a_download_that_times_out_is_retried(tmp_path: Path) -> None:
    calls: list[str] = []
    sleeps = Sleeps()
    services = HostServices(
        gpus=NoGpus(),
        fetch_model=_fetcher([TimeoutError("read timed out"), _HubError(503)], calls),
        env={},
        retry=RetryPolicy(sleep=sleeps),
    )
    run_preflight(_plan(tmp_path), services)  # no failure
    assert calls == ["org/tiny"] * 3
    assert len(sleeps) == 2


def test_a_repository_that_does_not_exist_is_not_retried(tmp_path: Path) -> None:
    calls: list[str] = []
    sleeps = Sleeps()
    services = HostServices(
        gpus=NoGpus(), fetch_model=_fetcher([_HubError(404)], calls), env={}, retry=RetryPolicy(sleep=sleeps)
    )
    from llenergymeasure.errors import PreFlightError

    with pytest.raises(PreFlightError) as info:
        run_preflight(_plan(tmp_path), services)
    assert "fetching it failed: _HubError: 404 Client Error" in info.value.render()
    assert (calls, sleeps) == (["org/tiny"], [])


def test_download_error_classes() -> None:
    class OfflineModeIsEnabled(ConnectionError):
        pass

    assert is_transient_download_error(ConnectionResetError(104, "reset"))
    assert is_transient_download_error(_HubError(429))
    assert is_transient_download_error(_HubError(502))
    assert not is_transient_download_error(_HubError(401))
    assert not is_transient_download_error(OfflineModeIsEnabled("offline"))
    assert not is_transient_download_error(ValueError("bad repo id"))


def test_a_transient_error_wrapped_by_the_hub_client_is_still_transient() -> None:
    class HubWrapper(Exception):
        pass

    def wrapped(inner: BaseException) -> BaseException:
        try:
            raise HubWrapper("snapshot_download failed") from inner
        except HubWrapper as e:
            return e

    assert is_transient_download_error(wrapped(_HubError(503)))
    assert is_transient_download_error(wrapped(ConnectionResetError(104, "reset")))
    assert not is_transient_download_error(wrapped(_HubError(404)))


def test_the_real_hub_fetch_is_retried_by_one_layer_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pre-flight's retry policy wraps the fetch; the hub client call inside it must not retry again,
    # or a dead hub is tried attempts × attempts times
    from llenergymeasure.orchestrator import hub_fetch, preflight

    downloads: list[str] = []
    sleeps = Sleeps()

    def snapshot_download(**kwargs: Any) -> str:
        downloads.append(kwargs["repo_id"])
        raise _HubError(503)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    assert preflight.fetch_with_hub is hub_fetch.fetch_with_hub
    services = HostServices(gpus=NoGpus(), env={}, retry=RetryPolicy(attempts=3, sleep=sleeps))
    from llenergymeasure.errors import PreFlightError

    with pytest.raises(PreFlightError):
        run_preflight(_plan(tmp_path), services)
    assert downloads == ["org/tiny"] * 3
    assert len(sleeps) == 2
