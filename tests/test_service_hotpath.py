"""The busiest routes' plumbing: Core transactions on a kept SQLite connection, WAL checkpoints off the request
path, and what the API processes of one server share (the rate limit, the load of connections)."""

from __future__ import annotations

import threading

import pytest

from tunesmith.service import crud
from tunesmith.service.balance import BalanceMiddleware, ConnectionBalance
from tunesmith.service.db import Database
from tunesmith.service.errors import TooManyRequests
from tunesmith.service.limits import SharedWindowLimiter
from tunesmith.service.wal import WalCheckpointer


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'records.db'}")
    database.migrate()
    yield database
    database.close()


def _add(connection, key_id: int, seconds: float = 2.0):
    return crud.add_generation(connection, key_id=key_id, model="folk", params={"bars": 1}, prompt=None,
                               interpretation=None, formats=["wav"], estimated_seconds=seconds)


def test_a_kept_connection_commits_rolls_back_and_serves_only_its_thread(db):
    with db.session() as session:
        key, _ = crud.create_api_key(session, name="k")
    path = db.keep_connection()
    assert path is not None and path.name == "records.db"
    with db.transaction() as connection:
        job = _add(connection, key.id)
    with pytest.raises(RuntimeError), db.transaction() as connection:
        lost = _add(connection, key.id)
        raise RuntimeError("the request failed after the insert")
    with db.transaction() as connection:
        row = crud.generation_row(connection, job.id, key.id)
        assert row is not None and row.status == "queued" and row.params == {"bars": 1}
        assert row.created.tzinfo is not None  # the column types apply to rows as to ORM objects
        assert crud.generation_row(connection, lost.id, key.id) is None  # rolled back
        assert crud.generation_row(connection, job.id, key.id + 1) is None  # another key's job does not exist
        assert crud.usage_on(connection, key.id, crud.day_of(job.created)) == pytest.approx(2.0)
    seen = {}

    def elsewhere() -> None:
        with db.transaction() as connection:  # another thread: a pooled connection, not the kept one
            seen["same"] = connection is db._kept[1]
            seen["row"] = crud.generation_row(connection, job.id, key.id)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen["same"] is False and seen["row"].id == job.id


def test_the_checkpointer_empties_a_log_that_the_kept_connection_leaves_alone(db):
    with db.session() as session:
        key, _ = crud.create_api_key(session, name="k")
    path = db.keep_connection()
    for _ in range(300):  # several pages per job: far past SQLite's own checkpoint at 1000 pages
        with db.transaction() as connection:
            _add(connection, key.id)
    checkpointer = WalCheckpointer([path], restart_pages=10**9)
    busy, log_pages, done = checkpointer.checkpoint()[str(path)]
    assert busy == 0 and log_pages > 1000 and done == log_pages  # nothing was checkpointed by the commits
    for _ in range(5):
        with db.transaction() as connection:
            _add(connection, key.id)
    _, log_pages, done = checkpointer.checkpoint()[str(path)]
    assert log_pages < 200 and done == log_pages  # the log started over after the full checkpoint
    checkpointer.stop()


def test_the_shared_limit_is_one_budget_for_every_process_that_opens_the_table(tmp_path):
    path = tmp_path / "rate-limit"
    first, second = SharedWindowLimiter(path, 3, window=10.0), SharedWindowLimiter(path, 3, window=10.0)
    try:
        first.check(7, now=100.0)
        second.check(7, now=101.0)
        first.check(7, now=102.0)
        with pytest.raises(TooManyRequests) as refused:
            second.check(7, now=103.0)
        assert refused.value.retry_after == 11  # the window ends at 110, then the three still count 2/3 more
        second.check(8, now=103.0)  # another key has its own budget
        with pytest.raises(TooManyRequests) as refused:
            first.check(7, now=110.5)  # the three of the window before still count 95 %
        assert refused.value.retry_after == 3
        first.check(7, now=113.4)  # ... and 66 % here: 1.98 + 1 <= 3
        first.check(7, now=125.0)  # two windows on, all forgotten
    finally:
        first.close()
        second.close()


