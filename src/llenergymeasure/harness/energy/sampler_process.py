"""The timeline sampler's own process: its driver calls never wait for the generating thread's GIL.

Every NVML call releases the GIL for the call and takes it back afterwards. In the
harness process, each of those hand-offs lands on the thread that runs
``generate`` (a CPU-bound Python loop on small models): with 8 GPUs read 10 times
a second it costs ~2 % of tokens/s, although the sampler itself uses about 1 % of
one core. So the background ticks run here, in a child process that opens the
same devices (real NVML, or the simulated driver with the parent's time origin
and shared call counts), on the same system-wide monotonic clock; the parent
keeps its own handles for the window-edge reads.

Protocol (the child is ``python -m llenergymeasure.harness.energy.sampler_process``):

- parent → child, stdin: one JSON line (`ChildConfig`), then command lines
  ``flush`` (send what you have) and ``stop`` (send the rest and exit). End of
  stdin — the parent died — makes the child exit too; it ignores Ctrl-C (the
  parent decides when it stops).
- child → parent, stdout: frames of a 4-byte little-endian length and a pickle:
  first ``{"ready": [uuid, ...]}``, then per command ``{"samples": [fields of a
  PowerSample, ...], "failures": {host_index: {reading: count}}, "error": str | None}``
  — the samples since the previous frame, and the cumulative failed reads of each device.

The child ticks on ``start + k × interval`` like the thread sampler and answers a
command between two ticks (a tick is never cut in half).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import operator
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TypedDict

from llenergymeasure.harness.energy.device import MeasuredDevice, PynvmlProvider, measured_devices
from llenergymeasure.harness.energy.sampler import PowerSample, next_tick, read_sample

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("<I")
#: seconds the parent waits for the child to open the devices
READY_TIMEOUT_S = 30.0
#: seconds without a byte from the child before the parent gives up on an answer (the child answers between
#: ticks, milliseconds apart; handing over hours of samples takes seconds)
ANSWER_TIMEOUT_S = 60.0
#: a sample crosses the pipe as a tuple of its fields, in order (pickling tuples is ~15× faster than dataclasses)
_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(PowerSample)))


class ChildDevices(TypedDict):
    """Which devices the child opens: the NVML driver, container-side indices and the host indices results use."""

    driver: dict[str, Any]  # {"kind": "nvml"} | {"kind": "simulated", **SimulatedNvml.child_config()}
    device_ids: list[int]
    host_ids: list[int]


class ChildConfig(ChildDevices):
    """The child's first stdin line: its devices, and when to read them."""

    interval_s: float
    #: ticks between two full reads (temperature, clocks, memory, utilisation, throttle reasons)
    aux_every: int


class SamplerProcessError(RuntimeError):
    """The sampler process could not start, or stopped answering."""


@dataclass
class Batch:
    """One answer of the child: new samples, and each device's cumulative failed reads."""

    samples: list[PowerSample] = field(default_factory=list)
    failures: dict[int, dict[str, int]] = field(default_factory=dict)
    error: str | None = None


