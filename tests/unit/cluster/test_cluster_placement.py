"""`NodeBook`: placement under each concurrency, CPU-only nodes, per-device-set history, lost nodes."""

from __future__ import annotations

import pytest

from llenergymeasure.orchestrator.cluster.placement import ClusterNode, NodeBook, NoEligibleNode


def node(name: str, gpus: int) -> ClusterNode:
    return ClusterNode(f"{name}-id", name, tuple(f"{name}-{i}" for i in range(gpus)), float(gpus))


def wants(*ids: int):  # type: ignore[no-untyped-def]
    return lambda gpu_count: list(ids)


def test_gpu_runs_never_land_on_a_node_without_gpus() -> None:
    book = NodeBook([node("head", 0), node("w1", 2)], "node")
    p = book.place(wants(0))
    assert p is not None and p.node.host_name == "w1" and p.device_uuids == ["w1-0"]


def test_an_all_cpu_cluster_runs_cpu_runs_anywhere() -> None:
    book = NodeBook([node("a", 0), node("b", 0)], "node")
    p = book.place(wants())
    assert p is not None and p.device_ids == ()


def test_node_concurrency_keeps_a_busy_node_busy() -> None:
    book = NodeBook([node("a", 2)], "node")
    p = book.place(wants(0))
    assert p is not None
    book.start(p, (0, 1), "run0")
    assert book.place(wants(1)) is None
    assert book.finish(p, (0, 1), 5.0) == []
    assert book.place(wants(1)) is not None


def test_device_set_concurrency_shares_a_node_but_no_gpu() -> None:
    book = NodeBook([node("a", 4)], "device_set")
    p0 = book.place(wants(0, 1))
    assert p0 is not None
    book.start(p0, (0, 1), "run0")
    assert book.place(wants(1, 2)) is None
    p1 = book.place(wants(2, 3))
    assert p1 is not None
    book.start(p1, (1, 1), "run1")
    assert book.finish(p0, (0, 1), 3.0) == ["run1"]
    assert book.finish(p1, (1, 1), 4.0) == ["run0"]


def test_previous_run_is_per_device_set_under_device_set_concurrency() -> None:
    book = NodeBook([node("a", 2)], "device_set")
    p0 = book.place(wants(0))
    assert p0 is not None
    book.start(p0, (0, 1), "run0")
    book.finish(p0, (0, 1), 7.0)
    p1 = book.place(wants(1))
    assert p1 is not None
    assert book.previous_on(p1) is None
    assert book.previous_on(p0) == ((0, 1), 7.0)


def test_too_few_gpus_everywhere_is_no_eligible_node() -> None:
    book = NodeBook([node("a", 1), node("b", 2)], "node")
    with pytest.raises(NoEligibleNode, match=r"no usable node has GPUs \[3\]"):
        book.place(wants(3))


def test_runs_spread_round_robin_over_free_nodes() -> None:
    book = NodeBook([node("a", 1), node("b", 1), node("c", 1)], "node")
    hosts = []
    for k in range(3):
        p = book.place(wants(0))
        assert p is not None
        book.start(p, (k, 1), f"run{k}")
        hosts.append(p.node.host_name)
    assert hosts == ["a", "b", "c"]


def test_a_removed_node_gets_no_more_runs() -> None:
    book = NodeBook([node("a", 1), node("b", 1)], "node")
    book.remove_node("a-id")
    p = book.place(wants(0))
    assert p is not None and p.node.host_name == "b"