def test_a_full_table_reuses_idle_slots_and_never_refuses_for_others(tmp_path, monkeypatch):
    monkeypatch.setattr(SharedWindowLimiter, "SLOTS", 8)
    monkeypatch.setattr(SharedWindowLimiter, "PROBES", 8)
    limiter = SharedWindowLimiter(tmp_path / "rate-limit", 1, window=1.0)
    try:
        for key_id in range(1, 9):
            limiter.check(key_id, now=5.0)
        limiter.check(9, now=5.5)  # no slot free: let through (and logged), not refused
        for key_id in range(10, 18):
            limiter.check(key_id, now=8.0)  # the first eight have been idle two windows: their slots are reused
        with pytest.raises(TooManyRequests):
            limiter.check(17, now=8.5)
    finally:
        limiter.close()


def test_a_process_over_its_share_of_connections_sheds_one_at_a_time(tmp_path, monkeypatch):
    counts = {0: 19, 1: 13}
    first = ConnectionBalance(tmp_path / "connections", 0, 2, count=lambda: counts[0])
    second = ConnectionBalance(tmp_path / "connections", 1, 2, count=lambda: counts[1])
    clock = [100.0]
    monkeypatch.setattr("tunesmith.service.balance.time.monotonic", lambda: clock[0])
    try:
        assert first.over_share() is True  # 19 of 32: over 16 + 1
        assert second.over_share() is False  # 13 of 32: under its share
        assert first.over_share() is False  # not again within MIN_GAP_SECONDS
        clock[0] += 1.0
        counts[0], counts[1] = 17, 15  # the shed client came back on the other process
        assert second.over_share() is False and first.over_share() is False  # 17 is within share + 1
    finally:
        first.close()
        second.close()


def test_the_balance_middleware_closes_the_connection_only_when_told(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    counts = [10]
    balance = ConnectionBalance(tmp_path / "connections", 0, 2, count=lambda: counts[0])
    other = ConnectionBalance(tmp_path / "connections", 1, 2, count=lambda: 2)
    other.over_share()  # the other process holds 2
    app = FastAPI()
    app.get("/x")(lambda: {"ok": True})
    app.add_middleware(BalanceMiddleware, balance=balance)
    with TestClient(app) as client:
        assert client.get("/x").headers.get("connection") == "close"  # 10 of 12: shed one
        counts[0] = 2
        assert "connection" not in client.get("/x").headers
    balance.close()
    other.close()


def test_submits_of_one_loop_turn_are_recorded_together_each_with_its_own_quota_check(tmp_path):
    import asyncio

    from tests.test_service_support import make_settings
    from tunesmith.service.generations.submits import Submission
    from tunesmith.service.state import start_services

    services = start_services(make_settings(tmp_path, {}, workers=0))
    batches: list[int] = []
    enqueue = services.queue.submit_many
    services.queue.submit_many = lambda ids: (batches.append(len(ids)), enqueue(ids))[1]

    def ask(seconds: float) -> Submission:
        return Submission(key_id=1, model="folk", params={"bars": 1}, prompt=None, interpretation=None,
                          formats=["wav"], seconds=seconds, quota=10.0)

    async def turn() -> list:
        services.db.keep_connection()  # on the loop's thread, as the server does
        return await asyncio.gather(*(services.submits.submit(ask(s)) for s in (4.0, 4.0, 4.0, 2.0)),
                                    return_exceptions=True)

    try:
        with services.db.session() as session:
            crud.create_api_key(session, name="k")
        answers = asyncio.run(turn())
        assert batches == [3]  # one queue transaction for the three accepted
        assert [type(a).__name__ for a in answers] == ["SimpleNamespace", "SimpleNamespace", "TooManyRequests",
                                                       "SimpleNamespace"]  # 4 + 4 + 4 > 10; 4 + 4 + 2 fits
        assert answers[2].code == "quota_exceeded"
        with services.db.session() as session:
            assert crud.usage_on(session, 1, crud.day_of(answers[0].created)) == pytest.approx(10.0)
            assert {crud.get_generation(session, a.id, key_id=1).status for a in (answers[0], answers[3])} == {
                "queued"}
        assert services.queue.pending() == 3
    finally:
        services.close()
