"""Leases on running jobs: a job whose worker vanished (its host died, or was cut off the network) runs again
elsewhere, and runs to completion once.

A worker claims a job with a lease: its run's name (``host/pid/random``, in ``lease_owner``) and a time
(``lease_expires``, ``lease_seconds`` ahead). While the job runs, a thread of the worker process renews the
leases of every job it holds every third of ``lease_seconds`` (the heartbeat), and looks for jobs whose lease
ran out, whoever held them: each is put back to 'queued' (an interruption counted; the second one fails it, as
after a server stop) and submitted to the queue again, by whichever worker saw it first (a conditional update).
Every write of a run names its lease, so a worker that lost its lease (cut off longer than the lease, then back)
writes nothing: its progress, result and failure are refused and it stops; the job's new run is the one that
completes. The clocks of the workers must agree to well within ``lease_seconds`` (NTP).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import update

from tunesmith.service.db import Analysis, Database, Generation, utcnow

if TYPE_CHECKING:  # the keeper gets the services when it starts: the type only, no import cycle
    from tunesmith.service.state import Services

log = logging.getLogger("tunesmith.leases")


class Leases:
    """The leases the runs of this process hold (shared by its worker threads)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.process = f"{socket.gethostname()}/{os.getpid()}"
        self._held: dict[str, tuple[type[Generation] | type[Analysis], str]] = {}  # lease -> (table, record id)
        self._lock = threading.Lock()

    def new(self) -> str:
        """A lease name for one run of one job."""
        return f"{self.process}/{uuid.uuid4().hex[:8]}"

    def expiry(self) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.seconds)

    def hold(self, lease: str, model: type[Generation] | type[Analysis], record_id: str) -> None:
        with self._lock:
            self._held[lease] = (model, record_id)

    def release(self, lease: str) -> None:
        with self._lock:
            self._held.pop(lease, None)

    def renew(self, db: Database) -> int:
        """Push the expiry of every held lease of a still running job ahead; returns how many were renewed."""
        with self._lock:
            held = dict(self._held)
        renewed = 0
        for model in (Generation, Analysis):
            leases = [lease for lease, (table, _) in held.items() if table is model]
            if not leases:
                continue
            with db.session() as session:
                result = session.execute(update(model).where(model.lease_owner.in_(leases), model.status == "running")
                                         .values(lease_expires=self.expiry())
                                         .execution_options(synchronize_session=False))
                renewed += result.rowcount
        return renewed


class LeaseKeeper:
    """The heartbeat thread of a worker process: renews its leases and queues again the jobs of lost leases."""

    def __init__(self, services: Services, leases: Leases) -> None:
        self.services = services
        self.leases = leases
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from tunesmith.service.recovery import requeue_expired

        every = self.leases.seconds / 3
        while not self._stop.wait(every):
            try:
                self.leases.renew(self.services.db)
                requeue_expired(self.services)
            except Exception:  # the database or the queue is away for a moment: try again next beat
                log.warning("lease heartbeat failed; trying again in %.1f s", every, exc_info=True)
