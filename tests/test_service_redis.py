"""Redis for real: the job queue on Huey's Redis storage with a separate `tunesmith worker` process, and the
per-key rate limit shared by several API processes through Redis.

The scale-out set-up as an operator runs it on several machines: records in PostgreSQL, the queue in Redis, the
API with no embedded worker, and a worker process that shares only those URLs (and the artifact directory).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service_fixtures import free_port
from tests.test_service_support import make_key, make_settings
from tunesmith.config import Settings
from tunesmith.service import create_app

ROOT = Path(__file__).resolve().parents[1]
FAST_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # loads in ~1 s where present
RATE = 6


def stop(process: subprocess.Popen) -> tuple[int, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode, process.stdout.read() if process.stdout else ""


def test_a_worker_process_runs_jobs_from_the_redis_queue(tmp_path, redis_server, postgres_cluster):
    redis_server.flush()
    database_url = postgres_cluster.new_database()
    settings = Settings(data_dir=tmp_path, database_url=database_url, queue_url=redis_server.url, workers=0,
                        preload=[], poll_seconds=0.1, requests_per_minute=10_000)
    headers = make_key(settings, "scale-out")
    env = {**os.environ, "TUNESMITH_DATABASE_URL": database_url, "TUNESMITH_PRELOAD": '["folk"]',
           "TUNESMITH_POLL_SECONDS": "0.1", "OMP_NUM_THREADS": "1"}  # one torch thread in the worker
    if FAST_SOUNDFONT.is_file():
        env["TUNESMITH_SOUNDFONT"] = str(FAST_SOUNDFONT)
    worker = None
    with TestClient(create_app(settings)) as api:
        services = api.app.state.services
        assert services.queue.huey.storage.__class__.__name__ == "RedisStorage"
        jobs = [api.post("/v1/generations", json={"model": "folk", "params": {"bars": 1}, "seed": seed},
                         headers=headers).json() for seed in (1, 2)]
        assert [job["status"] for job in jobs] == ["queued", "queued"]
        assert services.queue.pending() == 2  # waiting in Redis: this process has no worker
        try:
            worker = subprocess.Popen([sys.executable, "-m", "tunesmith", "worker", "--queue", redis_server.url,
                                       "--data-dir", str(tmp_path)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
            deadline = time.monotonic() + 90
            records = jobs
            while time.monotonic() < deadline and worker.poll() is None:
                records = [api.get(f"/v1/generations/{job['id']}", headers=headers).json() for job in jobs]
                # done, and the queue drained: a worker starting up submits the jobs still queued once more
                # (recovery), and those extra messages are taken (and skipped) after the jobs themselves ran
                if all(r["status"] not in ("queued", "running") for r in records) and not services.queue.pending():
                    break
                time.sleep(0.2)
            assert [r["status"] for r in records] == ["succeeded", "succeeded"], (records, stop(worker)[1])
            assert services.queue.pending() == 0
            for record in records:
                audio = api.get(record["links"]["audio"]["wav"], headers=headers)
                assert audio.status_code == 200 and audio.content[:4] == b"RIFF" and len(audio.content) > 10_000
        finally:
            code, log = stop(worker) if worker is not None else (0, "")
    assert code == 0, log
    assert f"worker with 1 thread(s) on {redis_server.url}" in log and "models: folk" in log


def _settings(root: Path, **overrides) -> Settings:
    return make_settings(root, {}, workers=0, preload=[], requests_per_minute=RATE, **overrides)


def _hits_until_limited(apps: list[TestClient], headers: dict[str, str], tries: int) -> list[int]:
    """Status codes of ``tries`` requests, sent to the apps in turn."""
    return [apps[i % len(apps)].get("/v1/generations", headers=headers).status_code for i in range(tries)]


def test_two_api_processes_share_one_rate_limit_budget_in_redis(tmp_path, redis_server):
    redis_server.flush()
    shared = _settings(tmp_path, rate_limit_url=redis_server.url)
    with TestClient(create_app(shared)) as first, TestClient(create_app(shared)) as second:
        assert type(first.app.state.services.limiter).__name__ == "RedisSlidingWindowLimiter"
        assert first.app.state.services.limiter is not second.app.state.services.limiter
        key = make_key(shared, "shared")
        statuses = _hits_until_limited([first, second], key, 2 * RATE)
        assert statuses == [200] * RATE + [429] * RATE  # one budget for both processes
        limited = second.get("/v1/generations", headers=key)
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert first.get("/v1/generations", headers=make_key(shared, "other")).status_code == 200  # per key


def test_without_redis_each_process_counts_alone(tmp_path):
    alone = _settings(tmp_path)
    with TestClient(create_app(alone)) as first, TestClient(create_app(alone)) as second:
        assert type(first.app.state.services.limiter).__name__ == "SlidingWindowLimiter"
        key = make_key(alone, "alone")
        statuses = _hits_until_limited([first, second], key, 2 * RATE + 2)
        assert statuses == [200] * (2 * RATE) + [429] * 2  # a budget per process


def test_a_redis_queue_also_carries_the_rate_limit(tmp_path, redis_server):
    redis_server.flush()
    settings = _settings(tmp_path, queue_url=redis_server.url)
    with TestClient(create_app(settings)) as api:
        assert type(api.app.state.services.limiter).__name__ == "RedisSlidingWindowLimiter"
        key = make_key(settings, "queue")
        assert _hits_until_limited([api], key, RATE + 1)[-1] == 429


def test_the_window_slides_on_redis_time(redis_server):
    from tunesmith.service.errors import TooManyRequests
    from tunesmith.service.limits import RedisSlidingWindowLimiter

    redis_server.flush()
    limiter = RedisSlidingWindowLimiter(redis_server.url, 2, window=0.5)
    try:
        limiter.check(7)
        limiter.check(7)
        with pytest.raises(TooManyRequests) as limited:
            limiter.check(7)
        assert limited.value.retry_after == 1 and "2 requests per 0.5 s" in limited.value.message
        limiter.check(8)  # another key has its own window
        time.sleep(0.6)
        limiter.check(7)  # the first two have left the window
    finally:
        limiter.close()


def test_an_unreachable_rate_limit_redis_is_503_not_a_crash(tmp_path):
    settings = _settings(tmp_path, rate_limit_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as api:
        response = api.get("/v1/generations", headers=make_key(settings, "k"))
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "missing_dependency" and "rate limiter's Redis" in error["message"]
        assert api.get("/v1/health").status_code == 200  # open routes do not need it


@pytest.mark.parametrize("url", ["http://localhost:6379", "sqlite:///x.db"])
def test_a_rate_limit_url_must_be_redis(tmp_path, url):
    from tunesmith.config import load_settings
    from tunesmith.errors import ParameterError

    with pytest.raises(ParameterError, match="rate_limit_url"):
        load_settings(data_dir=tmp_path, rate_limit_url=url)
