"""`tunesmith bench service --workers 1,2,4`: generation throughput of a real server against its worker count.

For each count N, on 127.0.0.1 (loopback only), a fresh deployment as docs/api.md describes it for more than
one worker: PostgreSQL for the records and Redis for the queue when both can run here (throwaway servers,
:mod:`tunesmith.bench.backends`), else SQLite and the SQLite queue in the data directory (the figures say
which); `tunesmith serve --workers 0 --api-processes 1` takes the requests and N `tunesmith worker --workers 1`
processes run the jobs, each with one PyTorch thread. Then:

1. warm-up: 2N jobs through the workers (a worker's first job pays for lazy imports and caches; left out);
2. the batch: ``jobs`` generation jobs submitted at once (8-bar ``folk`` and ``chorale`` pieces in turn, seeds
   1, 2, ...), waited for (at most ``seconds``);
3. figures from the server's own times (created, started, finished) and the workers' CPU time (/proc):
   jobs per minute (succeeded jobs over first submit to last finish), CPU seconds per job of the workers and of
   the API processes, p50/p95 job latency (submit to finish) and queue wait (submit to start).

What it shows: a job's CPU cost is the same with 1, 2 or 4 workers, so throughput grows with the workers
only while each has a core; past the cores they share them and jobs/min stays where the cores put it (about
``60 x cores / CPU seconds per job``), while latency grows. The API's and the database's share per job is
reported beside it: it bounds how many cores of workers one API process can feed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json as json_module
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np

from tunesmith.bench.backends import Backends, start_backends
from tunesmith.bench.service import _api_processes, _cpu_seconds, _create_key, _server, bench_env
from tunesmith.errors import DependencyError, ParameterError

MODELS = ("folk", "chorale")
BARS = 8
DEFAULT_COUNTS = (1, 2, 4)
JOBS = 12  # per worker count
POLL_SECONDS = 0.5
WORKER_START_SECONDS = 600.0  # a worker imports torch and music21 and loads its models: slow on a busy machine


def parse_counts(text: str | int | tuple[int, ...]) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4); ParameterError naming --workers for anything else."""
    if isinstance(text, int):
        text = str(text)
    parts = text.split(",") if isinstance(text, str) else [str(n) for n in text]
    try:
        counts = tuple(int(part) for part in parts)
    except ValueError:
        raise ParameterError(f"--workers must be worker counts separated by commas (e.g. 1,2,4), got {text!r}",
                             field="workers") from None
    if not counts or min(counts) < 1 or max(counts) > 32:
        raise ParameterError(f"--workers counts must be between 1 and 32, got {text!r}", field="workers")
    return counts


def _job(index: int, models: tuple[str, ...]) -> dict:
    return {"model": models[index % len(models)], "params": {"bars": BARS}, "seed": index + 1}


@contextlib.contextmanager
def _workers(count: int, data_dir: Path, env: dict[str, str]) -> Iterator[list[int]]:
    """``count`` `tunesmith worker` processes on the server's records and queue; yields their pids once each has
    loaded its models; stops them after (SIGINT: they finish their running jobs)."""
    processes: list[subprocess.Popen] = []
    logs = [data_dir / f"worker-{index}.log" for index in range(count)]
    try:
        for log_path in logs:
            with open(log_path, "wb") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "tunesmith", "worker", "--data-dir", str(data_dir), "--workers", "1"],
                    stdout=log, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + WORKER_START_SECONDS
        waiting = list(zip(processes, logs, strict=True))
        while waiting:
            process, log_path = waiting[0]
            if "tunesmith: worker with" in log_path.read_text(errors="replace"):
                waiting.pop(0)
                continue
            if process.poll() is not None or time.monotonic() > deadline:
                tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
                raise DependencyError(f"a bench worker did not start: {tail or 'no output'}")
            time.sleep(POLL_SECONDS)
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _submit(client: httpx.Client, jobs: list[dict]) -> list[str]:
    ids = []
    for job in jobs:
        response = client.post("/v1/generations", json=job)
        if response.status_code != 202:
            raise DependencyError(f"the bench server refused a generation: HTTP {response.status_code} "
                                  f"{response.text[:200]}")
        ids.append(response.json()["id"])
    return ids


