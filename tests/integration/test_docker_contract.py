"""The host ↔ container contract on the real engine: network none, secrets, ownership, mounts, run_experiment."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import SECRET_CANARY, files_containing, tiny_experiment

from llenergymeasure.orchestrator.runners.base import RunRequest, run_name
from llenergymeasure.orchestrator.runners.docker import DockerRunner
from llenergymeasure.orchestrator.runners.docker_spec import DockerOptions
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import ExperimentJob, RunContext

pytestmark = pytest.mark.docker

# Runs in the container before the real harness (the runner's command seam), then hands over to it with exec.
PROBE = r"""
import hashlib, json, os
facts = {"interfaces": sorted(os.listdir("/sys/class/net"))}
# no route at all: proven from the routing table, without sending a packet anywhere
with open("/proc/net/route") as f:
    facts["routes"] = [line.split()[0] for line in f.read().splitlines()[1:] if line.strip()]
facts["job_model"] = json.loads(os.environ["LLEM_EXPERIMENT"])["config"]["model"]
token = os.environ.get("HF_TOKEN", "")
facts["token_sha256"] = hashlib.sha256(token.encode()).hexdigest() if token else None
facts["offline"] = os.environ.get("HF_HUB_OFFLINE")
facts["uid_gid"] = [os.getuid(), os.getgid()]
writable = []
for path in ["/results", "/llem/models/tiny-llama"]:
    try:
        open(os.path.join(path, ".probe"), "w").close()
        writable.append(path)
    except OSError:
        pass
facts["writable"] = writable
with open("/results/probe.json", "w") as f:
    json.dump(facts, f)
os.execvp("python", ["python", "-m", "llenergymeasure.harness"])
"""


def _run(client: Any, image: str, model: Path, run_dir: Path, name: str, **options: Any) -> Any:
    config = ExperimentConfig.model_validate(tiny_experiment(model))
    job = ExperimentJob(config=config, context=RunContext(study_id="contract", experiment_id="000-x", cycle=1))
    request = RunRequest(
        job=job,
        run_dir=run_dir,
        name=run_name("contract", name, os.getpid()),
        labels={"llem.study_id": "contract"},
    )
    runner = DockerRunner(
        client,
        {"pytorch": image},
        DockerOptions(command_override=lambda job: ["python", "-c", PROBE], **options),
        host_env={"HF_TOKEN": SECRET_CANARY, "AWS_SECRET_ACCESS_KEY": "not-allowlisted"},
    )
    return runner.run(request)


def test_network_none_secrets_and_mounts(docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = _run(docker_client, cpu_image, tiny_model, run_dir, "net")
    facts = json.loads((run_dir / "probe.json").read_text())
    # network none: only the loopback interface and an empty routing table
    assert facts["interfaces"] == ["lo"]
    assert facts["routes"] == []
    # the allow-listed secret arrived intact, and was written nowhere
    assert facts["token_sha256"] == hashlib.sha256(SECRET_CANARY.encode()).hexdigest()
    assert files_containing(tmp_path, SECRET_CANARY) == []
    # /results is writable, the model mount is not; the job's model path was rewritten to the mount,
    # and the result records the config as submitted (host path), so its hash matches the host's
    assert facts["writable"] == ["/results"]
    assert facts["job_model"] == "/llem/models/tiny-llama"
    assert result.config.model == str(tiny_model)
    assert (
        result.measurement_config_hash
        == ExperimentConfig.model_validate(tiny_experiment(tiny_model)).measurement_config_hash()
    )
    assert result.output_tokens > 0
    assert facts["uid_gid"] == [os.getuid(), os.getgid()]
    for path in run_dir.iterdir():
        assert (path.stat().st_uid, path.stat().st_gid) == (os.getuid(), os.getgid()), path
    assert not docker_client.containers.list(all=True, filters={"label": "llem.study_id=contract"})


def test_another_uid_owns_what_it_writes(docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _run(docker_client, cpu_image, tiny_model, run_dir, "uid", user="4321:4321")
    facts = json.loads((run_dir / "probe.json").read_text())
    assert facts["uid_gid"] == [4321, 4321]
    for name in ("probe.json", "result.json"):
        st = (run_dir / name).stat()
        assert (st.st_uid, st.st_gid) == (4321, 4321), name
    st = (run_dir / "harness.log").stat()  # written by the host process
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_run_experiment_in_docker_leaves_nothing_without_output_dir(
    docker_client: Any, cpu_image: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llenergymeasure import run_experiment

    (tmp_path / "empty-user-config.yaml").write_text("{}\n")  # LLEM_CONFIG must name an existing file
    monkeypatch.setenv("LLEM_CONFIG", str(tmp_path / "empty-user-config.yaml"))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.delenv("LLEM_RUNNER_PYTORCH", raising=False)
    monkeypatch.delenv("LLEM_IMAGE_PYTORCH", raising=False)
    from llenergymeasure.orchestrator.user_config import default_image

    if cpu_image != default_image("pytorch", "cpu"):  # a checkout-specific image (IMAGE_CPU): name it
        monkeypatch.setenv("LLEM_IMAGE_PYTORCH", cpu_image)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result = run_experiment(tiny_experiment(tiny_model))
    assert result.output_tokens > 0
    assert result.environment_snapshot.image == cpu_image
    assert list(scratch.iterdir()) == []
