"""Orphan containers of dead llem processes are removed; live owners and other hosts are left alone."""

from __future__ import annotations

import os
import subprocess
import sys

from orch_fake_docker import FakeDockerClient, Sandbox

from llenergymeasure.orchestrator.runners.reaper import (
    LABEL_HOST,
    LABEL_HOST_PID,
    LABEL_HOST_PID_START,
    owner_labels,
    process_alive,
    process_start_time,
    reap_orphans,
)


def _sleeper(box: Sandbox) -> int:
    box.killed.wait(30)
    return 0


def _container(client: FakeDockerClient, name: str, labels: dict[str, str]) -> None:
    client.containers.create(image="img", name=name, labels=labels, environment={}, volumes={}).status = "running"


def test_reaps_only_this_hosts_dead_owners() -> None:
    client = FakeDockerClient(_sleeper)
    client.add_image("img")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _container(client, "dead-owner", {LABEL_HOST: "h1", LABEL_HOST_PID: str(dead.pid)})
    _container(
        client,
        "live-owner",
        {LABEL_HOST: "h1", **{k: v for k, v in owner_labels(host="h1").items() if k != LABEL_HOST}},
    )
    _container(client, "other-host", {LABEL_HOST: "h2", LABEL_HOST_PID: str(dead.pid)})
    _container(client, "not-ours", {"app": "x"})
    removed = reap_orphans(client, host="h1")
    assert removed == ["dead-owner"]
    assert sorted(c.name for c in client.live()) == ["live-owner", "not-ours", "other-host"]


def test_recycled_pid_is_not_the_owner() -> None:
    me = os.getpid()
    started = process_start_time(me)
    assert started is not None
    assert process_alive(me, started)
    assert not process_alive(me, str(int(started) + 1))  # same pid, another start time: a recycled pid


def test_owner_labels_name_this_process() -> None:
    labels = owner_labels(host="h1")
    assert labels[LABEL_HOST] == "h1"
    assert labels[LABEL_HOST_PID] == str(os.getpid())
    assert labels[LABEL_HOST_PID_START] == process_start_time(os.getpid())
