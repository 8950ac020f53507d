"""A CUDA context on every device of the set, held by a helper process during the idle baseline.

vLLM and TensorRT-LLM run the model in worker processes that own the CUDA
contexts; a context created in the harness process itself would stay for the
whole run (CUDA has no way to destroy it short of exiting) and would hold
device memory the engines' memory profilers count as foreign. Yet the idle
baseline must be taken in the window's state: a CUDA context alone raises idle
power by several watts per GPU.

So for those backends a short-lived helper process creates one context per
device (``torch.zeros(1)`` on each, synchronised), reports ready, and holds
them until `release` closes its stdin — right after the baseline and before the
engine starts. It inherits ``CUDA_VISIBLE_DEVICES`` from the harness, so its
ordinals are the set's.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from llenergymeasure.errors import BackendError
from llenergymeasure.schemas.results import DeviceState

logger = logging.getLogger(__name__)

#: the helper: a context on each CUDA ordinal given in argv, "ready" on stdout, then hold until stdin closes
HOLDER_SCRIPT = (
    "import sys, torch\n"
    "for i in [int(a) for a in sys.argv[1:]]:\n"
    "    torch.zeros(1, device=f'cuda:{i}')\n"
    "    torch.cuda.synchronize(i)\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)
RELEASE_TIMEOUT_S = 30.0


class HolderProcess(Protocol):
    """The parts of ``subprocess.Popen`` the holder uses."""

    stdin: IO[str] | None
    stdout: IO[str] | None
    stderr: IO[str] | None

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


Spawner = Callable[[Sequence[str]], HolderProcess]


def spawn(argv: Sequence[str]) -> HolderProcess:
    proc: Any = subprocess.Popen(
        list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc  # type: ignore[no-any-return]


class CudaContextHolder:
    """Holds a CUDA context on each of `cuda_ordinals` in a helper process, from `acquire` to `release`."""

    def __init__(self, cuda_ordinals: Sequence[int], spawner: Spawner = spawn) -> None:
        self.ordinals = list(cuda_ordinals)
        self._spawner = spawner
        self._proc: HolderProcess | None = None

    @property
    def held(self) -> bool:
        return self._proc is not None

    def acquire(self) -> None:
        """Start the helper and wait until every context is up. Raises `BackendError` if it cannot."""
        if self._proc is not None or not self.ordinals:
            return
        proc = self._spawner([sys.executable, "-c", HOLDER_SCRIPT, *(str(i) for i in self.ordinals)])
        line = proc.stdout.readline() if proc.stdout is not None else ""
        if line.strip() != "ready":
            proc.kill()
            proc.wait(RELEASE_TIMEOUT_S)
            errors = proc.stderr.read().strip().splitlines() if proc.stderr is not None else []
            raise BackendError(
                f"could not create a CUDA context on devices {self.ordinals} for the idle baseline"
                + (f": {errors[-1]}" if errors else ""),
                fix="check that torch with CUDA is installed in the image and the GPUs are visible",
            )
        self._proc = proc
        logger.info("CUDA context held on devices %s for the idle baseline", self.ordinals)

    def release(self) -> None:
        """Close the helper's stdin and wait for it to exit (its contexts go with it); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(RELEASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(RELEASE_TIMEOUT_S)


def hold_contexts(holder: CudaContextHolder, fallback: DeviceState) -> DeviceState:
    """`holder.acquire()`, returning the device state to record: ``cuda_context``, or `fallback` when it failed."""
    if not holder.ordinals:
        return fallback
    try:
        holder.acquire()
    except BackendError as e:
        logger.warning("%s; the idle baseline is measured without a CUDA context", e.message)
        return fallback
    return "cuda_context"


class HelperHeldContexts:
    """The baseline's CUDA state for engines that start their own processes (vLLM, TensorRT-LLM).

    Mixed in before `InferenceBackend`; the backend sets ``_context`` and ``_device_state``.
    """

    _context: CudaContextHolder
    _device_state: DeviceState

    def prepare_device(self) -> None:
        """A CUDA context on every device of the set, held by a helper process until `release_device`."""
        self._device_state = hold_contexts(self._context, self._device_state)

    def release_device(self) -> None:
        self._context.release()

    @property
    def device_state(self) -> DeviceState:
        return self._device_state
