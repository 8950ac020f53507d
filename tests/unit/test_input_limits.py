"""The pieces behind the bad-input checks, with numbers worked out by hand."""

from __future__ import annotations

import pytest
import yaml

from llenergymeasure.errors import printable
from llenergymeasure.orchestrator.config_file import _LimitExceeded, check_expansion
from llenergymeasure.schemas._issues import suggest
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.text import path_problem
from llenergymeasure.schemas.sweep import grid_size, resolve_study


def _laughs(levels: int) -> yaml.Node:
    lines = ['a0: &a0 "x"'] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    node = yaml.compose("\n".join(lines), Loader=yaml.SafeLoader)
    assert isinstance(node, yaml.MappingNode)
    return node.value[-1][1]  # the last anchor's list


def test_alias_expansion_is_measured_not_expanded() -> None:
    # level k holds 10 copies of level k-1 plus itself: size(k) = 1 + 10·size(k-1), size(0) = 1,
    # so size(3) = 1 + 10·(1 + 10·(1 + 10)) = 1111 nodes
    check_expansion(_laughs(3), max_nodes=1111)
    with pytest.raises(_LimitExceeded, match="1111"):
        check_expansion(_laughs(3), max_nodes=1110)
    # nine levels would be 1,111,111,111 nodes: refused at the first anchor over the limit, instantly
    with pytest.raises(_LimitExceeded):
        check_expansion(_laughs(9), max_nodes=20_000)


def test_expansion_depth_counts_through_aliases() -> None:
    # c0 = [1] has depth 2 (list + scalar); each c_i = [*c_{i-1}] adds one level: depth(c_i) = i + 2
    lines = ["c0: &c0 [1]"] + [f"c{i}: &c{i} [*c{i - 1}]" for i in range(1, 10)]
    root = yaml.compose("\n".join(lines), Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)
    c9 = root.value[-1][1]
    check_expansion(c9, max_depth=11)
    with pytest.raises(_LimitExceeded, match="deeper than 10"):
        check_expansion(c9, max_depth=10)


def test_recursive_alias_is_found() -> None:
    root = yaml.compose("x: &a [1, {y: *a}]", Loader=yaml.SafeLoader)
    assert root is not None
    with pytest.raises(_LimitExceeded, match="recursive"):
        check_expansion(root)


def test_grid_size_counts_backend_scoped_keys_per_backend() -> None:
    # 3 precisions × (pytorch: 3 batch sizes + vllm: 1 max_num_seqs) = 3 × 4 = 12
    universal = [("backend", ["pytorch", "vllm"]), ("precision", ["fp16", "bf16", "fp32"])]
    scoped = {"pytorch": [("pytorch.batch_size", [1, 2, 4])], "vllm": [("vllm.engine.max_num_seqs", [8])]}
    assert grid_size(universal, scoped, "pytorch") == 12
    # without a backend dimension only the shared backend's scoped keys multiply: 3 × 3 = 9
    assert grid_size(universal[1:], scoped, "pytorch") == 9
    # ten keys of ten values: 10**10, an exact integer, computed without expanding anything
    assert grid_size([(f"k{i}", list(range(10))) for i in range(10)], {}, "pytorch") == 10**10


def test_resolved_grid_has_the_computed_size() -> None:
    raw = {
        "model": "m",
        "execution": {"max_grid_points": 12},
        "sweep": {
            "backend": ["pytorch", "vllm"],
            "precision": ["fp16", "bf16", "fp32"],
            "pytorch.batch_size": [1, 2, 4],
            "vllm.engine.max_num_seqs": [8],
        },
    }
    assert len(resolve_study(raw).experiments) == 12  # the 12 of the hand count above, all valid


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("engine", "backend"),  # renamed
        ("dtype", "precision"),
        ("max_new_tokens", "max_output_tokens"),
        ("num_input_prompts", "n"),
        ("transformers", "pytorch"),
        ("precison", "precision"),  # one letter missing
        ("modle", "model"),  # two letters swapped
        ("max_output_token", "max_output_tokens"),
        ("dataset_order", None),  # means something else: never 'dataset'
        ("base", None),  # never 'baseline'
        ("seeds_per_run", None),
    ],
)
def test_suggestions_prefer_renames_and_only_fix_typos(name: str, expected: str | None) -> None:
    assert suggest(name, ExperimentConfig.model_fields) == expected


def test_rename_is_suggested_only_where_the_new_name_exists() -> None:
    # tensor_parallel_size is tp_size in the tensorrt section, but a real field of vllm.engine
    assert suggest("tensor_parallel_size", ["tp_size", "pp_size"]) == "tp_size"
    assert suggest("experiment_gap_seconds", ["config_gap_seconds", "cycle_gap_seconds"]) == "config_gap_seconds"
    assert suggest("experiment_gap_seconds", ["model", "n"]) is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain-name", "plain-name"),
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("x\udcff", "x\\udcff"),
        ("rtl\u202eoverride", "rtl\\u202eoverride"),
        ("étude 日本", "étude 日本"),
    ],
)
def test_printable_escapes_controls_and_surrogates(text: str, shown: str) -> None:
    assert printable(text) == shown
    printable(text).encode("utf-8")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("org/name", None),
        ("/abs/" + "p" * 255, None),
        ("/abs/" + "p" * 256, "longer than 255"),
        ("/" + "/".join(["q" * 200] * 21), "longer than 4096"),  # 21 × 201 = 4221 bytes
        ("a\x00b", "NUL"),
        ("a\udcffb", "surrogate"),
        ("a\nb", "control character"),
    ],
)
def test_path_problems(value: str, problem: str | None) -> None:
    found = path_problem(value)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_strict_models_still_read_their_own_json() -> None:
    """Strictness is for input files: a job, a study and a manifest written as JSON read back unchanged."""
    import json

    from llenergymeasure.schemas.job import ExperimentJob, RunContext
    from llenergymeasure.schemas.study import StudyConfig

    config = ExperimentConfig.model_validate(
        {
            "model": "gpt2",
            "backend": "vllm",
            "dataset": {"synthetic": True, "input_tokens": 4, "output_tokens": 4},
            "decoder": {"preset": "standard"},
            "vllm": {"engine": {"gpu_memory_utilization": 0.5, "block_size": 16}, "sampling": {"presence_penalty": 1}},
            "passthrough_kwargs": {"a": [1, {"b": 2.5}]},
            "gpus": [0],
            "random_seed": 2**64 - 1,
        }
    )
    job = ExperimentJob(config=config, context=RunContext())
    text = job.model_dump_json()
    assert ExperimentJob.model_validate_json(text) == job
    assert ExperimentJob.model_validate(json.loads(text)) == job
    study = StudyConfig(experiments=[config])
    assert StudyConfig.model_validate(json.loads(study.model_dump_json())) == study
