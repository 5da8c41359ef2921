"""`tunesmith bench load`: mixed traffic from many clients against a real server on 127.0.0.1 (loopback only).

Starts `tunesmith serve` like `tunesmith bench service` (SQLite in a temporary data directory, its API processes
and worker process, the ``folk`` model; a key whose rate limit and quota the bench cannot reach), makes a few
finished works first (for downloads and event streams), then sends ``requests`` requests from ``clients``
concurrent keep-alive connections on one event loop, each drawn (fixed ``seed``) from this mix:

=========  ======  ==================================================================
route      share   request
=========  ======  ==================================================================
submit     15 %    POST /v1/generations (folk, 1 bar): 202
status     35 %    GET /v1/generations/{id} of a submitted job: 200
list       15 %    GET /v1/generations?limit=20&offset=...: 200
audio      20 %    GET /v1/generations/{id}/audio with a Range of a finished work: 206
events     10 %    GET /v1/generations/{id}/events of a finished work (the whole stream): 200
midi        5 %    GET /v1/generations/{id}/midi of a finished work: 200
=========  ======  ==================================================================

It reports, per route, the count, p50/p99/max latency and every answer that is neither the expected status nor a
declared 429 (with Retry-After): the errors, 0 expected. Every phase is bounded in time.
"""

from __future__ import annotations

import asyncio
import json as json_module
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np

from tunesmith.bench.service import JOB, Connection, _create_key, _server
from tunesmith.errors import DependencyError, ParameterError

MIX = (("submit", 15), ("status", 35), ("list", 15), ("audio", 20), ("events", 10), ("midi", 5))
EXPECTED = {"submit": 202, "status": 200, "list": 200, "audio": 206, "events": 200, "midi": 200}
FINISHED_WORKS = 4  # made before the timed phase: what downloads and event streams read
PREPARE_TIMEOUT = 240.0
RUN_TIMEOUT = 900.0
REQUEST_TIMEOUT = 60.0


class StreamingConnection(Connection):
    """The bench's minimal keep-alive connection, which also reads chunked answers (an event stream) and sends
    extra headers (Range)."""

    async def fetch(self, method: str, path: str, body: bytes = b"", headers: str = "") -> tuple[int, dict, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}{headers}\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        if fields.get("transfer-encoding") == "chunked":
            data = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
            content = bytes(data)
        elif "content-length" in fields:
            content = await self.reader.readexactly(int(fields["content-length"]))
        elif status in (204, 304):
            content = b""
        else:
            raise ConnectionError(f"answer without a length: {lines[0]}")
        if fields.get("connection") == "close":
            self.close()
        return status, fields, content


@dataclass
class Route:
    """The latencies (seconds) of one route's expected answers, its declared 429s and its errors."""

    latencies: list[float] = field(default_factory=list)
    limited: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        ms = np.asarray(self.latencies) * 1000.0
        ok = len(self.latencies)
        return {"requests": ok + self.limited + len(self.errors), "ok": ok, "rate_limited_429": self.limited,
                "errors": len(self.errors), "first_error": self.errors[0] if self.errors else None,
                "p50_ms": round(float(np.percentile(ms, 50)), 1) if ok else None,
                "p99_ms": round(float(np.percentile(ms, 99)), 1) if ok else None,
                "max_ms": round(float(ms.max()), 1) if ok else None}


def plan(requests: int, seed: int) -> list[str]:
    """The routes of the mix in a fixed random order."""
    rng = random.Random(seed)
    names = [name for name, _ in MIX]
    return rng.choices(names, weights=[share for _, share in MIX], k=requests)


async def _prepare(url: str, secret: str) -> list[str]:
    """Finished works to download and follow (the worker makes them; bounded)."""
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as client:
        ids = []
        for seed in range(FINISHED_WORKS):
            response = await client.post("/v1/generations", json={**JOB, "seed": seed})
            if response.status_code != 202:
                raise DependencyError(f"the bench server refused a generation: {response.status_code} {response.text}")
            ids.append(response.json()["id"])
        deadline = time.monotonic() + PREPARE_TIMEOUT
        while time.monotonic() < deadline:
            records = [(await client.get(f"/v1/generations/{i}")).json() for i in ids]
            if all(r["status"] == "succeeded" for r in records):
                return ids
            failed = [r for r in records if r["status"] in ("failed", "cancelled")]
            if failed:
                raise DependencyError(f"a bench work {failed[0]['status']}: {failed[0].get('error')}")
            await asyncio.sleep(0.3)
    raise DependencyError(f"the bench's first works did not finish in {PREPARE_TIMEOUT:g} s")


