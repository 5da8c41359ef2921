"""Start-up recovery: jobs a dead process left behind run again (or fail with a reason); finished work is kept.

A server killed hard (kill -9, power loss) leaves its running jobs 'running' in the records, and the queue
may have lost their messages. When a server or worker starts, :func:`recover` (before its consumer starts):

1. puts every orphaned 'running' generation and analysis back to 'queued' and counts the interruption; a job
   interrupted a second time is marked failed ("interrupted twice by a server stop") instead of retried;
2. submits every 'queued' record to the queue again. A duplicate message is harmless: a runner only claims a
   record that is still 'queued' (a conditional update), so the second copy is skipped before it touches the
   quota or the metrics.

Which 'running' records are orphaned (:func:`stale_cutoff`): `tunesmith serve` with embedded workers on the
SQLite queue (the single-machine default) owns every job of that machine, so everything running before its
start-up is orphaned. A `tunesmith worker`, a server without workers, or a server on a Redis queue (several
processes share the records) only takes records started more than ``settings.stale_seconds`` ago, so it never
steals a job a live worker is running (the setting must exceed the longest job) - except that a record whose lease
ran out is taken at once and one with a live lease never (:mod:`tunesmith.service.leases`; the lease's heartbeat
also re-queues the jobs of a vanished worker while the others run, :func:`requeue_expired`).
Succeeded, failed and cancelled records (and their artifacts) are never touched.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tunesmith.service import crud
from tunesmith.service.db import Analysis, Generation, utcnow

if TYPE_CHECKING:  # recovery runs inside start_services: the type only, no import cycle
    from tunesmith.service.state import Services

log = logging.getLogger("tunesmith.recovery")
MAX_INTERRUPTIONS = 1  # retried once; the next interruption fails the job
INTERRUPTED_TWICE = "interrupted twice by a server stop"


@dataclass
class Recovered:
    """What one recovery did: records re-queued, failed, and queued records submitted again."""

    requeued: int = 0
    failed: int = 0
    submitted: int = 0


def stale_cutoff(services: Services, *, owns_queue: bool, now: dt.datetime | None = None) -> dt.datetime:
    """Records running since before this moment are orphaned (see the module docstring)."""
    now = now or utcnow()
    single_machine = (services.settings.queue_url or "").startswith("sqlite:///")
    if owns_queue and single_machine:
        return now
    return now - dt.timedelta(seconds=services.settings.stale_seconds)


def orphaned(model: type[Generation] | type[Analysis], cutoff: dt.datetime, now: dt.datetime) -> ColumnElement[bool]:
    """Which running records a start-up takes: a lease that ran out (its worker stopped renewing it), or, with no
    lease (a record of an older server) or when this process owns every job (``cutoff`` is now), started before
    ``cutoff``."""
    if cutoff >= now:
        return model.started < cutoff
    return or_(and_(model.lease_expires.is_(None), model.started < cutoff), model.lease_expires < now)


def requeue_expired(services: Services) -> Recovered:
    """Re-queue (or fail) the running jobs whose lease ran out, and submit each re-queued one: what a worker's
    heartbeat does (:mod:`tunesmith.service.leases`)."""
    done = Recovered()
    for model in (Generation, Analysis):
        requeued, failed = _requeue_orphans(services, model, model.lease_expires < utcnow())
        done.requeued += len(requeued)
        done.failed += failed
        submit = services.queue.submit if model is Generation else services.analyses.submit
        for record_id in requeued:
            submit(record_id)
        done.submitted += len(requeued)
    if done.requeued or done.failed:
        log.warning("leases ran out: %d job(s) queued again, %d failed (interrupted twice)", done.requeued,
                    done.failed)
    return done


def recover(services: Services, *, owns_queue: bool) -> Recovered:
    """Re-queue (or fail) orphaned running jobs and submit every queued one; ``owns_queue``: this is
    `tunesmith serve` with embedded workers starting (on a SQLite queue it owns every job), not an extra worker."""
    now = utcnow()
    cutoff = stale_cutoff(services, owns_queue=owns_queue, now=now)
    done = Recovered()
    for model in (Generation, Analysis):
        requeued, failed = _requeue_orphans(services, model, orphaned(model, cutoff, now))
        done.requeued += len(requeued)
        done.failed += failed
    with services.db.session() as session:
        generations = list(session.scalars(select(Generation.id).where(Generation.status == "queued")
                                           .order_by(Generation.created)))
        analyses = list(session.scalars(select(Analysis.id).where(Analysis.status == "queued")
                                        .order_by(Analysis.created)))
    for generation_id in generations:
        services.queue.submit(generation_id)
    for analysis_id in analyses:
        services.analyses.submit(analysis_id)
    done.submitted = len(generations) + len(analyses)
    if done.requeued or done.failed or done.submitted:
        log.warning("recovery: %d interrupted job(s) queued again, %d failed (interrupted twice), %d queued job(s) "
                    "submitted", done.requeued, done.failed, done.submitted)
    return done


def _requeue_orphans(services: Services, model: type[Generation] | type[Analysis],
                     which: ColumnElement[bool]) -> tuple[list[str], int]:
    """Put the running ``model`` records ``which`` selects back to 'queued' (or fail them); returns (the ids
    re-queued, how many failed)."""
    requeued: list[str] = []
    failed = 0
    with services.db.session() as session:
        orphans = list(session.scalars(select(model).where(model.status == "running", which)))
    for record in orphans:
        with services.db.session() as session:
            if record.interruptions >= MAX_INTERRUPTIONS:  # counted, then failed
                counted = session.execute(update(model).where(model.id == record.id, model.status == "running", which)
                                          .values(interruptions=record.interruptions + 1)
                                          .execution_options(synchronize_session=False))
                failed += _fail(session, record) if counted.rowcount else 0
                continue
            # conditional on the record still running under the same run and still selected: a live worker that
            # finished it (or renewed its lease) meanwhile wins, and of several workers sweeping at once one
            # re-queues it
            result = session.execute(
                update(model).where(model.id == record.id, model.status == "running", which,
                                    _same_lease(model, record.lease_owner))
                .values(status="queued", progress=0.0, started=None, interruptions=record.interruptions + 1,
                        lease_owner=None, lease_expires=None)
                .execution_options(synchronize_session=False))
            if result.rowcount:
                requeued.append(record.id)
    return requeued, failed


def _same_lease(model: type[Generation] | type[Analysis], lease: str | None) -> ColumnElement[bool]:
    return model.lease_owner.is_(None) if lease is None else model.lease_owner == lease


def _fail(session: Session, record: Generation | Analysis) -> int:
    """Mark a twice-interrupted record failed (a generation's reserved quota is given back)."""
    if isinstance(record, Generation):
        return int(crud.fail_generation(session, record.id, code="interrupted", message=INTERRUPTED_TWICE))
    result = session.execute(
        update(Analysis).where(Analysis.id == record.id, Analysis.status == "running")
        .values(status="failed", finished=utcnow(), error={"code": "interrupted", "message": INTERRUPTED_TWICE})
        .execution_options(synchronize_session=False))
    return int(result.rowcount)
