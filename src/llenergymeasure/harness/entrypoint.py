"""``python -m llenergymeasure.harness``: the container side of the host ↔ container contract.

In: the job in ``LLEM_EXPERIMENT``; the results directory in ``LLEM_RESULTS_DIR``
(default ``/results``). Out: JSON-lines progress events on stdout, logs on
stderr, ``result.json`` (+ ``timeseries.parquet``) or ``error.json``.

stdout belongs to the events alone. At start the real stdout is duplicated to
a private descriptor for the event stream and descriptor 1 is pointed at stderr,
so a stray ``print`` or a framework writing to fd 1 from C lands in the log, and
can never corrupt the stream.

Exit codes: 0 success · 1 the run failed · 2 the job document is missing or
invalid · 3 in-container pre-flight failed · 130 interrupted (SIGINT/SIGTERM).
Every failure writes ``error.json`` (``{type, message, phase, traceback}``) and
emits a ``failed`` event first. Known secrets (values of variables named like
``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*_KEY``) are masked in both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TextIO

from pydantic import ValidationError

from llenergymeasure.errors import LLEMError, PreFlightError
from llenergymeasure.harness.energy.device import PynvmlProvider, open_nvml
from llenergymeasure.harness.events import EventEmitter, Heartbeat
from llenergymeasure.harness.pipeline import HarnessDeps, run_job
from llenergymeasure.schemas.events import ErrorDocument, Failed, Phase
from llenergymeasure.schemas.job import (
    DEFAULT_RESULTS_DIR,
    ERROR_FILE,
    JOB_ENV_VAR,
    PROTOCOL_VERSION,
    RESULT_FILE,
    RESULTS_DIR_ENV_VAR,
    ExperimentJob,
    from_env,
)
from llenergymeasure.util.files import atomic_write_text

logger = logging.getLogger("llenergymeasure.harness")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_JOB = 2
EXIT_PREFLIGHT = 3
EXIT_INTERRUPTED = 130

_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|_KEY$|^KEY$)", re.IGNORECASE)


class Terminated(BaseException):
    """SIGTERM arrived (``docker stop``, the host's timeout): unwind, write error.json, exit 130."""


@contextlib.contextmanager
def claimed_stdout() -> Iterator[TextIO]:
    """A private text stream onto the real stdout; meanwhile descriptor 1 points at stderr. Restored on exit."""
    sys.stdout.flush()
    saved_fd = os.dup(1)
    event_fd = os.dup(1)
    os.dup2(2, 1)
    saved_stdout, sys.stdout = sys.stdout, sys.stderr  # Python-level writers too, whatever sys.stdout wrapped
    stream = os.fdopen(event_fd, "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield stream
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()
        sys.stderr.flush()
        sys.stdout = saved_stdout
        os.dup2(saved_fd, 1)
        os.close(saved_fd)


def configure_logging(level: str) -> None:
    """Logs to stderr (the only place they may go), one line per record."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)


def redact(text: str, environ: Mapping[str, str]) -> str:
    """`text` with the values of secret-looking environment variables masked."""
    for name, value in environ.items():
        if _SECRET_NAME.search(name) and len(value) >= 6:
            text = text.replace(value, "***")
    return text


def _parse_job(environ: Mapping[str, str]) -> ExperimentJob:
    if JOB_ENV_VAR not in environ:
        raise LLEMError(f"{JOB_ENV_VAR} is not set: the harness needs the job document in it")
    try:
        raw = json.loads(environ[JOB_ENV_VAR])
    except ValueError as e:
        raise LLEMError(f"{JOB_ENV_VAR} is not valid JSON: {e}") from e
    version = raw.get("protocol_version") if isinstance(raw, dict) else None
    if version != PROTOCOL_VERSION:
        raise LLEMError(
            f"job protocol version {version!r} is not supported by this harness (speaks {PROTOCOL_VERSION}); "
            "fix: use an image built from the same llenergymeasure version as the host"
        )
    try:
        return from_env(environ)
    except ValidationError as e:
        raise LLEMError(f"invalid job document: {e}") from e


def _fail(
    events: EventEmitter,
    results_dir: Path,
    exc: BaseException,
    message: str,
    phase: Phase | None,
    environ: Mapping[str, str],
) -> None:
    message = redact(message, environ)
    tb = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), environ)
    doc = ErrorDocument(type=type(exc).__name__, message=message, phase=phase, traceback=tb)
    logger.error("%s in phase %s: %s", doc.type, phase, message)
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(results_dir / ERROR_FILE, doc.model_dump_json(indent=2))
    except OSError as e:
        logger.error("could not write %s in %s: %s", ERROR_FILE, results_dir, e)
    events.emit(Failed(phase=phase, type=doc.type, message=message))


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signum}")


def run(environ: Mapping[str, str], events: EventEmitter, deps: HarnessDeps | None = None) -> int:
    """Parse the job, run it, write the result or the error; return the exit code. Never raises (but SystemExit)."""
    results_dir = Path(environ.get(RESULTS_DIR_ENV_VAR, DEFAULT_RESULTS_DIR))
    for stale in (RESULT_FILE, ERROR_FILE):  # a leftover from an earlier run must never pass for this run's
        with contextlib.suppress(OSError):
            (results_dir / stale).unlink(missing_ok=True)
    try:
        job = _parse_job(environ)
    except LLEMError as e:
        _fail(events, results_dir, e, e.message, None, environ)
        return EXIT_BAD_JOB
    configure_logging(job.context.log_level)
    nvml: PynvmlProvider | None = None
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        if deps is None:
            nvml = open_nvml(environ) if job.context.device_ids else None
            simulated = nvml is not None and nvml.simulated
            deps = HarnessDeps(
                nvml=nvml,
                apply_cuda_env=os.environ.update,
                simulated_gpus=simulated,
                sampler_driver=nvml.sampler_driver() if nvml is not None else None,
            )
        with Heartbeat(events, job.context.heartbeat_seconds):
            run_job(job, results_dir, events, deps)
        return EXIT_OK
    except PreFlightError as e:
        _fail(events, results_dir, e, e.render(), events.current_phase, environ)
        return EXIT_PREFLIGHT
    except LLEMError as e:
        _fail(events, results_dir, e, e.render(), events.current_phase, environ)
        return EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as e:
        _fail(events, results_dir, e, f"interrupted ({e or 'SIGINT'})", events.current_phase, environ)
        return EXIT_INTERRUPTED
    except Exception as e:
        _fail(events, results_dir, e, f"{type(e).__name__}: {e}", events.current_phase, environ)
        return EXIT_FAILED
    finally:
        if nvml is not None:
            nvml.close()


def main() -> int:
    """The process entry point (``python -m llenergymeasure.harness``)."""
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # torch's device order = NVML's (PCI bus) order
    configure_logging("INFO")
    with contextlib.suppress(ValueError):  # not in the main thread (embedded use): keep the default handler
        signal.signal(signal.SIGTERM, _on_sigterm)
    with claimed_stdout() as stream:
        return run(os.environ, EventEmitter(stream))
