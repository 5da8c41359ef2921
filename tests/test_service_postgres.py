"""Several API processes on one database (SQLite file or PostgreSQL): the daily quota is one budget per key.

Usage lives in the database (table ``usage``), so every process that shares the database counts it together;
two app instances stand for two `tunesmith serve` processes behind a load balancer.
"""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from tests.test_service_support import make_key, make_settings
from tunesmith.service import create_app, crud
from tunesmith.service.db import Usage

QUOTA = 10.0
PIECE = {"model": "folk", "params": {"bars": 2, "tempo": 120}}  # 2 bars of 4/4 at 120 BPM + 1 s tail: 5 s


@pytest.fixture
def two_processes(tmp_path, fresh_database_url):
    settings = make_settings(tmp_path, {}, workers=0, preload=[], weights_dir=None,
                             database_url=fresh_database_url)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        yield first, second, settings


def reserved(client: TestClient) -> float:
    with client.app.state.services.db.session() as session:
        return sum(u.audio_seconds for u in session.query(Usage))


def test_the_daily_quota_is_one_budget_across_processes(two_processes):
    first, second, settings = two_processes
    key = make_key(settings, "quota", quota_seconds=QUOTA)
    assert first.post("/v1/generations", json=PIECE, headers=key).status_code == 202
    assert second.post("/v1/generations", json=PIECE, headers=key).status_code == 202
    refused = first.post("/v1/generations", json=PIECE, headers=key)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"
    assert "10 audio seconds" in refused.json()["error"]["message"] and "10.0 s used today" in \
        refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    assert reserved(second) == pytest.approx(QUOTA)
    # a cancelled job gives its reservation back, seen by the other process
    queued = first.get("/v1/generations", headers=key).json()["items"][0]
    assert second.delete(f"/v1/generations/{queued['id']}", headers=key).status_code == 202
    assert first.post("/v1/generations", json=PIECE, headers=key).status_code == 202
    with first.app.state.services.db.session() as session:
        day = crud.day_of(crud.utcnow())
        key_id = session.query(Usage).one().key_id
        assert crud.usage_on(session, key_id, day) == pytest.approx(QUOTA)


def test_concurrent_submissions_do_not_overdraw_the_quota(two_processes):
    first, second, settings = two_processes
    key = make_key(settings, "hasty", quota_seconds=QUOTA)
    start = threading.Barrier(8)
    statuses: list[int] = []

    def submit(client: TestClient) -> None:
        start.wait(timeout=30)
        statuses.append(client.post("/v1/generations", json=PIECE, headers=key).status_code)

    threads = [threading.Thread(target=submit, args=((first, second)[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [202, 202] + [429] * 6
    assert reserved(first) == pytest.approx(QUOTA)
