"""What a running server (or worker) holds: records, artifacts, catalog, queue, limits, metrics.

:func:`start_services` is called once per process at start-up (the app's lifespan, `tunesmith worker`): it
migrates the database, reads the model cards, builds the queue, loads the models this process will run and,
for `serve`, starts the embedded consumer. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from tunesmith.config import Settings
from tunesmith.generation.catalog import Catalog, load_catalog
from tunesmith.generation.models import loaded_cards
from tunesmith.generation.originality import OriginalityGate
from tunesmith.generation.signing import Stamper
from tunesmith.prompting import warm_up as warm_up_prompts
from tunesmith.service import crud
from tunesmith.service.analyses import AnalysisQueue, AnalysisRunner
from tunesmith.service.db import ApiKey, Database
from tunesmith.service.generations.submits import SubmitBatcher
from tunesmith.service.generations.tasks import GenerationRunner, preload, prepare_audio_originality
from tunesmith.service.leases import LeaseKeeper, Leases
from tunesmith.service.limits import Limiter, make_limiter
from tunesmith.service.metrics import Metrics
from tunesmith.service.queue import EmbeddedConsumer, JobQueue, make_huey
from tunesmith.service.shared_files import FileLock
from tunesmith.service.storage import ArtifactStore, make_store
from tunesmith.service.worker_process import WorkerView

log = logging.getLogger("tunesmith.service")
T = TypeVar("T")
KEY_CACHE_SECONDS = 30.0  # an API key once found is trusted this long without asking the database again ...
REVOCATION_CHECK_SECONDS = 0.5  # ... unless a key was revoked since: looked for this often (one small query)
KEY_CACHE_SIZE = 10_000


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ArtifactStore
    catalog: Catalog
    queue: JobQueue
    metrics: Metrics
    limiter: Limiter
    analyses: AnalysisQueue
    stamper: Stamper
    consumer: EmbeddedConsumer | None = None
    worker: WorkerView | None = None  # `serve`'s consumer process, which the supervisor runs
    workers: int = 0
    loaded: list[str] = field(default_factory=list)
    submits: SubmitBatcher = field(init=False)  # records the submits of the API's requests, several at a time
    # taken around submit transactions by the API processes of a `serve`: SQLite lets one writer in at a time,
    # and one that finds it taken sleeps in its busy handler (1 ms, 2, 5 ...) with its event loop stopped
    writer_lock: FileLock = field(default_factory=lambda: FileLock(None))
    leases: Leases = field(default_factory=lambda: Leases(30.0))  # of the jobs this process's workers run
    keeper: LeaseKeeper | None = None  # renews them and re-queues the jobs of lost ones (a consuming process)

    _keys: dict[str, tuple[ApiKey, float]] = field(default_factory=dict)  # secret's hash -> (key, expiry)
    _revocations: tuple[int, str | None] | None = None  # crud.revocation_mark when the cache was last checked
    _revocations_checked: float = float("-inf")

    def __post_init__(self) -> None:
        self.submits = SubmitBatcher(self.db, self.queue, self.writer_lock)

    def cached_key(self, secret: str) -> ApiKey | None:
        """The key of ``secret`` if it was looked up less than KEY_CACHE_SECONDS ago (no database round trip)."""
        found = self._keys.get(crud.hash_secret(secret))
        return found[0] if found is not None and found[1] > time.monotonic() else None

    def revocations_due(self) -> bool:
        """Time to look whether a key was revoked (every REVOCATION_CHECK_SECONDS; the caller then calls
        :meth:`check_revocations`). Marks the check as done, so concurrent requests do not all make it."""
        now = time.monotonic()
        if now - self._revocations_checked < REVOCATION_CHECK_SECONDS:
            return False
        self._revocations_checked = now
        return True

    def check_revocations(self) -> None:
        """Forget every cached key when a key was revoked since the last look (by any process: `tunesmith keys
        revoke` writes the database every API process reads), so a revocation holds within a second."""
        with self.db.transaction() as connection:
            mark = crud.revocation_mark(connection)
        if self._revocations is not None and mark != self._revocations:
            self._keys.clear()
        self._revocations = mark

    def find_key(self, secret: str) -> ApiKey | None:
        """The key of ``secret`` from the records (remembered for KEY_CACHE_SECONDS, or until a key is revoked:
        :meth:`check_revocations`); None if unknown."""
        with self.db.session() as session:
            key = crud.api_key_by_secret(session, secret)
        if key is not None and key.revoked is None:
            if len(self._keys) > KEY_CACHE_SIZE:
                self._keys.clear()
            self._keys[crud.hash_secret(secret)] = (key, time.monotonic() + KEY_CACHE_SECONDS)
        return key

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Call ``function`` (a short database step) for a route: on SQLite right here on the event loop
        (a local query takes well under a millisecond, and a hop to a worker thread costs more than that),
        on other databases in the thread pool (a network round trip must not hold up the loop)."""
        if self.db.is_sqlite:
            return function(*args)
        return await run_in_threadpool(function, *args)

    def loaded_models(self) -> list[str]:
        cards = loaded_cards()
        reported = set(self.worker.loaded) if self.worker is not None else set()
        return [m.id for m in self.catalog.models.values() if m.card_path in cards or m.id in reported]

    def queue_depth(self) -> int:
        with self.db.session() as session:
            return crud.queued_count(session)

    def keep_leases(self) -> None:
        """Start the heartbeat of this process's leases (:mod:`tunesmith.service.leases`): a process that runs jobs."""
        if self.keeper is None:
            self.keeper = LeaseKeeper(self, self.leases)
            self.keeper.start()

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.stop_and_wait()
            self.consumer = None
        if self.keeper is not None:  # after the running jobs ended: their leases are renewed until then
            self.keeper.stop()
            self.keeper = None
        if self.queue.runner.gate is not None:  # a training-audio index still being built stops between batches
            self.queue.runner.gate.audio.close()
        self.queue.close()
        self.limiter.close()
        self.writer_lock.close()
        self.db.close()


