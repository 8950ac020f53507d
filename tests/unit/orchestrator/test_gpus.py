"""`NvmlGpus` over a fake pynvml module of our own."""

from __future__ import annotations

from dataclasses import dataclass

from llenergymeasure.orchestrator.runners.gpus import NvmlGpus


@dataclass
class _Proc:
    pid: int
    usedGpuMemory: int = 0


class FakeNvml:
    def __init__(self, procs: dict[int, list[int]]) -> None:
        self.procs = procs

    def nvmlDeviceGetCount(self) -> int:
        return len(self.procs)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[_Proc]:
        return [_Proc(p) for p in self.procs[handle]]


def test_foreign_processes_exclude_our_own() -> None:
    gpus = NvmlGpus(FakeNvml({0: [], 1: [300, 100, 300]}))
    assert gpus.device_count() == 2
    assert gpus.foreign_processes(0) == []
    assert gpus.foreign_processes(1, own_pids=frozenset({100})) == [300]
