"""`tunesmith bench service`: latency and throughput of a real server on 127.0.0.1 (loopback only).

Starts `tunesmith serve` as a subprocess (SQLite in a temporary data directory, its worker process, the shipped
``folk`` model), creates an API key directly in its database with a rate limit and quota the bench cannot hit,
then drives it from ``clients`` concurrent keep-alive connections on one event loop:

1. submit: ``requests`` POST /v1/generations of the cheapest job (folk, 1 bar) -> p50/p99 latency;
2. status: ``requests`` GET /v1/generations/{id} over the submitted ids -> p50/p99 latency and requests/s;
3. end to end: waits (at most ``seconds``) while the worker drains the queue -> completed jobs per minute, from
   the server's own ``started``/``finished`` times;
4. status again after that wait: without the worker competing for the CPU when the queue did drain.

Before phase 1, every API process of the server answers a few requests of each kind (their first ones pay
for lazy imports), and one job goes through the worker. Phases 1 and 2 run while the worker process is
generating the submitted jobs, as they would in production.

Every phase is bounded in count and in time. Goals on the 2-core machine (reported, not asserted): submit p99 at
most 50 ms at 32 clients; status GETs at least 500 requests/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import json as json_module
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np

from tunesmith.errors import DependencyError, ParameterError

MODEL = "folk"  # the cheapest shipped model: one voice
JOB = {"model": MODEL, "params": {"bars": 1}, "seed": 1}
GOAL_SUBMIT_P99_MS = 50.0
GOAL_STATUS_RPS = 500.0
START_TIMEOUT = 180.0  # the server loads the model and the soundfont first
PHASE_TIMEOUT = 120.0  # longest a submit or status phase may run
UNLIMITED = 10**9
REQUEST_TIMEOUT = 30.0  # longest one timed request may take


@dataclass
class Phase:
    """Latencies (seconds) of the successful requests of one phase, its failures and its wall-clock time."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu_seconds: float = 0.0  # of this (client) process: how much of the two cores the clients took
    server_cpu_seconds: float | None = None  # of the API processes (None where /proc is not readable)
    worker_cpu_seconds: float | None = None  # of `serve`'s worker process, generating meanwhile

    def summary(self) -> dict:
        ms = np.asarray(self.latencies) * 1000.0
        ok = len(self.latencies)
        return {
            "requests": ok + len(self.failures), "ok": ok, "failed": len(self.failures),
            "first_failure": self.failures[0] if self.failures else None,
            "p50_ms": round(float(np.percentile(ms, 50)), 2) if ok else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 2) if ok else None,
            "max_ms": round(float(ms.max()), 2) if ok else None,
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(ok / self.seconds, 1) if self.seconds > 0 else None,
            "client_cpu_ms_per_request": round(self.client_cpu_seconds / ok * 1000.0, 2) if ok else None,
            "server_cpu_ms_per_request": (round(self.server_cpu_seconds / ok * 1000.0, 2)
                                          if ok and self.server_cpu_seconds is not None else None),
            "worker_cpu_seconds": (round(self.worker_cpu_seconds, 2) if self.worker_cpu_seconds is not None
                                   else None),
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _create_key(data_dir: Path, database_url: str | None = None) -> str:
    """Migrate the bench database (default: the data directory's SQLite) and create a key in it with an
    unreachable quota; returns the secret."""
    from tunesmith.service import crud
    from tunesmith.service.db import Database

    # what the server uses (its env is cleared)
    db = Database(database_url or f"sqlite:///{data_dir.resolve() / 'tunesmith.db'}")
    try:
        db.migrate()
        with db.session() as session:
            _, secret = crud.create_api_key(session, name="bench", quota_seconds=float(UNLIMITED))
    finally:
        db.close()
    return secret


