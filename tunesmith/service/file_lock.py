"""An exclusive lock shared by the processes of one `tunesmith serve` and by the threads of each."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


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
