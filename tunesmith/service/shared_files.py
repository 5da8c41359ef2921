"""Files the processes of one `tunesmith serve` share: an exclusive lock, and tables mapped into memory."""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from pathlib import Path


def mapped_table(path: Path, size: int) -> mmap.mmap:
    """``path`` mapped into memory, shared with every process that maps it; made (zero-filled) or grown to
    ``size`` bytes if it is shorter."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)  # zeros
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


class FileLock:
    """An exclusive ``flock`` on ``path`` plus a thread lock (a flock does not exclude the threads of one
    process, which share the file descriptor). Waiters wake the moment the holder lets go. Without a ``path``
    (one process alone) it does nothing."""

    def __init__(self, path: Path | None) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600) if path is not None else None
        self._threads = threading.Lock()

    def __enter__(self) -> None:
        if self._fd is not None:
            self._threads.acquire()
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