def bench_env(env_extra: dict[str, str] | None = None, models: tuple[str, ...] = (MODEL,)) -> dict[str, str]:
    """The environment of the bench's server processes: no TUNESMITH_* setting of the caller's (but its
    weights), limits the bench cannot reach, ``models`` loaded at start-up, one PyTorch thread; ``env_extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TUNESMITH_")}
    env.update(TUNESMITH_REQUESTS_PER_MINUTE=str(UNLIMITED), TUNESMITH_DAILY_AUDIO_SECONDS=str(UNLIMITED),
               TUNESMITH_PRELOAD=json_module.dumps(list(models)), OMP_NUM_THREADS="1")
    if "TUNESMITH_WEIGHTS" in os.environ:
        env["TUNESMITH_WEIGHTS"] = os.environ["TUNESMITH_WEIGHTS"]
    env.update(env_extra or {})
    return env


@contextlib.contextmanager
def _server(data_dir: Path, workers: int, api_processes: int | None,
            env_extra: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """`tunesmith serve` on 127.0.0.1:free port with the bench's settings (and ``env_extra``); yields its URL and
    process id, stops it after."""
    port = _free_port()
    env = bench_env(env_extra)
    if api_processes is not None:
        env["TUNESMITH_API_PROCESSES"] = str(api_processes)
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tunesmith", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(data_dir), "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log_path)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/health", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
    raise DependencyError(f"the bench server at {url} did not start: {' | '.join(tail) or 'no output'}")


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a request and reads its answer, and little else.

    The timed phases use it instead of a full client library: the clients run on the same two cores as the
    server, and a general client spends several times more CPU per request than this (``client_cpu_ms_per_request``
    in the figures), which the server would not get."""

    def __init__(self, url: str, secret: str) -> None:
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.head = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {secret}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """(status, body) of one request; reconnects when the server closed the connection."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        if "content-length" not in headers and status not in (204, 304):  # those two have no body
            raise ConnectionError(f"answer without Content-Length: {lines[0]}")
        data = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection") == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _cpu_seconds(pids: int | tuple[int, ...] | None) -> float | None:
    """User + system CPU time of process(es) ``pids`` so far (Linux /proc); None where that cannot be read."""
    if pids is None:
        return None
    total = 0.0
    for pid in (pids,) if isinstance(pids, int) else pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _api_processes(server_pid: int, worker_pid: int | None) -> tuple[int, ...]:
    """The server's process and its API processes: its children other than the worker (Linux /proc)."""
    children: list[int] = []
    for task in Path(f"/proc/{server_pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            children += [int(pid) for pid in (task / "children").read_text().split()]
    return (server_pid, *(pid for pid in children if pid != worker_pid))


async def _drive(count: int, clients: int, connect: Callable[[], Connection],
                 request: Callable[[Connection, int], Awaitable[tuple[int, bytes]]],
                 expect: int | tuple[int, ...], phase: Phase, results: list | None = None,
                 pids: tuple[tuple[int, ...] | None, int | None] = (None, None)) -> None:
    """Send ``count`` requests from ``clients`` concurrent connections (at most PHASE_TIMEOUT s); time each."""
    next_index = iter(range(count))
    deadline = time.monotonic() + PHASE_TIMEOUT

    async def client() -> None:
        connection = connect()
        try:
            for index in next_index:
                if time.monotonic() > deadline:
                    phase.failures.append("phase time limit reached")
                    continue
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        status, body = await request(connection, index)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    phase.failures.append(f"{type(exc).__name__}: {exc}")
                    connection.close()
                    continue
                elapsed = time.perf_counter() - started
                if status not in ((expect,) if isinstance(expect, int) else expect):
                    phase.failures.append(f"HTTP {status}: {body[:200].decode(errors='replace')}")
                    continue
                phase.latencies.append(elapsed)
                if results is not None:
                    results.append(json_module.loads(body))
        finally:
            connection.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    servers_started = [_cpu_seconds(pid) for pid in pids]
    gc.collect()
    gc.disable()  # a collection in the clients would pause every request in flight and count against the server
    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        gc.enable()
    phase.seconds = time.perf_counter() - started
    phase.client_cpu_seconds = time.process_time() - cpu_started
    spent = [None if a is None or (b := _cpu_seconds(pid)) is None else b - a
             for pid, a in zip(pids, servers_started, strict=True)]
    phase.server_cpu_seconds, phase.worker_cpu_seconds = spent


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


async def _drain(client: httpx.AsyncClient, ids: list[str], seconds: float) -> dict:
    """Wait (at most ``seconds``) for the jobs to finish; completed jobs per minute from the server's times."""
    deadline = time.monotonic() + seconds
    records: dict[str, dict] = {}
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        while pending:  # the queue is first in, first out: look no further than the oldest unfinished job
            record = (await client.get(f"/v1/generations/{pending[0]}")).json()
            if record.get("status") not in ("succeeded", "failed", "cancelled"):
                break
            records[pending.pop(0)] = record
        if pending:
            await asyncio.sleep(0.5)
    done = [r for r in records.values() if r["status"] == "succeeded"]
    starts = [_parse_time(r.get("started")) for r in done]
    ends = [_parse_time(r.get("finished")) for r in done]
    span = (max(e for e in ends if e) - min(s for s in starts if s)).total_seconds() if len(done) >= 2 else 0.0
    job_seconds = [(e - s).total_seconds() for s, e in zip(starts, ends, strict=True) if s and e]
    return {
        "jobs": len(ids), "succeeded": len(done), "failed": sum(r["status"] != "succeeded" for r in records.values()),
        "unfinished": len(pending), "span_seconds": round(span, 3),
        "jobs_per_minute": round(len(done) / span * 60.0, 1) if span > 0 else None,
        "job_seconds_median": round(float(np.median(job_seconds)), 3) if job_seconds else None,
    }


async def _warm_up(client: httpx.AsyncClient) -> None:
    """One job through the whole server and worker first: the first one pays for lazy loading (left out)."""
    response = await client.post("/v1/generations", json=JOB)
    if response.status_code != 202:
        raise DependencyError(f"the bench server refused a generation: HTTP {response.status_code} "
                              f"{response.text[:200]}")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        record = (await client.get(f"/v1/generations/{response.json()['id']}")).json()
        if record["status"] == "succeeded":
            return
        if record["status"] in ("failed", "cancelled"):
            raise DependencyError(f"the bench server's warm-up job {record['status']}: {record.get('error')}")
        await asyncio.sleep(0.2)
    raise DependencyError(f"the bench server's warm-up job did not finish in {START_TIMEOUT:g} s")


async def _warm_up_processes(connect: Callable[[], Connection], clients: int) -> None:
    """Every API process answers each timed kind of request a few times first (the kernel hands each new
    connection to one of them): the first ones in a process pay for lazy imports and SQL compilation. The
    jobs made here are cancelled (or deleted) at once, so they do not hold up the ones timed."""
    body = json_module.dumps(JOB).encode()
    made: list[dict] = []
    await _drive(clients, clients, connect, lambda c, i: c.request("POST", "/v1/generations", body), 202,
                 Phase(), made)
    await _drive(len(made), clients, connect, lambda c, i: c.request("GET", f"/v1/generations/{made[i]['id']}"),
                 200, Phase())
    await _drive(len(made), clients, connect,
                 lambda c, i: c.request("DELETE", f"/v1/generations/{made[i]['id']}"), (202, 204), Phase())


async def _bench(url: str, pid: int, secret: str, clients: int, requests: int, seconds: float) -> dict:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30.0) as client:
        await _warm_up(client)
        worker_pid = (await client.get("/v1/health")).json()["queue"].get("worker_process")
        pids = (_api_processes(pid, worker_pid), worker_pid)

        body = json_module.dumps(JOB).encode()

        def connect() -> Connection:
            return Connection(url, secret)

        await _warm_up_processes(connect, clients)

        def status_of(connection: Connection, i: int) -> Awaitable[tuple[int, bytes]]:
            return connection.request("GET", f"/v1/generations/{ids[i % len(ids)]}")

        submit, submitted = Phase(), []
        await _drive(requests, clients, connect, lambda c, i: c.request("POST", "/v1/generations", body), 202,
                     submit, submitted, pids)
        ids = [record["id"] for record in submitted]
        if not ids:
            raise DependencyError(f"the bench server accepted no generation: {submit.failures[:1]}")
        status = Phase()
        await _drive(requests, clients, connect, status_of, 200, status, pids=pids)
        end_to_end = await _drain(client, ids, seconds)
        idle = Phase()  # the same GETs again: without the worker competing for the CPU if the queue drained
        await _drive(requests, clients, connect, status_of, 200, idle, pids=pids)
    return {"submit": submit.summary(), "status": status.summary(), "status_after_wait": idle.summary(),
            "end_to_end": end_to_end, "api_processes": len(pids[0]) - 1}


