"""The job queue: one Huey instance built from settings, the generation task, and the consumers.

``sqlite:///PATH`` (the default) keeps the queue in a SQLite file next to the records: one machine, no other
server. ``redis://HOST:PORT/DB`` uses Huey's Redis storage, so `tunesmith worker` on other machines consume
the same queue with the same code. `tunesmith serve` runs an :class:`EmbeddedConsumer` (worker threads in the
API process); `tunesmith worker` runs Huey's own consumer in the foreground.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from huey.storage import SqliteStorage

from tunesmith.errors import DependencyError, ParameterError
from tunesmith.service.generations.tasks import GenerationRunner

log = logging.getLogger("tunesmith.queue")
QUEUE_NAME = "tunesmith"


class QueueStorage(SqliteStorage):
    """Huey's SQLite storage in WAL mode with ``synchronous=NORMAL``: an enqueue survives kill -9 without an
    fsync per message (a power loss may drop the newest messages; start-up recovery re-submits queued records)."""

    auto_checkpoint = True  # False: another thread checkpoints the WAL (:mod:`tunesmith.service.wal`)

    def enqueue_many(self, messages: list[bytes], priority: int = 0) -> None:
        """Several messages in one transaction (Huey's ``enqueue`` commits each one)."""
        with self.db(commit=True) as cursor:
            cursor.executemany("insert into task (queue, data, priority) values (?, ?, ?)",
                               [(self.name, self.to_blob(message), priority) for message in messages])

    def _create_connection(self):  # type: ignore[no-untyped-def]
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        if not self.auto_checkpoint:
            conn.execute("pragma wal_autocheckpoint=0")
        return conn


def sqlite_queue_file(queue_url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` queue URL; None for Redis."""
    return Path(queue_url.removeprefix("sqlite:///")).expanduser() if queue_url.startswith("sqlite:///") else None


def make_huey(queue_url: str) -> Huey:
    """A Huey instance for ``sqlite:///PATH`` or ``redis://...`` (results are not stored: jobs write records)."""
    if (path := sqlite_queue_file(queue_url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=str(path), results=False, utc=True, storage_class=QueueStorage)
    if queue_url.startswith(("redis://", "rediss://")):
        try:
            import redis  # noqa: F401  (Huey's Redis storage needs it)
        except ImportError as exc:
            raise DependencyError("a redis:// queue needs the redis package: pip install redis") from exc
        return RedisHuey(QUEUE_NAME, url=queue_url, results=False, utc=True)
    raise ParameterError(f"queue_url must be sqlite:///PATH or redis://HOST:PORT/DB, got {queue_url!r}",
                         field="queue_url")


class JobQueue:
    """The queue and its one task type, ``generate(generation_id)``."""

    def __init__(self, huey: Huey, runner: GenerationRunner) -> None:
        self.huey = huey
        self.runner = runner
        self._generate = huey.task(name="generate")(runner.run)

    def submit(self, generation_id: str) -> None:
        self._generate(generation_id)

    def submit_many(self, generation_ids: list[str]) -> None:
        """Queue the jobs of several records: in one transaction on the SQLite queue (the messages are the ones
        Huey's own enqueue would write), one by one on Redis."""
        storage = self.huey.storage
        if isinstance(storage, QueueStorage):
            storage.enqueue_many([self.huey.serialize_task(self._generate.s(i)) for i in generation_ids])
        else:
            for generation_id in generation_ids:
                self.submit(generation_id)

    def leave_checkpoints(self) -> Path | None:
        """Stop this process's enqueues from checkpointing a SQLite queue's WAL (the caller runs a
        :class:`~tunesmith.service.wal.WalCheckpointer` on the file returned); None for Redis."""
        storage = self.huey.storage
        if not isinstance(storage, QueueStorage):
            return None
        storage.auto_checkpoint = False
        storage.close()  # the next connection is made with the setting
        return Path(storage.filename)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def consumer(self, *, workers: int, poll_seconds: float, embedded: bool) -> Consumer:
        cls = EmbeddedConsumer if embedded else Consumer
        return cls(self.huey, workers=workers, periodic=False, initial_delay=min(0.1, poll_seconds),
                   max_delay=poll_seconds, check_worker_health=not embedded, shutdown_timeout=60)

    def close(self) -> None:
        self.huey.storage.close()
        if isinstance(self.huey, RedisHuey):  # release the Redis connection pool (storage.close() does not)
            self.huey.storage.conn.close()


class EmbeddedConsumer(Consumer):
    """Huey's consumer as worker threads inside another program (the API server keeps its signal handlers)."""

    def _set_signal_handlers(self) -> None:
        pass

    def stop_and_wait(self) -> None:
        """Stop taking jobs and wait for the running ones (up to the shutdown timeout)."""
        self.stop(graceful=True)
