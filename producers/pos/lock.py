"""One process per source: an exclusive, non-blocking file lock held for the life of a command."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tillflow.errors import TillflowError


class AlreadyRunning(TillflowError, RuntimeError):
    """Another process holds the lock of this source."""


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold ``path`` locked; raise :class:`AlreadyRunning` naming ``what`` if another process holds it.

    The kernel drops the lock when the process dies, so a crash never leaves a stale lock behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise AlreadyRunning(f"{what} is already running (pid {holder}); lock {path}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
