"""Retrying host-side calls that fail for a transient reason (tenacity), each retry logged.

Two layers, kept apart:
- *calls* (`RetryPolicy.call`): one Docker API call or one model download is tried again
  after an exponential backoff with jitter when its error is transient — the daemon reset
  the connection, answered 5xx, the hub timed out. The runner and the pre-flight use it.
- *runs*: ``execution.max_attempts`` re-runs a whole (experiment, cycle) whose failure the
  runner marked transient (`ExperimentFailure.transient`); see `study.loop`.

A permanent error (image missing, bad request, repository not found, OOM, harness error)
is never retried: it would fail the same way, only later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    Waits grow as ``initial_s × 2^k`` up to ``max_s``, plus up to ``jitter_s`` of random
    jitter (so many clients do not hammer a recovering daemon in step). `sleep` is
    injected so tests run without waiting.
    """

    attempts: int = 4  # tries in all, the first included
    initial_s: float = 0.5
    max_s: float = 8.0
    jitter_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def call(self, fn: Callable[[], T], *, is_transient: Callable[[BaseException], bool], what: str) -> T:
        """`fn()`, tried up to `attempts` times while it raises a transient error; the last error propagates."""

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            wait_s = state.next_action.sleep if state.next_action is not None else 0.0
            logger.warning(
                "%s failed (%s: %s); retry %d of %d in %.1f s",
                what,
                type(error).__name__,
                str(error).splitlines()[0] if error is not None and str(error) else "",
                state.attempt_number,
                self.attempts - 1,
                wait_s,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.attempts)),
            wait=tenacity.wait_exponential(multiplier=self.initial_s, max=self.max_s)
            + tenacity.wait_random(0, self.jitter_s),
            retry=tenacity.retry_if_exception(is_transient),
            before_sleep=log_retry,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn)


#: one try, no retry
NO_RETRY = RetryPolicy(attempts=1)


#: exception class names (anywhere in the class's MRO) of transport failures in the HTTP clients the
#: hub library has used (requests, httpx): matched by name, so no HTTP client is imported to classify
_TRANSPORT_ERRORS = frozenset(
    {
        "TransportError",
        "TimeoutException",
        "ConnectionError",
        "Timeout",
        "ChunkedEncodingError",
        "ConnectError",
        "ReadTimeout",
        "ConnectTimeout",
        "RemoteProtocolError",
        "ReadError",
    }
)


def is_transient_download_error(exc: BaseException) -> bool:
    """A download that may succeed if tried again: network trouble, a timeout, 429 or 5xx — in `exc`
    or in its cause chain (the hub client wraps transport errors in its own).

    Not: offline mode, a repository or revision that does not exist, a gated repository (4xx).
    """
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "OfflineModeIsEnabled":
            return False
        status = getattr(getattr(seen, "response", None), "status_code", None)
        if isinstance(status, int):
            return status == 429 or status >= 500
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        if any(c.__name__ in _TRANSPORT_ERRORS for c in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