def run(*, seconds: float = 60.0, json: bool = False, clients: int = 32, requests: int = 320, workers: int = 1,
        api_processes: int | None = None, worker_counts: str | None = None, jobs: int | None = None,
        **_: object) -> dict:
    """Bench a fresh local server; ``seconds`` bounds the wait for the queue to drain. Prints a table or JSON.

    With ``worker_counts`` ("1,2,4", the CLI's ``--workers``) it benches generation throughput against the
    number of worker processes instead (:mod:`tunesmith.bench.service_scaling`: ``jobs`` per count, each count
    waited for at most 10 minutes)."""
    if worker_counts is not None:
        from tunesmith.bench import service_scaling

        return service_scaling.run(counts=worker_counts, jobs=jobs or service_scaling.JOBS, json=json)
    if clients < 1:
        raise ParameterError(f"--clients must be at least 1, got {clients}", field="clients")
    if api_processes is not None and api_processes < 1:
        raise ParameterError(f"--api-processes must be at least 1, got {api_processes}", field="api_processes")
    if requests < 1:
        raise ParameterError(f"--requests must be at least 1, got {requests}", field="requests")
    if not seconds > 0:
        raise ParameterError(f"--seconds must be more than 0, got {seconds}", field="seconds")
    with tempfile.TemporaryDirectory(prefix="tunesmith-bench-") as tmp:
        data_dir = Path(tmp)
        secret = _create_key(data_dir)
        with _server(data_dir, workers, api_processes) as (url, pid):
            figures = asyncio.run(_bench(url, pid, secret, clients, requests, seconds))
    figures |= {"model": MODEL, "bars": 1, "clients": clients, "requests": requests, "workers": workers,
                "database": "sqlite", "cpus": os.cpu_count(),
                "goal_submit_p99_ms": GOAL_SUBMIT_P99_MS, "goal_status_rps": GOAL_STATUS_RPS}
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        _print_table(figures)
    return figures


