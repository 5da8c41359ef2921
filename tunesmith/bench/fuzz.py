"""`tunesmith bench fuzz`: hostile files through the upload, analysis and verification routes of a real server.

Starts `tunesmith serve` on 127.0.0.1 (SQLite in a temporary data directory, its API processes and worker
process, the shipped weights or ``$TUNESMITH_WEIGHTS``), makes a key the rate limit cannot stop, then sends
``files`` specimens of :mod:`tunesmith.bench.hostile` (hypothesis, fixed ``seed``) from ``clients`` concurrent
connections: each to ``POST /v1/uploads``, ``/v1/analyses`` or ``/v1/verifications``. It counts the answers by
status (per route and per attack), and checks each one:

- no 5xx, no connection dropped, no answer later than ``REQUEST_TIMEOUT``;
- every 4xx is the API's error body with a code and a message, and names its field (``file`` ...);
- the server's processes stay the same (no API process or worker died and was restarted) and the worker is alive;
- memory: the peak resident set of each of the server's processes (sampled, and the kernel's high-water mark).

Long analyses queued by a lying header run in the worker meanwhile; the run waits (bounded) for them at the end.
"""

from __future__ import annotations

import collections
import contextlib
import json as json_module
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tunesmith.bench.hostile import Specimen, specimens
from tunesmith.bench.service import UNLIMITED, _create_key, _server
from tunesmith.errors import ParameterError

REQUEST_TIMEOUT = 120.0
SAMPLE_SECONDS = 0.2


@dataclass
class Tally:
    """What the server answered: counts by status, route and attack, the problems, the slowest answers."""

    statuses: collections.Counter = field(default_factory=collections.Counter)
    by_route: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(
        collections.Counter))
    by_attack: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(
        collections.Counter))
    problems: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)  # 4xx without a field
    slowest: list[tuple[float, str]] = field(default_factory=list)
    reasons: collections.Counter = field(default_factory=collections.Counter)  # error codes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, specimen: Specimen, status: int | str, seconds: float, body: bytes) -> None:
        label = f"{specimen.attack} {specimen.kind} {specimen.filename!r} ({len(specimen.data)} B) -> {specimen.path}"
        with self.lock:
            self.statuses[status] += 1
            self.by_route[specimen.path][status] += 1
            self.by_attack[specimen.attack][status] += 1
            self.slowest = sorted([*self.slowest, (seconds, label)], reverse=True)[:5]
            if not isinstance(status, int) or status >= 500:
                self.problems.append(f"{status}: {label}: {body[:300].decode(errors='replace')}")
                return
            if status >= 400:
                error = _error_of(body)
                if error is None or not error.get("code") or not error.get("message"):
                    self.problems.append(f"{status} without the error body: {label}: {body[:200]!r}")
                    return
                self.reasons[f"{status} {error['code']}"] += 1
                if not error.get("field"):
                    self.unnamed.append(f"{status} {error['code']}: {error['message'][:120]} ({label})")


def _error_of(body: bytes) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError, AttributeError):
        error = json_module.loads(body).get("error")
        return error if isinstance(error, dict) else None
    return None


class MemoryWatch:
    """Samples the memory of a server's process tree (Linux /proc) until stopped: each process's peak resident
    set by role (the serve supervisor, API processes, the worker, the file readers and their fork servers) and
    the peak of the whole tree's proportional set size (shared pages counted once)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak: dict[int, int] = {}  # pid -> largest resident set seen, bytes
        self.roles: dict[int, str] = {}
        self.commands: dict[str, str] = {}  # role -> a command line of that role (to tell what "other" is)
        self.total_peak = 0  # bytes: the largest sum of the tree's proportional set sizes at one moment
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def sample(self) -> None:
        total = 0
        for pid in tree(self.root):
            if pid not in self.roles and not _command(pid):  # gone (or going) before it could be told apart
                continue
            status = _memory(pid)
            if status is None:
                continue
            self.peak[pid] = max(self.peak.get(pid, 0), status.get("VmRSS", 0), status.get("VmHWM", 0))
            total += status.get("Pss", status.get("VmRSS", 0))
            if pid not in self.roles:
                self.roles[pid] = _role(pid, self.root)
                self.commands.setdefault(self.roles[pid], _command(pid)[:160])
        self.total_peak = max(self.total_peak, total)

    def by_role(self) -> dict[str, dict[str, float]]:
        """role -> {processes, peak_rss_mb (the largest of them)}."""
        out: dict[str, dict[str, float]] = {}
        for pid, rss in self.peak.items():
            entry = out.setdefault(self.roles.get(pid, "other"), {"processes": 0, "peak_rss_mb": 0.0})
            entry["processes"] += 1
            entry["peak_rss_mb"] = max(entry["peak_rss_mb"], round(rss / 2**20, 1))
        return out


def tree(root: int) -> list[int]:
    """``root`` and its descendants (Linux /proc)."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                queue += [int(child) for child in (task / "children").read_text().split()]
    return found


