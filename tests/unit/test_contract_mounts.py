"""Names crossing the wall besides the job (`schemas.mounts`): both wings use the one definition."""

from __future__ import annotations

from pathlib import Path

from llenergymeasure.harness.backends.engine_cache import engine_cache_root
from llenergymeasure.orchestrator.runners.factory import docker_options_from
from llenergymeasure.orchestrator.user_config import load_user_config
from llenergymeasure.schemas.mounts import TRT_ENGINE_CACHE_ENV_VAR, TRT_ENGINE_CACHE_HOME_SUBDIR


def test_harness_reads_the_engine_cache_variable_the_contract_names(tmp_path: Path) -> None:
    assert engine_cache_root({TRT_ENGINE_CACHE_ENV_VAR: str(tmp_path)}, Path("/home/x")) == tmp_path


def test_host_and_harness_default_engine_cache_is_the_same_home_folder(tmp_path: Path) -> None:
    options = docker_options_from(load_user_config({}), tmp_path)
    assert options.trt_engine_cache_dir == engine_cache_root({}, Path.home())
    assert engine_cache_root({}, Path("/home/x")) == Path("/home/x") / TRT_ENGINE_CACHE_HOME_SUBDIR
