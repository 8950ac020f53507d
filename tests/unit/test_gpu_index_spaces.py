"""The GPU index spaces (`schemas.devices`): one translation host → worker, and back."""

from __future__ import annotations

from llenergymeasure.schemas.devices import host_index_pairs, worker_device_ids


def test_pinned_host_set_is_renumbered_from_zero_in_order() -> None:
    assert worker_device_ids([2, 5, 3], pinned=True) == [0, 1, 2]


def test_unpinned_host_set_keeps_host_indices() -> None:
    assert worker_device_ids([2, 5], pinned=False) == [2, 5]


def test_empty_set_stays_empty_either_way() -> None:
    assert worker_device_ids([], pinned=True) == [] == worker_device_ids([], pinned=False)


def test_worker_indices_map_back_to_host_indices() -> None:
    hosts = [4, 6]
    workers = worker_device_ids(hosts, pinned=True)
    assert host_index_pairs(workers, hosts) == [(0, 4), (1, 6)]


def test_missing_or_mismatched_host_record_takes_worker_indices_as_host_indices() -> None:
    assert host_index_pairs([1, 2], []) == [(1, 1), (2, 2)]
    assert host_index_pairs([1, 2], [7]) == [(1, 1), (2, 2)]
