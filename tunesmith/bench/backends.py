"""Throwaway PostgreSQL and Redis servers for a bench: on 127.0.0.1, a free port, a fresh temporary directory.

The same way the service tests start theirs (tests/service_fixtures.py): PostgreSQL's Debian binaries
(``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/N/bin``, run as the ``postgres`` user through ``runuser``
when this is root, since initdb refuses root), fsync off; ``redis-server`` with nothing persisted.
:func:`start_backends` gives both, or None with the reason when either cannot run here (the bench then uses
SQLite and the SQLite queue, and says so).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Backends:
    """A running PostgreSQL cluster and Redis server; :meth:`fresh` gives one bench run empty ones."""

    root: Path
    postgres_port: int
    redis_port: int
    stop_steps: list[list[str]] = field(default_factory=list)
    redis: subprocess.Popen | None = None
    user: str = "tunesmith"

    def fresh(self) -> tuple[str, str]:
        """(database URL of a new empty database, URL of the emptied Redis)."""
        import psycopg
        import redis

        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.postgres_port} user={self.user} dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        queue_url = f"redis://127.0.0.1:{self.redis_port}/0"
        client = redis.Redis.from_url(queue_url)
        try:
            client.flushall()
        finally:
            client.close()
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.postgres_port}/{name}", queue_url

    def stop(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.redis.kill()
        for step in self.stop_steps:
            subprocess.run(step, capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen | None) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def _postgres_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def start_backends() -> tuple[Backends | None, str]:
    """PostgreSQL and Redis started, with "" ; or (None, why not)."""
    bindir = _postgres_bindir()
    redis_server = shutil.which("redis-server")
    if bindir is None or redis_server is None:
        return None, "PostgreSQL or redis-server is not installed (Debian packages postgresql, redis-server)"
    try:
        import psycopg  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        return None, f"a driver is missing: {exc.name}"
    root = Path(tempfile.mkdtemp(prefix="tunesmith-bench-backends-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if owner is None or runuser is None:
            shutil.rmtree(root, ignore_errors=True)
            return None, "running as root without a 'postgres' user or runuser (initdb refuses root)"
        os.chown(root, owner.pw_uid, owner.pw_gid)
        run_as = [runuser, "-u", "postgres", "--"]
    backends = Backends(root=root, postgres_port=free_port(), redis_port=free_port())
    data = root / "pg"
    for step in (
        [str(bindir / "initdb"), "-D", str(data), "-U", backends.user, "--auth=trust", "-E", "UTF8", "--no-sync",
         "--locale=C"],
        [str(bindir / "pg_ctl"), "start", "-D", str(data), "-l", str(root / "pg.log"), "-w", "-s", "-o",
         f"-p {backends.postgres_port} -h 127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off "
         "-c full_page_writes=off"],
    ):
        done = subprocess.run([*run_as, *step], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            backends.stop()
            return None, f"{Path(step[0]).name} failed: {(done.stderr or done.stdout).strip()[:300]}"
        if step[1] == "start":
            backends.stop_steps.append([*run_as, str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-s"])
    backends.redis = subprocess.Popen(
        [redis_server, "--port", str(backends.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root), "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not _wait_for_port(backends.redis_port, backends.redis):
        backends.stop()
        return None, "redis-server did not start"
    return backends, ""
