"""What a running server (or worker) holds: records, artifacts, catalog, queue, limits, metrics.

:func:`start_services` is called once per process at start-up (the app's lifespan, `tunesmith worker`): it
migrates the database, reads the model cards, builds the queue, loads the models this process will run and,
for `serve`, starts the embedded consumer. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tunesmith.config import Settings
from tunesmith.service import crud
from tunesmith.service.analyses import AnalysisQueue, AnalysisRunner
from tunesmith.service.catalog import Catalog, load_catalog
from tunesmith.service.db import ApiKey, Database
from tunesmith.service.limits import Limiter, make_limiter
from tunesmith.service.metrics import Metrics
from tunesmith.service.model_cache import loaded_cards
from tunesmith.service.provenance import OriginalityGate, Stamper
from tunesmith.service.queue import EmbeddedConsumer, JobQueue, make_huey
from tunesmith.service.storage import ArtifactStore
from tunesmith.service.tasks import GenerationRunner, preload, prepare_audio_originality

log = logging.getLogger("tunesmith.service")


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
    workers: int = 0
    loaded: list[str] = field(default_factory=list)

    def find_key(self, secret: str) -> ApiKey | None:
        with self.db.session() as session:
            return crud.api_key_by_secret(session, secret)

    def loaded_models(self) -> list[str]:
        cards = loaded_cards()
        return [m.id for m in self.catalog.models.values() if m.card_path in cards]

    def queue_depth(self) -> int:
        with self.db.session() as session:
            return crud.queued_count(session)

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.stop_and_wait()
            self.consumer = None
        self.queue.close()
        self.limiter.close()
        self.db.close()


def start_services(settings: Settings, metrics: Metrics | None = None, *, embedded_workers: int = 0,
                   recover: str | None = None) -> Services:
    """Open everything ``settings`` names; with ``embedded_workers`` > 0, load the models and start consuming.
    ``recover``: "server" or "worker" runs start-up recovery (:mod:`tunesmith.service.recovery`) first."""
    metrics = metrics or Metrics()
    db = Database(settings.database_url or "")
    db.migrate()
    store = ArtifactStore(settings.artifacts_dir)
    catalog = load_catalog(settings.resolved_weights_dir(), settings.models)
    for model_id, reason in catalog.skipped.items():
        log.warning("model %s is not served: %s", model_id, reason)
    stamper = Stamper(settings.data_dir)  # the signing key: made on first start, kept in the data directory
    gate = OriginalityGate(settings.data_dir / "originality", threshold=settings.originality_threshold,
                           tries=settings.originality_tries, audio_threshold=settings.audio_originality_threshold)
    runner = GenerationRunner(db, store, catalog, metrics, stamper=stamper, gate=gate)
    queue = JobQueue(make_huey(settings.queue_url or ""), runner)
    analyses = AnalysisQueue(queue.huey, AnalysisRunner(db, catalog, settings, metrics))
    services = Services(settings=settings, db=db, store=store, catalog=catalog, queue=queue, metrics=metrics,
                        limiter=make_limiter(settings), analyses=analyses, stamper=stamper,
                        workers=embedded_workers)
    metrics.watch_queue(services.queue_depth)
    try:
        if recover is not None:  # before this process's consumer starts: its own jobs are never taken as orphans
            from tunesmith.service.recovery import recover as recover_jobs

            recover_jobs(services, owns_queue=recover == "server" and embedded_workers > 0)
        if embedded_workers > 0:
            services.loaded = preload(catalog, settings.preload)
            prepare_audio_originality(gate, catalog, services.loaded)
            services.consumer = queue.consumer(workers=embedded_workers, poll_seconds=settings.poll_seconds,
                                               embedded=True)
            services.consumer.start()
    except BaseException:
        services.close()
        raise
    return services