class SamplerProcess:
    """The parent's handle on a running sampler child."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.alive = True

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    def start(cls, config: ChildConfig, *, ready_timeout_s: float = READY_TIMEOUT_S) -> SamplerProcess:
        """Start the child and wait until it has opened its devices; raises `SamplerProcessError`."""
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as e:
            raise SamplerProcessError(f"cannot start the sampler process: {e}") from e
        handle = cls(proc)
        try:
            handle._send(json.dumps(config).encode() + b"\n")
            answer = handle._receive(ready_timeout_s)
        except SamplerProcessError:
            handle.kill()
            raise
        if "ready" not in answer:
            handle.kill()
            raise SamplerProcessError(f"the sampler process could not open the devices: {answer.get('error')}")
        return handle

    def flush(self) -> Batch:
        """The samples taken since the previous answer (an empty batch once the child is gone)."""
        return self._command(b"flush\n")

    def stop(self) -> Batch:
        """The last samples; the child exits."""
        batch = self._command(b"stop\n")
        if self.alive:
            self.alive = False
            try:
                self._proc.wait(timeout=ANSWER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        return batch

    def kill(self) -> None:
        self.alive = False
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # unsent bytes to a dead process
                    stream.close()

    def _command(self, command: bytes) -> Batch:
        if not self.alive:
            return Batch()
        try:
            self._send(command)
            answer = self._receive(ANSWER_TIMEOUT_S)
        except SamplerProcessError as e:
            logger.warning("the power sampler process stopped (%s): the timeline ends here", e)
            self.kill()
            return Batch(error=str(e))
        samples = [PowerSample(*row) for row in answer.get("samples", [])]
        batch = Batch(samples, answer.get("failures", {}), answer.get("error"))
        if batch.error:
            logger.warning("the power sampler process failed (%s): the timeline ends here", batch.error)
        return batch

    def _send(self, data: bytes) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            stdin.flush()
        except (OSError, ValueError) as e:  # a dead child's pipe, or one already closed
            raise SamplerProcessError(f"exited with code {self._proc.poll()}") from e

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        stdout = self._proc.stdout
        assert stdout is not None
        (length,) = _LENGTH.unpack(self._read_exactly(stdout, _LENGTH.size, timeout_s))
        answer: dict[str, Any] = pickle.loads(self._read_exactly(stdout, length, timeout_s))
        return answer

    def _read_exactly(self, stream: IO[bytes], n: int, idle_timeout_s: float) -> bytes:
        """`n` bytes; raises when the child dies or sends nothing for `idle_timeout_s`."""
        chunks, got, fd = [], 0, stream.fileno()
        while got < n:
            if not select.select([fd], [], [], idle_timeout_s)[0]:
                raise SamplerProcessError(f"no answer in {idle_timeout_s:g} s")
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise SamplerProcessError(f"exited with code {self._proc.wait()}")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)


# --- the child ----------------------------------------------------------------------------------------


def open_devices(config: ChildConfig) -> tuple[PynvmlProvider, list[MeasuredDevice]]:
    """The devices `config` names, opened in this process."""
    driver = config["driver"]
    if driver["kind"] == "simulated":
        from llenergymeasure.simgpu import SimulatedNvml

        provider = PynvmlProvider(SimulatedNvml.from_child_config(driver))
    else:
        import pynvml

        pynvml.nvmlInit()
        provider = PynvmlProvider(pynvml)
    return provider, measured_devices(provider, config["device_ids"], config["host_ids"])


def _write_frame(out: IO[bytes], payload: dict[str, Any]) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def serve(
    devices: Sequence[MeasuredDevice],
    interval_s: float,
    aux_every: int,
    stdin_fd: int,
    out: IO[bytes],
    buffered: bytes = b"",
) -> None:
    """Tick until told to stop (or stdin ends), answering each command with the samples since the last one.

    `buffered`: stdin already read (commands that came with the configuration line)."""
    pending: list[PowerSample] = []
    error: str | None = None
    start = time.monotonic()
    k = 0
    while True:
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            failures = {d.host_index: d.device.read_failures() for d in devices}
            _write_frame(out, {"samples": list(map(_FIELDS, pending)), "failures": failures, "error": error})
            pending = []
            if line.strip() == b"stop":
                return
        wait_s = start + k * interval_s - time.monotonic() if error is None else None
        if (wait_s is None or wait_s > 0) and select.select([stdin_fd], [], [], wait_s)[0]:
            chunk = os.read(stdin_fd, 4096)
            if not chunk:
                return  # the parent is gone
            buffered += chunk
            continue
        t, unix = time.monotonic(), time.time()
        try:
            pending += [read_sample(d, t, unix, full=k % aux_every == 0, clock=time.monotonic) for d in devices]
        except Exception as e:  # a telemetry failure must never take the measurement down: report it, stop ticking
            logger.exception("power sample failed; the sampler stops")
            error = f"{type(e).__name__}: {e}"
        k = next_tick(k, start, time.monotonic(), interval_s)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (or its exit ends our stdin)
    logging.basicConfig(level=logging.WARNING, format="llem sampler: %(levelname)s %(message)s")
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the frame stream
    stdin_fd = sys.stdin.fileno()
    received = b""
    while b"\n" not in received:
        chunk = os.read(stdin_fd, 65536)
        if not chunk:
            return 1
        received += chunk
    line, rest = received.split(b"\n", 1)
    config: ChildConfig = json.loads(line)
    try:
        provider, devices = open_devices(config)
    except Exception as e:
        _write_frame(out, {"error": f"{type(e).__name__}: {e}"})
        return 1
    try:
        _write_frame(out, {"ready": [d.uuid for d in devices]})
        serve(devices, config["interval_s"], config["aux_every"], stdin_fd, out, rest)
    except BrokenPipeError:
        return 0
    finally:
        provider.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
