"""Durability with real processes: `tunesmith serve` killed with SIGKILL while jobs are queued and running.

One data directory (real SQLite records and queue, the embedded worker, the shipped chorale model) outlives three
server processes. The first is killed while a job runs; with the server down, one queued record is given params
the model refuses (as an older server might have stored). The second is killed while the interrupted job runs
again. The third must finish everything: each job succeeded, except the twice-interrupted one and the refused
one, which failed with their reasons; work that had succeeded is untouched and downloadable, the worker went on
after the failure, and the quota counts every job once. A starting `tunesmith worker` takes only stale running
records, never one a live worker may be running.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select

from tests.test_service_support import make_settings
from tunesmith.service import crud
from tunesmith.service.db import Analysis, Database, Generation, Usage, utcnow
from tunesmith.service.recovery import INTERRUPTED_TWICE
from tunesmith.service.state import start_services
from tunesmith.service.worker_process import process_alive

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("tunesmith")
FAST_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # loads in ~1 s where present
JOBS = 4
BARS = 4

pytestmark = pytest.mark.skipif(not (ROOT / "weights" / "chorale.json").is_file() or not CLI.is_file(),
                                reason="needs the shipped chorale model and the tunesmith command")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`tunesmith serve` on 127.0.0.1 in ``data_dir`` (its output goes to a log file)."""

    def __init__(self, data_dir: Path, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{name}.log"
        env = {**os.environ, "TUNESMITH_PRELOAD": '["chorale"]', "TUNESMITH_POLL_SECONDS": "0.05",
               "TUNESMITH_REQUESTS_PER_MINUTE": "100000", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if FAST_SOUNDFONT.is_file():
            env["TUNESMITH_SOUNDFONT"] = str(FAST_SOUNDFONT)
        env.pop("TUNESMITH_DATABASE_URL", None)  # this test is about the single-machine default
        env.pop("TUNESMITH_QUEUE_URL", None)
        with self.log.open("w") as out:
            self.process = subprocess.Popen([str(CLI), "serve", "--port", str(self.port), "--data-dir",
                                             str(data_dir), "--workers", "1"], stdout=out,
                                            stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                health = httpx2.get(f"{self.base}/v1/health", timeout=2)
                if health.status_code == 200:
                    self.worker_pid = health.json()["queue"]["worker_process"]  # serve's consumer, a child
                    return
            except httpx2.TransportError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"the server did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL to `serve` only; its worker process (it would run jobs forever) and its API processes (they
        would hold the port) must not outlive it."""
        children = children_of(self.process.pid)
        assert self.worker_pid in children and len(children) >= 2, f"serve's processes: {children}"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(map(process_alive, children)) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in children if process_alive(pid)]
        assert not left, f"processes {left} (worker {self.worker_pid}) outlived their killed server"


    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def records(db: Database) -> dict[str, Generation]:
    with db.session() as session:
        return {g.id: g for g in session.scalars(select(Generation))}


def finished(found: dict[str, Generation]) -> dict[str, Generation] | None:
    """``found`` when every record in it has ended, else None."""
    return found if all(g.status in ("succeeded", "failed") for g in found.values()) else None


def wait_for(condition, what: str, server: Server, timeout: float = 120.0, every: float = 0.02):
    """Poll ``condition()`` until it is truthy (bounded); returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert server.process.poll() is None, f"the server died:\n{server.output()}"
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}:\n{server.output()}")


def test_kill_9_loses_no_work_and_every_job_ends(tmp_path):
    data = tmp_path / "data"
    first = Server(data, "first")
    try:
        assert f"studio:   {first.base}/" in first.output() and f"{first.base}/docs" in first.output()
        assert "tunesmith keys create --name me" in first.output()
        assert first.worker_pid != first.process.pid and nice_of(first.worker_pid) > nice_of(first.process.pid)
        made = subprocess.run([str(CLI), "keys", "create", "--name", "durability", "--data-dir", str(data)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
        ids = []
        for seed in range(JOBS + 1):
            answer = httpx2.post(f"{first.base}/v1/generations", headers=headers, timeout=30,
                                 json={"model": "chorale", "params": {"bars": BARS}, "seed": seed})
            assert answer.status_code in (200, 201, 202), answer.text
            ids.append(answer.json()["id"])
        db = Database(f"sqlite:///{data / 'tunesmith.db'}")
        running = wait_for(lambda: [g for g in records(db).values() if g.status == "running"], "a running job", first)
        first.kill9()
    finally:
        first.stop()
    interrupted = running[0].id
    before = records(db)
    kept = {i: g for i, g in before.items() if g.status == "succeeded"}
    queued = [i for i in ids if before[i].status == "queued"]
    assert queued, "every job had started before the kill: make the jobs longer"
    refused = queued[-1]
    with db.session() as session:  # params the model refuses, as a record from an older server
        record = crud.get_generation(session, refused, key_id=None)
        record.params = {**record.params, "temperature": 9.0}

    second = Server(data, "second")
    try:
        assert "1 interrupted job(s) queued again" in second.output()
        wait_for(lambda: (g := records(db)[interrupted]).status == "running" and g.interruptions == 1,
                 "the interrupted job to run again", second)
        shown = httpx2.get(f"{second.base}/v1/generations/{interrupted}", headers=headers, timeout=30).json()
        assert shown["interruptions"] == 1, shown  # the job's record says it was interrupted once
        second.kill9()
    finally:
        second.stop()

    boot = utcnow()
    third = Server(data, "third")
    try:
        final = wait_for(lambda: finished(records(db)), "every job to finish", third)
        assert final[interrupted].status == "failed", final[interrupted].error
        assert final[interrupted].error == {"code": "interrupted", "message": INTERRUPTED_TWICE}
        shown = httpx2.get(f"{third.base}/v1/generations/{interrupted}", headers=headers, timeout=30).json()
        assert (shown["status"], shown["interruptions"], shown["error"]["code"]) == ("failed", 2, "interrupted")
        assert final[refused].status == "failed" and "temperature" in final[refused].error["message"]
        others = [i for i in ids if i not in (interrupted, refused)]
        assert all(final[i].status == "succeeded" for i in others), {i: final[i].error for i in others}
        for i, g in kept.items():  # work that had succeeded before the kill is untouched
            assert (final[i].artifacts, final[i].finished, final[i].result) == (g.artifacts, g.finished, g.result)
        for i in others:
            job = httpx2.get(f"{third.base}/v1/generations/{i}", headers=headers, timeout=30).json()
            assert job["interruptions"] == 0
            wav = httpx2.get(f"{third.base}{job['links']['audio']['wav']}", headers=headers, timeout=30)
            midi = httpx2.get(f"{third.base}/v1/generations/{i}/midi", headers=headers, timeout=30)
            assert wav.status_code == 200 and wav.content[:4] == b"RIFF" and len(wav.content) > 44
            assert midi.status_code == 200 and midi.content[:4] == b"MThd"
        # the worker goes on after a job that failed
        after = httpx2.post(f"{third.base}/v1/generations", headers=headers, timeout=30,
                            json={"model": "chorale", "params": {"bars": 1}, "seed": 99}).json()["id"]
        wait_for(lambda: records(db)[after].status == "succeeded", "a job after the failures", third)
        # every job counted once: in the quota (failed jobs give their reservation back) and in the metrics
        done = records(db)
        with db.session() as session:
            used = sum(u.audio_seconds for u in session.scalars(select(Usage)))
        assert used == pytest.approx(sum(g.audio_seconds or 0.0 for g in done.values()), abs=1e-3)
        metrics = httpx2.get(f"{third.base}/metrics", timeout=30).text
        counted = sum(float(n) for n in re.findall(r'^tunesmith_job_duration_seconds_count\{[^}]*\} (\S+)$',
                                                   metrics, flags=re.M))
        ran_here = [g for g in done.values() if g.started is not None and g.started >= boot]
        assert counted == len(ran_here) and counted >= 1
    finally:
        assert third.stop() == 0, third.output()
    db.close()



def running_job(settings, *, started_ago: float) -> str:
    """A generation record a worker claimed ``started_ago`` seconds ago (no worker runs it here)."""
    db = Database(settings.database_url or "")
    db.migrate()
    try:
        with db.session() as session:
            key, _ = crud.create_api_key(session, name="stale")
            job = crud.add_generation(session, key_id=key.id, model="chorale", params={"bars": 1}, prompt=None,
                                      interpretation=None, formats=["wav"], estimated_seconds=3.0)
            job.status, job.started = "running", utcnow() - dt.timedelta(seconds=started_ago)
            return job.id
    finally:
        db.close()


@pytest.mark.parametrize(("started_ago", "expected"), [(5.0, "running"), (700.0, "queued")])
def test_a_starting_worker_takes_only_stale_running_jobs(tmp_path, started_ago, expected):
    settings = make_settings(tmp_path, {}, workers=0, stale_seconds=600.0)
    job = running_job(settings, started_ago=started_ago)
    services = start_services(settings, recover="worker")  # as `tunesmith worker` starts: no consumer here
    try:
        with services.db.session() as session:
            record = crud.get_generation(session, job, key_id=None)
        assert record.status == expected
        assert record.interruptions == (1 if expected == "queued" else 0)
        assert services.queue.pending() == (1 if expected == "queued" else 0)
    finally:
        services.close()


@pytest.mark.parametrize(("interruptions", "expected"), [(0, "queued"), (1, "failed")])
def test_an_interrupted_analysis_is_retried_once_then_failed(tmp_path, interruptions, expected):
    settings = make_settings(tmp_path, {}, workers=0, stale_seconds=0.0)
    db = Database(settings.database_url or "")
    db.migrate()
    with db.session() as session:
        key, _ = crud.create_api_key(session, name="analyses")
        record = Analysis(key_id=key.id, status="running", progress=0.2, filename="take.wav", format="wav",
                          bytes=1000, duration=40.0, started=utcnow() - dt.timedelta(seconds=5),
                          interruptions=interruptions)
        session.add(record)
    db.close()
    services = start_services(settings, recover="worker")
    try:
        with services.db.session() as session:
            after = session.get(Analysis, record.id)
        assert after.status == expected
        if expected == "failed":
            assert after.error == {"code": "interrupted", "message": INTERRUPTED_TWICE}
            assert after.interruptions == 2 and services.queue.pending() == 0
        else:
            assert after.interruptions == 1 and after.started is None and services.queue.pending() == 1
    finally:
        services.close()