def _print_table(figures: dict) -> None:
    def ms(value: float | None) -> str:
        return f"{value:8.1f}" if value is not None else "       -"

    print(f"tunesmith service on 127.0.0.1 (SQLite, {figures['api_processes']} API processes, {figures['workers']} "
          f"worker, {figures['model']} 1 bar), "
          f"{figures['clients']} clients, {figures['requests']} requests per phase:")
    print(f"  {'':26s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s} {'failed':>7s} {'CPU ms/req: API':>16s} "
          f"{'client':>7s} {'worker CPU s':>13s}")
    for name, label in (("submit", "POST /v1/generations"), ("status", "GET /v1/generations/{id}"),
                        ("status_after_wait", "  the same, after the wait")):
        phase = figures[name]
        rate = phase["requests_per_second"]
        print(f"  {label:26s} {ms(phase['p50_ms'])} {ms(phase['p99_ms'])} "
              f"{(f'{rate:8.0f}' if rate is not None else '       -')} {phase['failed']:7d} "
              f"{ms(phase['server_cpu_ms_per_request']):>16s} {ms(phase['client_cpu_ms_per_request']):>7s} "
              f"{ms(phase['worker_cpu_seconds']):>13s}")
        if phase["first_failure"]:
            print(f"    first failure: {phase['first_failure']}")
    e2e = figures["end_to_end"]
    per_minute = f"{e2e['jobs_per_minute']:.1f}" if e2e["jobs_per_minute"] is not None else "-"
    print(f"  end to end: {e2e['succeeded']}/{e2e['jobs']} jobs done in {e2e['span_seconds']:.1f} s -> "
          f"{per_minute} jobs/min (median job {e2e['job_seconds_median']} s; {e2e['unfinished']} unfinished)")
    submit_ok = figures["submit"]["p99_ms"] is not None and figures["submit"]["p99_ms"] <= GOAL_SUBMIT_P99_MS
    status_ok = (figures["status"]["requests_per_second"] or 0) >= GOAL_STATUS_RPS
    print(f"  goals: submit p99 <= {GOAL_SUBMIT_P99_MS:g} ms: {'met' if submit_ok else 'NOT met'}; "
          f"status >= {GOAL_STATUS_RPS:g} req/s: {'met' if status_ok else 'NOT met'}")
