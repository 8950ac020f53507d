"""One llem process per study directory at a time: an advisory lock on ``<study>/.lock``.

``fcntl.flock`` is released by the kernel when the holder dies, even by SIGKILL,
so a crashed study never stays locked, while a second ``--resume`` of a study
that is still running is refused instead of running the same pairs twice. The
empty ``.lock`` file stays in the directory. On a platform without ``fcntl`` the
lock is a no-op (documented limitation).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from llenergymeasure.errors import StudyError

LOCK_FILE = ".lock"


class StudyLock:
    """Held for the whole session; raises `StudyError` if another live process holds it."""

    def __init__(self, study_dir: Path) -> None:
        self.path = study_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> StudyLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StudyError(
                f"another llem process is running this study right now ({self.path.parent}); "
                "wait for it to finish or stop it, then --resume",
                study_dir=self.path.parent,
            ) from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