async def _drive(url: str, secret: str, routes: list[str], clients: int, finished: list[str],
                 seed: int) -> tuple[dict[str, Route], float]:
    rng = random.Random(seed + 1)
    submitted: list[str] = list(finished)
    stats = {name: Route() for name, _ in MIX}
    queue: Iterator[tuple[int, str]] = iter(enumerate(routes))
    deadline = time.monotonic() + RUN_TIMEOUT
    body = json_module.dumps(JOB).encode()

    async def one(connection: StreamingConnection, name: str) -> tuple[int, dict, bytes]:
        if name == "submit":
            return await connection.fetch("POST", "/v1/generations", body)
        if name == "status":
            return await connection.fetch("GET", f"/v1/generations/{rng.choice(submitted)}")
        if name == "list":
            return await connection.fetch("GET", f"/v1/generations?limit=20&offset={rng.randrange(0, 200)}")
        work = rng.choice(finished)
        if name == "audio":
            start = rng.randrange(0, 20_000)
            return await connection.fetch("GET", f"/v1/generations/{work}/audio",
                                          headers=f"Range: bytes={start}-{start + rng.randrange(1, 65_536)}\r\n")
        if name == "events":
            return await connection.fetch("GET", f"/v1/generations/{work}/events")
        return await connection.fetch("GET", f"/v1/generations/{work}/midi")

    async def client() -> None:
        connection = StreamingConnection(url, secret)
        try:
            for _, name in queue:
                route = stats[name]
                if time.monotonic() > deadline:
                    route.errors.append("the run's time limit was reached")
                    continue
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        status, fields, content = await one(connection, name)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, ConnectionError) as exc:
                    route.errors.append(f"{type(exc).__name__}: {exc}")
                    connection.close()
                    continue
                elapsed = time.perf_counter() - started
                if status == 429 and "retry-after" in fields:
                    route.limited += 1
                elif status != EXPECTED[name] or (name == "events" and b"event: done" not in content):
                    route.errors.append(f"HTTP {status}: {content[:200].decode(errors='replace')}")
                else:
                    route.latencies.append(elapsed)
                    if name == "submit":
                        submitted.append(json_module.loads(content)["id"])
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return stats, time.perf_counter() - started


def run(*, requests: int = 10_000, clients: int = 64, seed: int = 1, json: bool = False,
        api_processes: int | None = None, **_: object) -> dict:
    """Mixed load on a fresh local server; prints a table (or JSON) and returns the figures."""
    if requests < 1:
        raise ParameterError(f"--requests must be at least 1, got {requests}", field="requests")
    if clients < 1:
        raise ParameterError(f"--clients must be at least 1, got {clients}", field="clients")
    routes = plan(requests, seed)
    with tempfile.TemporaryDirectory(prefix="tunesmith-load-") as tmp:
        data_dir = Path(tmp)
        secret = _create_key(data_dir)
        with _server(data_dir, 1, api_processes) as (url, _pid):
            finished = asyncio.run(_prepare(url, secret))
            stats, seconds = asyncio.run(_drive(url, secret, routes, clients, finished, seed))
            processes = httpx.get(f"{url}/v1/health", timeout=30).json()
    by_route = {name: route.summary() for name, route in stats.items()}
    figures = {
        "requests": requests, "clients": clients, "seed": seed, "seconds": round(seconds, 2),
        "requests_per_second": round(requests / seconds, 1) if seconds > 0 else None,
        "errors": sum(r["errors"] for r in by_route.values()),
        "rate_limited_429": sum(r["rate_limited_429"] for r in by_route.values()),
        "routes": by_route, "worker_alive": processes["queue"].get("worker_alive"),
    }
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        _print(figures)
    return figures


def _print(figures: dict) -> None:
    print(f"tunesmith load: {figures['requests']} mixed requests from {figures['clients']} clients in "
          f"{figures['seconds']:.1f} s ({figures['requests_per_second']} req/s); errors: {figures['errors']}, "
          f"declared 429s: {figures['rate_limited_429']}")
    print(f"  {'route':8s} {'requests':>9s} {'ok':>7s} {'429':>5s} {'errors':>7s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'max ms':>8s}")
    for name, route in figures["routes"].items():
        def ms(value: float | None) -> str:
            return f"{value:8.1f}" if value is not None else "       -"
        print(f"  {name:8s} {route['requests']:9d} {route['ok']:7d} {route['rate_limited_429']:5d} "
              f"{route['errors']:7d} {ms(route['p50_ms'])} {ms(route['p99_ms'])} {ms(route['max_ms'])}")
        if route["first_error"]:
            print(f"    first error: {route['first_error']}")