def _memory(pid: int) -> dict[str, int] | None:
    """VmRSS, VmHWM and Pss of a process, in bytes (None when it is gone)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    values["Pss"] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return values


def _role(pid: int, root: int) -> str:
    """serve, api, worker, reader fork server (an API process's), reader (a file read in a child) or other."""
    if pid == root:
        return "serve"
    command = _command(pid)
    if "--api-child" in command:
        return "api"
    if "forkserver" in command:  # the fork server and the readers it forks share its command line
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return "reader"
        return "reader" if "forkserver" in _command(parent) else "reader fork server"
    if " worker" in command:
        return "worker"
    if "resource_tracker" in command:
        return "resource tracker"
    return "other"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _send(client: httpx.Client, specimen: Specimen, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        response = client.post(specimen.path, files={"file": (specimen.filename, specimen.data)})
        status: int | str = response.status_code
        body = response.content
    except httpx.HTTPError as exc:
        status, body = f"no answer ({type(exc).__name__})", str(exc).encode()
    tally.record(specimen, status, time.perf_counter() - started, body)


def drive(url: str, secret: str, files: int, seed: int, clients: int, attacks: tuple[str, ...] | None = None,
          progress: Any = None) -> Tally:
    """Send ``files`` specimens to the server at ``url`` from ``clients`` connections; the tally."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    tally = Tally()
    slots = threading.BoundedSemaphore(clients)
    headers = {"Authorization": f"Bearer {secret}"}
    # a new connection for each file: a kept-alive one that the server closes when idle (uvicorn's keep-alive
    # timeout) while the client sends on it is reset, which would count as the server's failure
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT, limits=fresh) as client, \
            ThreadPoolExecutor(max_workers=clients, thread_name_prefix="fuzz") as pool:

        def send(specimen: Specimen) -> None:
            try:
                _send(client, specimen, tally)
            finally:
                slots.release()
                if progress is not None:
                    progress()

        @fixed_seed(seed)
        @settings(max_examples=files, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(specimens(attacks))
        def one(specimen: Specimen) -> None:
            slots.acquire()
            pool.submit(send, specimen)

        one()
    return tally


def _warm_up(url: str, secret: str) -> None:
    """A valid file of each kind through each route that takes it, a few times (every API process imports its
    readers and loads the analyzer on its first such request): the memory after this is the baseline."""
    from tunesmith.bench.hostile import TAKES, seed_file

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=REQUEST_TIMEOUT) as client:
        for _ in range(3):
            for kind, routes in TAKES.items():
                for route in routes:
                    specimen = Specimen("warm-up", kind, f"warm-up.{kind}", seed_file(kind), route)
                    client.post(specimen.path, files={"file": (specimen.filename, specimen.data)})


def _wait_for_jobs(url: str, secret: str, seconds: float) -> int:
    """Wait (at most ``seconds``) for the queue to drain; the jobs still queued or running."""
    deadline = time.monotonic() + seconds
    depth = -1
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            depth = httpx.get(f"{url}/v1/health", timeout=10).json()["queue"]["depth"]
            if depth == 0:
                return 0
        time.sleep(0.5)
    return depth


def run(*, files: int = 10_000, seed: int = 1, clients: int = 4, json: bool = False,
        attacks: tuple[str, ...] | None = None, api_processes: int | None = None,
        env: dict[str, str] | None = None, **_: object) -> dict:
    """Fuzz a fresh local server with ``files`` hostile files; prints a table (or JSON) and returns the figures."""
    if files < 1:
        raise ParameterError(f"--files must be at least 1, got {files}", field="files")
    if clients < 1:
        raise ParameterError(f"--clients must be at least 1, got {clients}", field="clients")
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="tunesmith-fuzz-") as tmp:
        data_dir = Path(tmp)
        secret = _create_key(data_dir)
        with _server(data_dir, 1, api_processes, env) as (url, pid):
            health = httpx.get(f"{url}/v1/health", timeout=30).json()
            _warm_up(url, secret)
            baseline = MemoryWatch(pid)
            baseline.sample()
            before = set(tree(pid))
            started = time.perf_counter()
            bar = tqdm(total=files, desc="fuzz", unit="file", disable=not sys.stderr.isatty(), leave=False)
            with MemoryWatch(pid) as memory, bar:
                tally = drive(url, secret, files, seed, clients, attacks, progress=lambda: bar.update(1))
                left = _wait_for_jobs(url, secret, 120.0)
            seconds = time.perf_counter() - started
            after = httpx.get(f"{url}/v1/health", timeout=30).json()
            now = set(tree(pid))
    roles = memory.by_role()
    figures = {
        "files": sum(tally.statuses.values()), "seed": seed, "clients": clients, "seconds": round(seconds, 1),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items(), key=lambda kv: str(kv[0]))},
        "by_route": {route: {str(k): v for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))}
                     for route, c in sorted(tally.by_route.items())},
        "by_attack": {attack: {str(k): v for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))}
                      for attack, c in sorted(tally.by_attack.items())},
        "reasons": dict(tally.reasons.most_common()),
        "server_errors": sum(v for k, v in tally.statuses.items() if not isinstance(k, int) or k >= 500),
        "problems": tally.problems[:20], "unnamed_rejections": len(tally.unnamed), "unnamed": tally.unnamed[:10],
        "slowest": [{"seconds": round(s, 2), "file": label} for s, label in tally.slowest],
        "memory_by_role": roles,
        "memory_after_warm_up": baseline.by_role(),
        "commands_by_role": memory.commands,
        "peak_rss_mb": max((r["peak_rss_mb"] for r in roles.values()), default=None),
        "peak_total_pss_mb": round(memory.total_peak / 2**20, 1),
        "processes_replaced": sorted(before - now), "processes_new": sorted(now - before),
        "worker_alive": after["queue"].get("worker_alive"),
        "worker_replaced": health["queue"].get("worker_process") != after["queue"].get("worker_process"),
        "jobs_left": left,
    }
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        _print(figures)
    return figures


def _print(figures: dict) -> None:
    print(f"tunesmith fuzz: {figures['files']} hostile files (seed {figures['seed']}, {figures['clients']} clients) "
          f"in {figures['seconds']:.0f} s")
    print("  answers: " + ", ".join(f"{k}: {v}" for k, v in figures["statuses"].items()))
    for route, counts in figures["by_route"].items():
        print(f"    {route:20s} " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    print("  by attack:")
    for attack, counts in figures["by_attack"].items():
        print(f"    {attack:16s} " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    print("  reasons: " + ", ".join(f"{k} x{v}" for k, v in figures["reasons"].items()))
    print(f"  5xx or no answer: {figures['server_errors']}; 4xx without a field: {figures['unnamed_rejections']}; "
          f"processes replaced: {len(figures['processes_replaced'])}; worker alive: {figures['worker_alive']}")
    for problem in figures["problems"][:5]:
        print(f"    problem: {problem}")
    for line in figures["unnamed"][:3]:
        print(f"    unnamed: {line}")
    print("  memory after the warm-up: " + ", ".join(f"{role} {r['peak_rss_mb']} MB"
                                                   for role, r in figures["memory_after_warm_up"].items()))
    print(f"  peak memory: {figures['peak_total_pss_mb']} MB for the whole server at once (PSS); the largest "
          "process by role: " + ", ".join(f"{role} {r['peak_rss_mb']} MB (of {r['processes']:.0f})"
                                           for role, r in figures["memory_by_role"].items()))
    print("  slowest: " + "; ".join(f"{s['seconds']} s {s['file']}" for s in figures["slowest"][:3]))


__all__ = ["UNLIMITED", "run"]
