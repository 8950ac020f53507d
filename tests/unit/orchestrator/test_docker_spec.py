"""The pure job → container translation: every rule of the §4 contract as plain data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.orchestrator.runners.base import RunRequest, run_name
from llenergymeasure.orchestrator.runners.docker_spec import (
    ENGINE_SHM_SIZE,
    HARNESS_COMMAND,
    DockerOptions,
    build_spec,
)
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.job import JOB_ENV_VAR, ExperimentJob, RunContext, from_env
from llenergymeasure.schemas.mounts import CONTAINER_DATASET_CACHE, CONTAINER_HF_CACHE


def _request(tmp_path: Path, config: ExperimentConfig, host_ids: list[int] | None = None) -> RunRequest:
    job = ExperimentJob(config=config, context=RunContext(study_id="s1", experiment_id="000-abc", cycle=2))
    return RunRequest(
        job=job,
        run_dir=tmp_path / "run",
        name="llem-s1-000-c2",
        labels={"llem.study_id": "s1"},
        host_device_ids=host_ids or [],
    )


def _spec(
    tmp_path: Path,
    config: ExperimentConfig,
    options: DockerOptions | None = None,
    env: dict[str, str] | None = None,
    host_ids: list[int] | None = None,
):  # type: ignore[no-untyped-def]
    (tmp_path / "run").mkdir(exist_ok=True)
    return build_spec(
        _request(tmp_path, config, host_ids),
        "llenergymeasure/pytorch:2.0.0-cpu",
        options or DockerOptions(),
        host_env=env or {},
        host_user="1000:1000",
        cwd=tmp_path,
    )


def _model_dir(tmp_path: Path, name: str = "tiny-llama") -> Path:
    d = tmp_path / "models" / name
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    return d


def _fake_hub_cache(root: Path, repo_id: str) -> Path:
    folder = root / f"models--{repo_id.replace('/', '--')}"
    snap = folder / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    return root


def test_local_model_is_mounted_read_only_and_rewritten(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(
        model=str(model), dataset={"synthetic": True, "input_tokens": 8, "output_tokens": 4}, precision="fp32"
    )
    spec = _spec(tmp_path, cfg)
    assert spec.volumes[str(model)] == {"bind": "/llem/models/tiny-llama", "mode": "ro"}
    assert spec.job.config.model == "/llem/models/tiny-llama"
    sent = from_env(spec.environment)
    assert sent.config.model == "/llem/models/tiny-llama"
    # nothing but the run directory is writable
    rw = [host for host, b in spec.volumes.items() if b["mode"] == "rw"]
    assert rw == [str((tmp_path / "run").resolve())]
    assert spec.volumes[rw[0]]["bind"] == "/results"
    # synthetic data and a local model need no network
    assert spec.network_mode == "none"
    assert "HF_HUB_OFFLINE" not in spec.environment


def test_relative_local_dataset_is_mounted_and_rewritten(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n')
    cfg = ExperimentConfig(model=str(model), dataset="prompts.jsonl", precision="fp32")
    spec = _spec(tmp_path, cfg)
    assert spec.volumes[str(tmp_path / "prompts.jsonl")] == {"bind": "/llem/data/prompts.jsonl", "mode": "ro"}
    assert spec.job.config.dataset == "/llem/data/prompts.jsonl"


def test_hub_model_in_cache_runs_offline_without_network(tmp_path: Path) -> None:
    cache = _fake_hub_cache(tmp_path / "hub", "org/tiny")
    cfg = ExperimentConfig(model="org/tiny", dataset={"synthetic": True}, precision="fp32")
    spec = _spec(tmp_path, cfg, DockerOptions(hf_cache_dir=cache))
    assert spec.volumes[str(cache.resolve())] == {"bind": CONTAINER_HF_CACHE, "mode": "ro"}
    assert spec.environment["HF_HUB_OFFLINE"] == "1"
    assert spec.environment["HF_HUB_CACHE"] == CONTAINER_HF_CACHE
    assert spec.job.config.model == "org/tiny"  # hub ids are not rewritten
    assert spec.network_mode == "none"


def test_hub_model_missing_from_cache_needs_network_and_is_not_offline(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    cfg = ExperimentConfig(model="org/missing", dataset={"synthetic": True}, precision="fp32")
    spec = _spec(tmp_path, cfg, DockerOptions(hf_cache_dir=tmp_path / "hub"))
    assert spec.network_mode == "bridge"
    assert "HF_HUB_OFFLINE" not in spec.environment
    assert CONTAINER_HF_CACHE not in {b["bind"] for b in spec.volumes.values()}


def test_builtin_dataset_uses_mounted_cache_when_prepared(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cache = tmp_path / "datasets"
    cache.mkdir()
    cfg = ExperimentConfig(model=str(model), precision="fp32")  # dataset: aienergyscore
    assert _spec(tmp_path, cfg, DockerOptions(dataset_cache_dir=cache)).network_mode == "bridge"  # not prepared yet
    (cache / "aienergyscore.jsonl").write_text('{"prompt": "x"}\n')
    spec = _spec(tmp_path, cfg, DockerOptions(dataset_cache_dir=cache))
    assert spec.network_mode == "none"
    assert spec.volumes[str(cache.resolve())] == {"bind": CONTAINER_DATASET_CACHE, "mode": "ro"}
    assert spec.job.context.dataset_cache_dir == CONTAINER_DATASET_CACHE


def test_explicit_network_mode_wins(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(model=str(model), dataset={"synthetic": True}, precision="fp32")
    assert _spec(tmp_path, cfg, DockerOptions(network_mode="bridge")).network_mode == "bridge"


def test_only_allowlisted_secrets_set_on_host_are_forwarded_and_masked(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(model=str(model), dataset={"synthetic": True}, precision="fp32")
    env = {"HF_TOKEN": "hf_canary_123", "AWS_SECRET_ACCESS_KEY": "nope", "HUGGING_FACE_HUB_TOKEN": ""}
    spec = _spec(tmp_path, cfg, env=env)
    assert spec.environment["HF_TOKEN"] == "hf_canary_123"
    assert "AWS_SECRET_ACCESS_KEY" not in spec.environment
    assert "HUGGING_FACE_HUB_TOKEN" not in spec.environment  # empty = not set
    assert "hf_canary_123" not in repr(spec)
    assert "hf_canary_123" not in spec.environment[JOB_ENV_VAR]


def test_container_basics(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(model=str(model), dataset={"synthetic": True}, precision="fp32")
    spec = _spec(tmp_path, cfg)
    kw = spec.create_kwargs()
    assert kw["init"] is True
    assert kw["user"] == "1000:1000"
    assert kw["entrypoint"] == list(HARNESS_COMMAND)
    assert kw["labels"] == {"llem.study_id": "s1"}
    assert "shm_size" not in kw  # pytorch: Docker's default /dev/shm unless configured
    assert "device_requests" not in kw
    assert spec.device_request is None
    assert "mem_limit" not in kw
    assert kw["environment"]["PYTHONUNBUFFERED"] == "1"
    job = json.loads(kw["environment"][JOB_ENV_VAR])
    assert job["context"]["cycle"] == 2
    assert job["context"]["image"] == "llenergymeasure/pytorch:2.0.0-cpu"


def test_gpus_pinned_by_host_id_and_renumbered_inside(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(model=str(model), dataset={"synthetic": True}, gpus=[2, 3])
    spec = _spec(tmp_path, cfg, host_ids=[2, 3])
    assert spec.device_request is not None
    assert spec.device_request.device_ids == ("2", "3")
    assert spec.device_request.capabilities == (("gpu",),)
    assert spec.job.context.host_device_ids == [2, 3]
    assert spec.job.context.device_ids == [0, 1]


def test_shared_memory_per_backend(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    synthetic = {"synthetic": True}
    tp2 = ExperimentConfig(
        model=str(model),
        backend="vllm",
        precision="fp16",
        dataset=synthetic,
        vllm={"engine": {"tensor_parallel_size": 2}},
    )
    kw = _spec(tmp_path, tp2, host_ids=[0, 1]).create_kwargs()
    assert kw["ipc_mode"] == "host"
    assert "shm_size" not in kw  # meaningless with the host IPC namespace
    single = ExperimentConfig(model=str(model), backend="vllm", precision="fp16", dataset=synthetic)
    assert _spec(tmp_path, single).create_kwargs()["shm_size"] == ENGINE_SHM_SIZE
    assert "ipc_mode" not in _spec(tmp_path, single).create_kwargs()
    configured = _spec(tmp_path, single, DockerOptions(shm_size="32g")).create_kwargs()
    assert configured["shm_size"] == "32g"
    pytorch = ExperimentConfig(model=str(model), dataset=synthetic, precision="fp32")
    assert _spec(tmp_path, pytorch, DockerOptions(shm_size="1g")).create_kwargs()["shm_size"] == "1g"


def test_memory_limit_disables_swap(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(model=str(model), dataset={"synthetic": True}, precision="fp32")
    kw = _spec(tmp_path, cfg, DockerOptions(mem_limit="64m")).create_kwargs()
    assert kw["mem_limit"] == "64m"
    assert kw["memswap_limit"] == "64m"


def test_command_override_is_the_test_seam(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(model=str(model), dataset={"synthetic": True}, precision="fp32")
    opts = DockerOptions(
        command_override=lambda job: ["python", "-c", "raise SystemExit(3)"] if job.context.cycle == 2 else None
    )
    assert _spec(tmp_path, cfg, opts).command == ("python", "-c", "raise SystemExit(3)")


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("my study_20250101T000000Z", "000", "c1"), "llem-my-study_20250101T000000Z-000-c1"),
        (("ünïcode/../x", 3), "llem-n-code-..-x-3"),
    ],
)
def test_container_names_are_valid_and_deterministic(parts: tuple[str, ...], expected: str) -> None:
    assert run_name(*parts) == expected
    assert run_name(*parts) == run_name(*parts)
    assert len(run_name("x" * 300)) <= 128


def test_tensorrt_engine_cache_is_the_one_extra_writable_mount(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    engine = tmp_path / "prebuilt-engine"
    engine.mkdir()
    cache = tmp_path / "trt-cache"
    cfg = ExperimentConfig(
        model=str(model),
        backend="tensorrt",
        precision="fp16",
        dataset={"synthetic": True, "input_tokens": 8, "output_tokens": 4},
        tensorrt={"engine_path": str(engine)},
    )
    spec = _spec(tmp_path, cfg, DockerOptions(trt_engine_cache_dir=cache))
    assert cache.is_dir()
    rw = sorted(b["bind"] for b in spec.volumes.values() if b["mode"] == "rw")
    assert rw == ["/llem/trt-engines", "/results"]
    assert spec.environment["LLEM_TRT_ENGINE_CACHE"] == "/llem/trt-engines"
    assert spec.volumes[str(engine.resolve())] == {"bind": "/llem/engine", "mode": "ro"}
    assert from_env(spec.environment).config.tensorrt.engine_path == "/llem/engine"  # type: ignore[union-attr]


def test_pytorch_runs_get_no_engine_cache(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    cfg = ExperimentConfig(model=str(model), precision="fp32", dataset={"synthetic": True})
    spec = _spec(tmp_path, cfg, DockerOptions(trt_engine_cache_dir=tmp_path / "trt-cache"))
    assert "LLEM_TRT_ENGINE_CACHE" not in spec.environment
    assert not (tmp_path / "trt-cache").exists()


def test_simulated_gpus_mount_the_spec_read_only_and_request_no_gpu(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    gpus = tmp_path / "gpus.json"
    gpus.write_text('{"devices": []}')
    cfg = ExperimentConfig(model=str(model), dataset={"synthetic": True}, gpus=[1, 2])
    spec = _spec(tmp_path, cfg, env={"LLEM_SIMULATE_GPUS": "gpus.json"}, host_ids=[1, 2])  # relative to cwd
    assert spec.device_request is None  # no device request: no NVIDIA runtime needed
    assert spec.volumes[str(gpus)] == {"bind": "/llem/simulated-gpus.json", "mode": "ro"}
    assert spec.environment["LLEM_SIMULATE_GPUS"] == "/llem/simulated-gpus.json"
    # unpinned: the container sees every simulated device, so it opens them by their host index
    assert spec.job.context.device_ids == [1, 2]
    assert spec.job.context.host_device_ids == [1, 2]
    assert "device_requests" not in spec.create_kwargs()
