"""Checkpoint SQLite write-ahead logs from a background thread, so that no request waits for one.

In WAL mode SQLite copies the log back into the database file (a *checkpoint*, with an fsync) whenever a commit
leaves more than 1000 pages in it, and it does so inside that commit: about one submit in 150 used to pay 5-20 ms
for it on the event loop. The API server turns that off on its own connections (``PRAGMA wal_autocheckpoint=0``)
and runs :class:`WalCheckpointer` instead: every ``interval`` seconds a PASSIVE checkpoint of each file, which
never blocks a reader or a writer, on a thread of its own (the sqlite3 module releases the GIL while SQLite
works). Under a steady stream of writes a passive checkpoint never catches up with the last commit, and only
then may the next writer start the log file over: so when the log has grown past ``restart_pages``, a RESTART
checkpoint follows, which holds writers back for the moment it takes to copy what the passive one left (a few
ms every few seconds at the busiest, instead of a full checkpoint in every 150th commit). Other processes (the
worker, `tunesmith keys`) keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("tunesmith.service")
CHECKPOINT_SECONDS = 1.0
CHECKPOINT_NICE = 10  # the copying yields the CPU to the API processes
RESTART_PAGES = 4096  # 16 MB of log (SQLite's own automatic checkpoint comes at 1000 pages)


class WalCheckpointer:
    """A daemon thread that checkpoints the WAL of each SQLite file in ``paths`` every ``interval`` seconds."""

    def __init__(self, paths: list[Path], interval: float = CHECKPOINT_SECONDS,
                 restart_pages: int = RESTART_PAGES) -> None:
        self.paths = paths
        self.interval = interval
        self.restart_pages = restart_pages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._connections: dict[Path, sqlite3.Connection] = {}

    def start(self) -> None:
        self._thread.start()

    def checkpoint(self) -> dict[str, tuple[int, int, int]]:
        """One checkpoint of every file (PASSIVE, then RESTART if the log is long): {path: (busy, pages in the
        log, pages checkpointed)} as SQLite reports them."""
        results = {}
        for path in self.paths:
            if path not in self._connections:
                self._connections[path] = sqlite3.connect(path, timeout=1.0, check_same_thread=False)
            connection = self._connections[path]
            row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if row[1] > self.restart_pages:
                row = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            results[str(path)] = tuple(row)
        return results

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: a thread has a priority of its own
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHECKPOINT_NICE)
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # a locked or vanished file: try again next time, say so
                log.warning("WAL checkpoint failed: %s", exc)

    def stop(self) -> None:
        """Stop the thread, checkpoint once more and close the connections."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            self.checkpoint()
        except sqlite3.Error as exc:
            log.warning("last WAL checkpoint failed: %s", exc)
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
