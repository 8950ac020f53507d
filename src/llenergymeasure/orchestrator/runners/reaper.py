"""Remove containers that a dead llem process left behind (the Ryuk idea, without a sidecar).

Every container the docker runner creates carries `LABEL_HOST` (this machine's
name), `LABEL_HOST_PID` (the llem process) and `LABEL_HOST_PID_START` (that
process's start time, so a recycled pid is not mistaken for the owner). At
start, `reap_orphans` lists the containers of *this* host and removes those whose
owner process is gone. Containers of other hosts sharing a daemon are left alone:
we cannot tell whether their owner is alive.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: labels tying a container to the llem process that created it (the run's own labels, llem.study_id,
#: llem.experiment_id, llem.cycle, are contract names: `schemas.job`)
LABEL_HOST = "llem.host"
LABEL_HOST_PID = "llem.host_pid"
LABEL_HOST_PID_START = "llem.host_pid_start"

logger = logging.getLogger(__name__)

#: (pid, recorded start time or None) → whether that process still runs
ProcessAlive = Callable[[int, str | None], bool]


def process_start_time(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (Linux ``/proc``), or None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22; the command name (field 2) may contain spaces, so split after its closing parenthesis
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, started: str | None = None) -> bool:
    """True when `pid` runs and, if `started` is given and readable, started at that time."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is not None:
        now = process_start_time(pid)
        if now is not None and now != started:
            return False  # the pid was recycled
    return True


def owner_labels(pid: int | None = None, host: str | None = None) -> dict[str, str]:
    """The labels that tie a container to the current llem process."""
    pid = os.getpid() if pid is None else pid
    labels = {LABEL_HOST: host or socket.gethostname(), LABEL_HOST_PID: str(pid)}
    started = process_start_time(pid)
    if started is not None:
        labels[LABEL_HOST_PID_START] = started
    return labels


def reap_orphans(
    client: Any,
    *,
    host: str | None = None,
    alive: ProcessAlive = process_alive,
) -> list[str]:
    """Force-remove this host's llem containers whose owner process is gone; return their names.

    Errors from Docker while removing one container are logged and skipped: the
    reaper must never stop a study from starting.
    """
    from llenergymeasure.orchestrator.runners.docker_engine import engine_of
    from llenergymeasure.orchestrator.runners.docker_errors import docker_exceptions

    api_errors = docker_exceptions()
    host = host or socket.gethostname()
    removed: list[str] = []
    try:
        containers = engine_of(client).list_containers([f"{LABEL_HOST}={host}", LABEL_HOST_PID])
    except api_errors as e:
        logger.warning("could not list containers to reap orphans: %s", e)
        return removed
    for c in containers:
        labels = c.labels or {}
        try:
            pid = int(labels.get(LABEL_HOST_PID, ""))
        except ValueError:
            continue
        if alive(pid, labels.get(LABEL_HOST_PID_START)):
            continue
        try:
            c.remove(force=True)
            removed.append(c.name)
            logger.info("removed orphan container %s (owner pid %d is gone)", c.name, pid)
        except api_errors as e:
            logger.warning("could not remove orphan container %s: %s", c.name, e)
    return removed
