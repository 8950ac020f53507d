"""Studies across several GPU hosts on a Ray cluster (``llem run --ray ADDRESS``).

The study loop on the head stays the single writer of the manifest; it hands each
(experiment, cycle) to a `Dispatcher`:

- `SyncDispatcher` (dispatcher.py): this host, one run at a time, through the host's
  runner (docker or local) — what every study without ``--ray`` uses;
- `RayDispatcher` (ray_dispatcher.py): one Ray task per run, pinned to a node that has
  the run's device set free (placement.py), running the unchanged `DockerRunner` against
  that node's Docker engine (node_task.py); the run's files come back as bytes in the
  task's return value (transport.py), so no shared filesystem is assumed.

Ray is imported lazily, only by ray_dispatcher.py and node_task.py, and only when a
study runs with an address: ``import llenergymeasure`` and a study without ``--ray``
never load it.
"""