def _records(client: httpx.Client) -> dict[str, dict]:
    """Every generation of the bench's key by id, a page of 100 per request (one request per poll, not one per
    job: the API's CPU per job is a figure here)."""
    records: dict[str, dict] = {}
    path: str | None = "/v1/generations?limit=100"
    while path:
        page = client.get(path).json()
        records |= {record["id"]: record for record in page["items"]}
        path = page["next"]
    return records


def _wait(client: httpx.Client, ids: list[str], seconds: float) -> list[dict]:
    """The records of ``ids`` once all have ended, or as they are after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        records = _records(client)
        ended = [records[job_id]["status"] in ("succeeded", "failed", "cancelled") for job_id in ids]
        if all(ended) or time.monotonic() > deadline:
            return [records[job_id] for job_id in ids]
        time.sleep(POLL_SECONDS)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def measure(count: int, *, jobs: int, seconds: float, backends: Backends | None,
            models: tuple[str, ...] = MODELS, env_extra: dict[str, str] | None = None) -> dict:
    """The figures of one worker count on a fresh server (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="tunesmith-bench-scaling-") as tmp:
        data_dir = Path(tmp)
        extra = dict(env_extra or {})
        if backends is not None:
            database_url, queue_url = backends.fresh()
            extra |= {"TUNESMITH_DATABASE_URL": database_url, "TUNESMITH_QUEUE_URL": queue_url}
        secret = _create_key(data_dir, extra.get("TUNESMITH_DATABASE_URL"))
        env = bench_env({**extra, "TUNESMITH_DATA_DIR": str(data_dir)}, models=models)
        with _server(data_dir, 0, 1, env_extra=env) as (url, server_pid), _workers(count, data_dir, env) as pids, \
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=30.0) as client:
            warm = _wait(client, _submit(client, [_job(i, models) for i in range(2 * count)]), seconds)
            if any(record["status"] != "succeeded" for record in warm):
                bad = next(record for record in warm if record["status"] != "succeeded")
                raise DependencyError(f"a warm-up job ended {bad['status']}: {bad.get('error')}")
            api_pids = _api_processes(server_pid, None)
            workers_before, api_before = _cpu_seconds(tuple(pids)), _cpu_seconds(api_pids)
            load_before = os.getloadavg()[0]
            ids = _submit(client, [_job(2 * count + i, models) for i in range(jobs)])
            records = _wait(client, ids, seconds)
            workers_after, api_after = _cpu_seconds(tuple(pids)), _cpu_seconds(api_pids)
    done = [record for record in records if record["status"] == "succeeded"]
    latency = [s for r in done if (s := _seconds_between(r["created"], r["finished"])) is not None]
    waits = [s for r in done if (s := _seconds_between(r["created"], r["started"])) is not None]
    runs = [s for r in done if (s := _seconds_between(r["started"], r["finished"])) is not None]
    span = _seconds_between(min(r["created"] for r in done), max(r["finished"] for r in done)) if done else None

    def per_job(before: float | None, after: float | None) -> float | None:
        return round((after - before) / len(done), 3) if done and before is not None and after is not None else None

    return {
        "workers": count, "jobs": jobs, "succeeded": len(done),
        "failed": sum(r["status"] in ("failed", "cancelled") for r in records),
        "unfinished": sum(r["status"] not in ("succeeded", "failed", "cancelled") for r in records),
        "first_error": next((r.get("error") for r in records if r["status"] == "failed"), None),
        "span_seconds": round(span, 3) if span else None,
        "jobs_per_minute": round(len(done) / span * 60.0, 2) if span else None,
        "worker_cpu_seconds_per_job": per_job(workers_before, workers_after),
        "api_cpu_seconds_per_job": per_job(api_before, api_after),
        "latency_p50": _percentile(latency, 50), "latency_p95": _percentile(latency, 95),
        "queue_wait_p50": _percentile(waits, 50), "queue_wait_p95": _percentile(waits, 95),
        "run_seconds_p50": _percentile(runs, 50), "load_average_before": round(load_before, 2),
    }


