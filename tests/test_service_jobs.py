"""Jobs without a consumer running: cancellation at every stage, failures, usage, the rate limit.

The app here has no embedded worker, so jobs stay queued until the test runs the real task code itself
(`GenerationRunner.run`, what the Huey consumer calls) at the moment it chooses.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.test_service_support import make_key, make_settings, trained_models
from tunesmith.service import create_app, crud
from tunesmith.service.generations.tasks import GenerationRunner

RATE = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    settings = make_settings(tmp_path_factory.mktemp("jobs"), trained_models(tmp_path_factory), workers=0,
                             requests_per_minute=RATE, database_url=database_url)
    with TestClient(create_app(settings)) as client:
        yield client, client.app.state.services


@pytest.fixture
def client(server):
    return server[0]


@pytest.fixture
def services(server):
    return server[1]


@pytest.fixture
def key(services):
    return make_key(services.settings, "jobs")


def queue_one(client, headers, **params) -> dict:
    response = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 1, **params}},
                           headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def usage_today(services, job_id: str) -> float:
    with services.db.session() as session:
        record = crud.get_generation(session, job_id, key_id=None)
        return crud.usage_on(session, record.key_id, crud.day_of(record.created))


def files_in_store(services) -> set[str]:
    return {p.name for p in services.store.root.rglob("*.*") if p.parent != services.store.scratch}


def test_no_embedded_worker_means_jobs_wait(client, services, key):
    assert client.get("/v1/health").json()["queue"]["embedded_workers"] == 0
    job = queue_one(client, key)
    assert client.get(f"/v1/generations/{job['id']}", headers=key).json()["status"] == "queued"
    assert services.queue.pending() >= 1
    response = client.get(f"/v1/generations/{job['id']}/audio", headers=key)
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert "queued" in response.json()["error"]["message"]
    assert "tunesmith_queue_depth" in client.get("/metrics").text


def test_a_queued_job_is_cancelled_then_deleted_and_never_started(client, services, key):
    job = queue_one(client, key)
    assert usage_today(services, job["id"]) > 0  # reserved against the quota
    cancelled = client.delete(f"/v1/generations/{job['id']}", headers=key)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert usage_today(services, job["id"]) == pytest.approx(0.0, abs=1e-6)  # reservation given back
    assert services.queue.runner.run(job["id"]) == "skipped"
    assert client.get(f"/v1/generations/{job['id']}", headers=key).json()["status"] == "cancelled"
    assert client.delete(f"/v1/generations/{job['id']}", headers=key).status_code == 204
    assert client.get(f"/v1/generations/{job['id']}", headers=key).status_code == 404


class CancelWhileRunning(GenerationRunner):
    """The real runner, with the job cancelled through the API at a chosen stage."""

    def __init__(self, base: GenerationRunner, cancel, *, at: float | None = None, after_write: bool = False):
        super().__init__(base.db, base.store, base.catalog, base.metrics)
        self.cancel, self.at, self.after_write = cancel, at, after_write

    def _progress(self, generation_id, progress):
        if progress == self.at:
            self.cancel()
        super()._progress(generation_id, progress)

    def _write(self, *args, **kwargs):
        artifacts = super()._write(*args, **kwargs)
        if self.after_write:
            self.cancel()
        return artifacts


@pytest.mark.parametrize("stage", [{"at": 0.5}, {"after_write": True}])
def test_a_running_job_cancelled_is_stopped_and_its_result_discarded(client, services, key, stage):
    before = files_in_store(services)
    job = queue_one(client, key, key="E minor", tempo=97)  # a piece no other test makes: files of its own

    def cancel():
        response = client.delete(f"/v1/generations/{job['id']}", headers=key)
        assert response.status_code == 202 and response.json()["status"] == "cancelled"

    assert CancelWhileRunning(services.queue.runner, cancel, **stage).run(job["id"]) == "cancelled"
    record = client.get(f"/v1/generations/{job['id']}", headers=key).json()
    assert record["status"] == "cancelled" and record["result"] is None and record["audio_seconds"] is None
    assert files_in_store(services) == before
    assert usage_today(services, job["id"]) == pytest.approx(0.0, abs=1e-6)


def test_a_job_run_by_the_task_code_succeeds_and_settles_usage(client, services, key):
    job = queue_one(client, key, tempo=120)
    reserved = usage_today(services, job["id"])
    assert services.queue.runner.run(job["id"]) == "succeeded"
    record = client.get(f"/v1/generations/{job['id']}", headers=key).json()
    assert record["status"] == "succeeded" and record["progress"] == 1.0
    assert usage_today(services, job["id"]) == pytest.approx(reserved - job_estimate(services, job)
                                                             + record["audio_seconds"], abs=1e-3)
    assert services.queue.runner.run(job["id"]) == "skipped"  # a job runs once


def job_estimate(services, job) -> float:
    with services.db.session() as session:
        return crud.get_generation(session, job["id"], key_id=None).estimated_seconds


def test_a_job_the_model_refuses_fails_with_the_reason(client, services, key):
    job = queue_one(client, key)
    with services.db.session() as session:  # params the API would refuse, as a record from an older server
        record = crud.get_generation(session, job["id"], key_id=None)
        record.params = {**record.params, "temperature": 9.0}
    assert services.queue.runner.run(job["id"]) == "failed"
    failed = client.get(f"/v1/generations/{job['id']}", headers=key).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "invalid_parameter"
    assert "temperature" in failed["error"]["message"]
    assert usage_today(services, job["id"]) == pytest.approx(0.0, abs=1e-6)
    assert client.get(f"/v1/generations/{job['id']}/midi", headers=key).status_code == 409


def test_rate_limit_is_429_with_retry_after_per_key(client, services):
    hasty, calm = make_key(services.settings, "hasty"), make_key(services.settings, "calm")
    statuses = [client.get("/v1/generations", headers=hasty).status_code for _ in range(RATE + 1)]
    assert statuses[:RATE] == [200] * RATE and statuses[RATE] == 429
    response = client.get("/v1/generations", headers=hasty)
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert client.get("/v1/generations", headers=calm).status_code == 200  # another key is not slowed
    assert client.get("/v1/health").status_code == 200  # nor are the open routes