def start_services(settings: Settings, metrics: Metrics | None = None, *, embedded_workers: int = 0,
                   recover: str | None = None, owns_queue: bool | None = None,
                   rate_limit_table: Path | None = None, writer_lock: Path | None = None) -> Services:
    """Open everything ``settings`` names; with ``embedded_workers`` > 0, load the models and start consuming.
    ``recover``: "server" or "worker" runs start-up recovery (:mod:`tunesmith.service.recovery`) first;
    ``owns_queue``: this process starts the machine's consumers (default: a server with embedded workers);
    ``rate_limit_table``, ``writer_lock``: the rate-limit table and the submit lock this process shares with the
    other API processes of a `serve`."""
    metrics = metrics or Metrics()
    db = Database(settings.database_url or "")
    db.migrate()
    store = make_store(settings)
    catalog = load_catalog(settings.resolved_weights_dir(), settings.models)
    for model_id, reason in catalog.skipped.items():
        log.warning("model %s is not served: %s", model_id, reason)
    stamper = Stamper(settings.data_dir)  # the signing key: made on first start, kept in the data directory
    gate = OriginalityGate(settings.data_dir / "originality", threshold=settings.originality_threshold,
                           tries=settings.originality_tries, audio_threshold=settings.audio_originality_threshold)
    leases = Leases(settings.lease_seconds)
    runner = GenerationRunner(db, store, catalog, metrics, stamper=stamper, gate=gate, leases=leases)
    queue = JobQueue(make_huey(settings.queue_url or ""), runner)
    analyses = AnalysisQueue(queue.huey, AnalysisRunner(db, catalog, settings, metrics, leases))
    services = Services(settings=settings, db=db, store=store, catalog=catalog, queue=queue, metrics=metrics,
                        limiter=make_limiter(settings, rate_limit_table), analyses=analyses, stamper=stamper,
                        workers=embedded_workers, writer_lock=FileLock(writer_lock), leases=leases)
    metrics.watch_queue(services.queue_depth)
    # the prompt engine's embedding model loads in the background, so that the first prompt does not wait for it
    threading.Thread(target=warm_up_prompts, name="prompt-warm-up", daemon=True).start()
    try:
        if recover is not None:  # before this process's consumer starts: its own jobs are never taken as orphans
            from tunesmith.service.recovery import recover as recover_jobs

            owner = owns_queue if owns_queue is not None else embedded_workers > 0
            recover_jobs(services, owns_queue=recover == "server" and owner)
        if embedded_workers > 0:
            services.loaded = preload(catalog, settings.preload)
            prepare_audio_originality(gate, catalog, services.loaded)
            services.consumer = queue.consumer(workers=embedded_workers, poll_seconds=settings.poll_seconds,
                                               embedded=True)
            services.keep_leases()
            services.consumer.start()
    except BaseException:
        services.close()
        raise
    return services