def run(*, counts: str | tuple[int, ...] = DEFAULT_COUNTS, jobs: int = JOBS, seconds: float = 600.0,
        json: bool = False, backends: str = "auto", models: tuple[str, ...] = MODELS,
        env_extra: dict[str, str] | None = None) -> dict:
    """Bench each worker count in ``counts``; ``backends``: "auto" (PostgreSQL + Redis when they run here, else
    SQLite) or "sqlite". Prints a table or JSON; returns the figures."""
    worker_counts = parse_counts(counts)
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}", field="jobs")
    if not seconds > 0:
        raise ParameterError(f"--seconds must be more than 0, got {seconds}", field="seconds")
    servers, why = start_backends() if backends == "auto" else (None, "SQLite asked for")
    try:
        rows = [measure(count, jobs=jobs, seconds=seconds, backends=servers, models=models, env_extra=env_extra)
                for count in worker_counts]
    finally:
        if servers is not None:
            servers.stop()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    figures = {
        "rows": rows, "cores": cores, "models": list(models), "bars": BARS, "jobs": jobs,
        "records": "postgresql" if servers is not None else "sqlite",
        "queue": "redis" if servers is not None else "sqlite",
        "backends_note": why or "throwaway PostgreSQL and Redis on 127.0.0.1",
        "api_processes": 1,
    }
    figures["scaling"] = _scaling(rows, cores or 1)
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        _print_table(figures)
    return figures


def _scaling(rows: list[dict], cores: int) -> dict:
    """What the rows say about cores: throughput relative to one worker and the cores' ceiling."""
    base = rows[0]
    cpu = [row["worker_cpu_seconds_per_job"] for row in rows if row["worker_cpu_seconds_per_job"]]
    api = [row["api_cpu_seconds_per_job"] for row in rows if row["api_cpu_seconds_per_job"]]
    cpu_per_job = float(np.median(cpu)) if cpu else None
    api_per_job = float(np.median(api)) if api else None
    return {
        "speedup": {str(row["workers"]): (round(row["jobs_per_minute"] / base["jobs_per_minute"], 2)
                                          if row["jobs_per_minute"] and base["jobs_per_minute"] else None)
                    for row in rows},
        "worker_cpu_seconds_per_job_median": round(cpu_per_job, 3) if cpu_per_job else None,
        "jobs_per_minute_per_core": round(60.0 / cpu_per_job, 1) if cpu_per_job else None,
        "ceiling_jobs_per_minute_here": round(60.0 * cores / cpu_per_job, 1) if cpu_per_job else None,
        "cores_one_api_process_feeds": (round(cpu_per_job / api_per_job, 0) if cpu_per_job and api_per_job
                                        else None),
    }


def _print_table(figures: dict) -> None:
    def value(x: float | None, width: int = 8, digits: int = 2) -> str:
        return f"{x:{width}.{digits}f}" if x is not None else " " * (width - 1) + "-"

    print(f"tunesmith service: {figures['jobs']} jobs of {BARS} bars ({', '.join(figures['models'])} in turn) "
          f"per worker count; records in {figures['records']}, queue in {figures['queue']} "
          f"({figures['backends_note']}); 1 API process; {figures['cores']} cores")
    print(f"  {'workers':>7s} {'jobs/min':>8s} {'CPU s/job':>9s} {'API s/job':>9s} {'lat p50':>8s} {'lat p95':>8s} "
          f"{'wait p50':>8s} {'wait p95':>8s} {'run p50':>8s} {'failed':>6s}")
    for row in figures["rows"]:
        print(f"  {row['workers']:7d} {value(row['jobs_per_minute'], 8, 1)} "
              f"{value(row['worker_cpu_seconds_per_job'], 9)} {value(row['api_cpu_seconds_per_job'], 9, 3)} "
              f"{value(row['latency_p50'])} {value(row['latency_p95'])} {value(row['queue_wait_p50'])} "
              f"{value(row['queue_wait_p95'])} {value(row['run_seconds_p50'])} "
              f"{row['failed'] + row['unfinished']:6d}")
        if row["first_error"]:
            print(f"    first error: {row['first_error']}")
    scaling = figures["scaling"]
    print(f"  what scales: a job costs the workers {scaling['worker_cpu_seconds_per_job_median']} CPU s whatever "
          f"their number, so jobs/min grows with workers only while each has a core: about "
          f"{scaling['jobs_per_minute_per_core']} jobs/min per core, {scaling['ceiling_jobs_per_minute_here']} on "
          f"these {figures['cores']} cores; one API process's share per job would feed about "
          f"{scaling['cores_one_api_process_feeds']} cores of workers")
