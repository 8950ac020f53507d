"""A result's node (host-stamped) becomes columns of the results DataFrame / CSV, so rows group by machine."""

from __future__ import annotations

from orch_factories import make_result, tiny_config

from llenergymeasure.schemas.flatten import result_row
from llenergymeasure.schemas.job import ExperimentJob, RunContext
from llenergymeasure.schemas.results import ExperimentResult, RunNode


def test_node_columns_in_a_result_row() -> None:
    job = ExperimentJob(config=tiny_config(), context=RunContext(study_id="s", experiment_id="000-x", cycle=1))
    node = RunNode(host_name="gpu-node-3", ray_node_id="6f25", gpu_uuids=["GPU-1"], concurrent_runs=[])
    row = result_row(make_result(job).model_copy(update={"node": node}).model_dump(mode="json"))
    assert row["node.host_name"] == "gpu-node-3"
    assert row["node.ray_node_id"] == "6f25"


def test_a_result_written_before_the_node_field_still_reads() -> None:
    job = ExperimentJob(config=tiny_config(), context=RunContext(study_id="s", experiment_id="000-x", cycle=1))
    data = make_result(job).model_dump(mode="json")
    data.pop("node")
    assert ExperimentResult.model_validate(data).node is None
