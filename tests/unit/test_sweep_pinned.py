"""Sweep resolution details pinned exactly: list values through the merge, and every error's field and fix."""

from __future__ import annotations

from typing import Any

import pytest

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.sweep import (
    check_sweep_key,
    deep_merge,
    experiment_as_study,
    grid_size,
    is_study,
    resolve_study,
    unflatten,
)


def _error(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        resolve_study(raw, "study.yaml")
    assert info.value.source == "study.yaml"
    return info.value


# --------------------------------------------------------------- list values


def test_deep_merge_copies_lists_and_the_mappings_inside_them() -> None:
    base = {"a": [1, {"b": [2, 3]}], "keep": {"x": 1}, "over": {"y": 1}}
    over = {"over": {"z": [4]}, "new": [5, {"c": 6}]}
    merged = deep_merge(base, over)
    assert merged == {"a": [1, {"b": [2, 3]}], "keep": {"x": 1}, "over": {"y": 1, "z": [4]}, "new": [5, {"c": 6}]}
    # nothing mutable is shared with either input
    merged["a"][1]["b"].append(99)
    merged["a"].append(7)
    merged["new"][1]["c"] = 0
    merged["over"]["z"].append(0)
    merged["keep"]["x"] = 2
    assert base == {"a": [1, {"b": [2, 3]}], "keep": {"x": 1}, "over": {"y": 1}}
    assert over == {"over": {"z": [4]}, "new": [5, {"c": 6}]}


def test_a_scalar_replaces_a_mapping_but_a_mapping_never_replaces_a_scalar() -> None:
    # `decoder: 5` stays 5 so that validation reports it, instead of a section silently replacing it
    assert deep_merge({"a": 1, "b": {"c": 1}}, {"a": {"x": 2}, "b": 3}) == {"a": 1, "b": 3}


def test_list_valued_field_swept_and_shared() -> None:
    # gpus is a list field: a sweep over it lists lists; a shared list reaches every point unchanged
    study = resolve_study({"model": "m", "sweep": {"gpus": [[0], [0, 1]], "n": [3, 4]}}, "s.yaml")
    assert [(e.gpus, e.n) for e in study.experiments] == [([0], 3), ([0], 4), ([0, 1], 3), ([0, 1], 4)]
    shared = resolve_study({"model": "m", "passthrough_kwargs": {"stop": ["a", "b"]}, "sweep": {"n": [1, 2]}}, "s.yaml")
    assert [e.passthrough_kwargs for e in shared.experiments] == [{"stop": ["a", "b"]}, {"stop": ["a", "b"]}]


def test_explicit_entries_merge_nested_sections_and_report_their_overrides() -> None:
    study = resolve_study(
        {
            "model": "m",
            "decoder": {"temperature": 0.5, "top_k": 10},
            "experiments": [{"decoder": {"top_k": 3}, "gpus": [1, 0]}],
        },
        "s.yaml",
    )
    (e,) = study.experiments
    assert (e.decoder.temperature, e.decoder.top_k, e.gpus) == (0.5, 3, [1, 0])


def test_unflatten_builds_nested_mappings() -> None:
    assert unflatten({"a.b.c": 1, "a.b.d": [2], "e": 3}) == {"a": {"b": {"c": 1, "d": [2]}}, "e": 3}


def test_is_study() -> None:
    assert is_study({"sweep": {}})
    assert is_study({"experiments": []})
    assert not is_study({"model": "m", "execution": {}})


def test_study_name_description_and_single_experiment_wrapper() -> None:
    study = resolve_study({"name": "s1", "description": "d", "model": "m", "sweep": {"n": [1]}})
    assert (study.name, study.description) == ("s1", "d")
    assert resolve_study({"model": "m", "sweep": {"n": [1]}}).name == "study"
    one = experiment_as_study(ExperimentConfig(model="m"))
    assert (one.name, len(one.experiments)) == ("experiment", 1)
    assert experiment_as_study(ExperimentConfig(model="m"), "named").name == "named"


def test_skipped_point_overrides_name_both_universal_and_scoped_keys() -> None:
    # vLLM caps temperature at 2: the 2.5 point is skipped, the 1.0 point runs
    study = resolve_study(
        {
            "model": "m",
            "backend": "vllm",
            "decoder": {"do_sample": True},
            "sweep": {"decoder.temperature": [2.5, 1.0], "vllm.engine.block_size": [16]},
        },
        "s.yaml",
    )
    assert [e.decoder.temperature for e in study.experiments] == [1.0]
    (skipped,) = study.skipped
    assert skipped.overrides == {"decoder.temperature": 2.5, "vllm.engine.block_size": 16}
    assert "(fix: " in skipped.reason


# -------------------------------------------------------------------- errors


def test_sweep_that_is_not_a_mapping() -> None:
    e = _error({"model": "m", "sweep": ["precision"]})
    assert e.message == "the sweep is empty or not a mapping"
    fix = "e.g. sweep: {precision: [fp16, bf16]}, or remove sweep:"
    assert e.issues == [
        ConfigIssue("sweep", "expected a mapping of field → list of values, got list ['precision']", fix)
    ]
    empty = _error({"model": "m", "sweep": {}})
    assert empty.message == "the sweep is empty or not a mapping"
    assert empty.issues == [ConfigIssue("sweep", "expected a mapping of field → list of values, got dict {}", fix)]


def test_sweep_value_that_is_not_a_list() -> None:
    e = _error({"model": "m", "sweep": {"n": 5}})
    assert e.message == "sweep values must be lists"
    assert e.issues == [ConfigIssue("sweep.n", "sweep values must be lists, got int 5", "write n: [5]")]


def test_empty_sweep_list() -> None:
    e = _error({"model": "m", "sweep": {"n": []}})
    assert e.message == "empty sweep list"
    assert e.issues == [
        ConfigIssue("sweep.n", "the list of values is empty", "give at least one value or remove the key")
    ]


def test_unknown_sweep_key_suggests_the_close_field() -> None:
    e = _error({"model": "m", "sweep": {"decoder.temprature": [0.5]}})
    assert e.message == "unknown sweep key"
    assert e.issues == [ConfigIssue("sweep.decoder.temprature", "decoder has no field 'temprature'", "did you mean 'decoder.temperature'?")]  # fmt: skip
    nested = _error({"model": "m", "backend": "vllm", "sweep": {"vllm.engine.blok_size": [16]}})
    assert nested.issues[0].message == "vllm.engine has no field 'blok_size'"
    far = _error({"model": "m", "sweep": {"zzzzqqq": [1]}})
    assert far.issues == [ConfigIssue("sweep.zzzzqqq", "the experiment has no field 'zzzzqqq'", "check the config reference")]  # fmt: skip


def test_sweep_key_below_a_scalar_field() -> None:
    with pytest.raises(ConfigError) as info:
        check_sweep_key("n.value", "s.yaml")
    assert (info.value.message, info.value.source) == ("unknown sweep key", "s.yaml")
    assert info.value.issues == [ConfigIssue("sweep.n.value", "'n' has no sub-fields", "remove the extra part")]
    with pytest.raises(ConfigError) as info:
        check_sweep_key("decoder.temperature.x", "s.yaml")
    assert info.value.issues[0].message == "'decoder.temperature' has no sub-fields"
    check_sweep_key("passthrough_kwargs.anything.deeper")  # free-form: no error


def test_experiments_must_be_a_non_empty_list_of_mappings() -> None:
    for bad, got in (([], "list []"), ({"precision": "fp16"}, "dict {'precision': 'fp16'}")):
        e = _error({"model": "m", "experiments": bad})
        assert e.message == "experiments must be a non-empty list"
        assert e.issues == [
            ConfigIssue(
                "experiments",
                f"expected a non-empty list of mappings, got {got}",
                "e.g. experiments: [{precision: fp16}]",
            )
        ]
    e = _error({"model": "m", "experiments": [{"n": 1}, "fp16"]})
    assert e.message == "invalid experiment entry"
    assert e.issues == [
        ConfigIssue("experiments[1]", "expected a mapping, got str 'fp16'", "write {field: value, ...}")
    ]


def test_scoped_key_for_a_backend_no_experiment_uses_names_each_key() -> None:
    e = _error({"model": "m", "sweep": {"vllm.engine.block_size": [16], "tensorrt.tp_size": [1]}})
    assert e.message == "backend-scoped sweep keys for a backend no experiment uses"
    assert [(i.field, i.message, i.fix) for i in e.issues] == [
        (
            "sweep.tensorrt.tp_size",
            "applies to backend tensorrt only, and no experiment uses tensorrt",
            "add tensorrt to backend or remove the key",
        ),
        (
            "sweep.vllm.engine.block_size",
            "applies to backend vllm only, and no experiment uses vllm",
            "add vllm to backend or remove the key",
        ),
    ]


def test_invalid_execution_section() -> None:
    e = _error({"model": "m", "sweep": {"n": [1]}, "execution": {"n_cycles": 0}})
    assert e.message == "invalid execution section"
    assert [i.field for i in e.issues] == ["execution.n_cycles"]


def test_invalid_point_names_the_field_as_the_file_spells_it() -> None:
    e = _error({"model": "m", "sweep": {"n": [1, -3]}})
    assert e.message == "invalid experiment"
    assert [(i.field, i.fix) for i in e.issues] == [("sweep.n", "change n (got -3)")]
    shared = _error({"model": "m", "n": -3, "experiments": [{"precision": "fp16"}]})
    assert [(i.field, i.fix) for i in shared.issues] == [("n", "change n (got -3)")]


def test_study_with_only_incompatible_points_lists_each_reason_once_in_order() -> None:
    # vLLM caps temperature at 2: three points, two distinct reasons, sorted
    raw = {
        "model": "m",
        "backend": "vllm",
        "decoder": {"do_sample": True},
        "sweep": {"decoder.temperature": [3.0, 2.5, 3.0]},
    }
    e = _error(raw)
    assert e.message == "the study has no valid experiment"
    assert [(i.field, i.message.split(" is outside")[0], i.fix) for i in e.issues] == [
        ("sweep", "decoder.temperature=2.5", "change the values so that at least one combination is valid"),
        ("sweep", "decoder.temperature=3.0", "change the values so that at least one combination is valid"),
    ]


def test_grid_size_from_list_lengths() -> None:
    universal = [("backend", ["pytorch", "vllm"]), ("precision", ["fp16", "bf16", "fp32"])]
    scoped = {"pytorch": [("pytorch.batch_size", [1, 2, 4, 8])], "vllm": [("vllm.engine.block_size", [16, 32])]}
    # 3 precisions × (pytorch 4 batch sizes + vllm 2 block sizes) = 12 + 6 = 18
    assert grid_size(universal, scoped, "pytorch") == 18
    # no backend dimension: the shared backend's scoped dims only, 3 n values × 2 block sizes = 6
    assert grid_size([("n", [1, 2, 3])], {"vllm": [("vllm.engine.block_size", [16, 32])]}, "vllm") == 6


def test_experiment_file_errors_and_default_name() -> None:
    assert resolve_study({"model": "m"}, "e.yaml").name == "experiment"
    e = _error({"model": "m", "n": -1})
    assert e.message == "invalid experiment config"
    assert [(i.field, i.message, i.fix) for i in e.issues] == [
        ("n", "Input should be greater than 0", "change n (got -1)")
    ]


def test_errors_inside_explicit_entries_are_located_in_them() -> None:
    e = _error({"model": "m", "experiments": [{"n": -3}, {"foo": 1}]})
    assert e.message == "invalid experiment"
    assert [(i.field, i.message) for i in e.issues] == [
        ("experiments[0].n", "Input should be greater than 0"),
        ("experiments[1].foo", "unknown field 'foo'"),
    ]
    assert e.issues[0].fix == "change n (got -3)"
    assert e.issues[1].fix is not None and e.issues[1].fix.startswith("remove it; known fields: backend, baseline")
    # a shared field's error stays where the file has it
    shared = _error({"model": "m", "experiments": [{"precision": "fp16"}], "n": -3})
    assert [i.field for i in shared.issues] == ["n"]


def test_errors_from_sweep_values_name_the_key_and_value() -> None:
    e = _error({"model": "m", "sweep": {"decoder.temperature": [-1.0]}})
    assert [(i.field, i.message, i.fix) for i in e.issues] == [
        (
            "sweep.decoder.temperature",
            "Input should be greater than or equal to 0 (value -1.0)",
            "change decoder.temperature (got -1.0)",
        )
    ]


def test_checking_stops_after_fifty_problems() -> None:
    e = _error({"model": "m", "sweep": {"n": list(range(-60, 0))}})
    assert e.message == "50+ problems in the config"
    assert len(e.issues) == 51
    assert e.issues[0].message == "Input should be greater than 0 (value -60)"
    assert e.issues[49].message == "Input should be greater than 0 (value -11)"
    assert (e.issues[50].field, e.issues[50].fix) == ("<more>", "fix the ones above and run again")


def test_study_size_limit_counts_grid_points_and_explicit_entries() -> None:
    fix = "sweep fewer values, or raise execution.max_grid_points if you mean it"
    grid = {"model": "m", "sweep": {"n": [1, 2, 3, 4], "precision": ["fp16", "bf16"]}}
    # 4 × 2 = 8 grid points + 2 explicit = 10: at the limit is allowed
    at_limit = {**grid, "experiments": [{"n": 9}, {"n": 10}], "execution": {"max_grid_points": 10}}
    assert len(resolve_study(at_limit, "s.yaml").experiments) == 10
    e = _error({**grid, "experiments": [{"n": 9}], "execution": {"max_grid_points": 8}})
    assert e.message == "the study is too large"
    assert e.issues == [ConfigIssue("sweep", "8 grid points + 1 explicit experiments, more than the limit of 8", fix)]
    only_explicit = _error(
        {"model": "m", "experiments": [{"n": 1}, {"n": 2}, {"n": 3}], "execution": {"max_grid_points": 2}}
    )
    assert only_explicit.issues == [ConfigIssue("experiments", "3 explicit experiments, more than the limit of 2", fix)]
    big = _error(
        {
            "model": "m",
            "sweep": {"n": list(range(1, 41)), "random_seed": list(range(30))},
            "execution": {"max_grid_points": 1000},
        }
    )
    assert big.issues == [ConfigIssue("sweep", "1,200 grid points, more than the limit of 1,000", fix)]


def test_every_bad_explicit_entry_is_reported() -> None:
    e = _error({"model": "m", "experiments": ["x", {"sweep": {"n": [1]}, "name": "a"}, 5]})
    assert e.message == "invalid experiment entry"
    assert e.issues == [
        ConfigIssue("experiments[0]", "expected a mapping, got str 'x'", "write {field: value, ...}"),
        ConfigIssue("experiments[1].name", "'name' belongs at the top level of the file", "move it there"),
        ConfigIssue("experiments[1].sweep", "'sweep' belongs at the top level of the file", "move it there"),
        ConfigIssue("experiments[2]", "expected a mapping, got int 5", "write {field: value, ...}"),
    ]


def test_overlapping_sweep_keys() -> None:
    e = _error({"model": "m", "sweep": {"decoder": [{"temperature": 0.5}], "decoder.top_k": [3], "n": [1]}})
    assert e.message == "overlapping sweep keys"
    assert e.issues == [
        ConfigIssue(
            "sweep.decoder.top_k",
            "overlaps sweep.decoder, which sets the whole of 'decoder'",
            "sweep either decoder or decoder.top_k, not both",
        )
    ]


def test_unflatten_refuses_a_key_below_a_value() -> None:
    with pytest.raises(ValueError) as info:
        unflatten({"a": 1, "a.b": 2})
    assert str(info.value) == "'a.b' overlaps a key that sets 'a' itself"
