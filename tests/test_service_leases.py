"""Leases on running jobs, on SQLite and PostgreSQL: a run claims with a lease, the heartbeat renews it, a lease
that ran out is queued again (once, by one of several sweepers), and the old run's late writes are refused."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from tests.test_service_support import make_settings
from tunesmith.service import crud
from tunesmith.service.db import Generation, utcnow
from tunesmith.service.leases import Leases
from tunesmith.service.recovery import recover, requeue_expired
from tunesmith.service.state import start_services


def _job(services) -> str:
    with services.db.session() as session:
        key, _ = crud.create_api_key(session, name="lease")
        job = crud.add_generation(session, key_id=key.id, model="folk", params={}, prompt=None, interpretation=None,
                                  formats=["wav"], estimated_seconds=1.0)
        return job.id


def _record(services, job_id: str) -> Generation:
    with services.db.session() as session:
        return crud.get_generation(session, job_id, key_id=None)


def _expire(services, job_id: str) -> None:
    with services.db.session() as session:
        session.execute(update(Generation).where(Generation.id == job_id)
                        .values(lease_expires=utcnow() - dt.timedelta(seconds=1)))


def test_a_lost_lease_is_queued_again_once_and_the_old_run_writes_nothing(tmp_path, fresh_database_url):
    services = start_services(make_settings(tmp_path, {}, database_url=fresh_database_url, lease_seconds=30))
    try:
        job_id = _job(services)
        leases = Leases(30)
        first = leases.new()
        with services.db.session() as session:
            assert crud.claim_generation(session, job_id, first, leases.expiry()) is not None
        leases.hold(first, Generation, job_id)
        assert _record(services, job_id).lease_owner == first
        _expire(services, job_id)
        assert leases.renew(services.db) == 1  # the heartbeat pushes the expiry ahead again
        assert _record(services, job_id).lease_expires > utcnow()
        assert requeue_expired(services).requeued == 0  # a live lease is left alone

        _expire(services, job_id)  # the heartbeat stopped: the host died or was cut off
        assert requeue_expired(services).requeued == 1
        assert requeue_expired(services).requeued == 0  # a second sweeper finds nothing
        record = _record(services, job_id)
        assert (record.status, record.interruptions, record.lease_owner) == ("queued", 1, None)

        second = leases.new()
        with services.db.session() as session:
            assert crud.claim_generation(session, job_id, second, leases.expiry()) is not None
            assert not crud.set_progress(session, job_id, 0.5, first)  # the old run is refused ...
            assert not crud.complete_generation(session, job_id, result={}, artifacts={}, audio_seconds=1.0,
                                                lease=first)
            assert not crud.fail_generation(session, job_id, code="x", message="late", lease=first)
            assert crud.complete_generation(session, job_id, result={}, artifacts={}, audio_seconds=1.0,
                                            lease=second)  # ... the new one completes
        record = _record(services, job_id)
        assert (record.status, record.lease_owner, record.lease_expires) == ("succeeded", second, None)
    finally:
        services.close()


def test_start_up_takes_a_lost_lease_at_once_and_never_a_live_one(tmp_path, fresh_database_url):
    services = start_services(make_settings(tmp_path, {}, database_url=fresh_database_url, stale_seconds=600))
    try:
        live, lost = _job(services), _job(services)
        leases = Leases(30)
        for job_id in (live, lost):
            with services.db.session() as session:
                crud.claim_generation(session, job_id, leases.new(), leases.expiry())
        long_ago = utcnow() - dt.timedelta(hours=2)  # both started long before stale_seconds
        with services.db.session() as session:
            session.execute(update(Generation).values(started=long_ago))
        _expire(services, lost)
        done = recover(services, owns_queue=False)  # as `tunesmith worker` starts on a shared queue
        assert done.requeued == 1
        assert _record(services, lost).status == "queued" and _record(services, live).status == "running"
        done = recover(services, owns_queue=True)  # `serve` on its own SQLite queue: every running job was its own
        assert done.requeued == 1 and _record(services, live).status == "queued"
    finally:
        services.close()
