"""Throwaway PostgreSQL, Redis and S3 (s3rver) servers and a live Tunesmith server for the service tests (no tests
here).

Every server binds to 127.0.0.1 on a free port, keeps its files in a fresh temporary directory and is stopped
at the end of the test session (the multi-host test starts them on an address of its own network namespace).
PostgreSQL: the Debian binaries (``/usr/lib/postgresql/*/bin``) run a new cluster with ``initdb`` + ``pg_ctl``;
as root (initdb refuses root) both run as the ``postgres`` system user through ``runuser``, in a directory that
user owns. Redis: ``redis-server --save "" --appendonly no``. S3: s3rver (npm; `make test` installs it into
``.tools/``), a Node.js server speaking the S3 REST protocol over a folder, with one bucket made at start.

When a server cannot be started the tests that need it are skipped with the reason, unless the environment
variable ``TUNESMITH_TEST_REQUIRE`` names it (``make test`` sets ``postgresql,redis,s3,netns``): then they fail.
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
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_ENV = "TUNESMITH_TEST_REQUIRE"
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unavailable(name: str, reason: str) -> None:
    """Skip (or, when ``TUNESMITH_TEST_REQUIRE`` names ``name``, fail) because ``name`` cannot run here."""
    required = {part.strip() for part in os.environ.get(REQUIRE_ENV, "").split(",")}
    if name in required:
        pytest.fail(f"{name} is required ({REQUIRE_ENV}) but cannot be started: {reason}", pytrace=False)
    pytest.skip(f"{name} not available: {reason}")


def _wait_for_port(port: int, process: subprocess.Popen | None, timeout: float = START_TIMEOUT,
                   host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path | None:
    """The directory of initdb/pg_ctl: on PATH, else the newest Debian /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class PostgresCluster:
    """A running throwaway cluster; :meth:`new_database` gives each user of it a database of its own."""

    root: Path
    port: int
    bindir: Path
    run_as: list[str]
    user: str = "tunesmith"
    host: str = "127.0.0.1"
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host={self.host} port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "stop", "-D", str(self.root / "data"),
                        "-m", "immediate", "-s"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(host: str = "127.0.0.1") -> PostgresCluster:
    """initdb + pg_ctl start on ``host``:free port; RuntimeError with the reason when that is impossible."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("the psycopg driver is not installed (pip install 'psycopg[binary]')") from exc
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="tunesmith-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError("running as root and there is no 'postgres' user to run the server as") from None
        os.chown(root, owner.pw_uid, owner.pw_gid)
        runuser = shutil.which("runuser") or next((p for p in ("/usr/sbin/runuser", "/sbin/runuser")
                                                   if Path(p).is_file()), None)
        if runuser is None:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError("running as root and runuser (util-linux) is missing: initdb refuses root")
        run_as = [runuser, "-u", "postgres", "--"]
    port = free_port()
    cluster = PostgresCluster(root=root, port=port, bindir=bindir, run_as=run_as, host=host)
    steps = [
        [str(bindir / "initdb"), "-D", str(root / "data"), "-U", cluster.user, "--auth=trust", "-E", "UTF8",
         "--no-sync", "--locale=C"],
        [str(bindir / "pg_ctl"), "start", "-D", str(root / "data"), "-l", str(root / "server.log"), "-w",
         "-t", str(int(START_TIMEOUT)), "-s", "-o",
         f"-p {port} -h {host} -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"],
    ]
    for step in steps:
        if step[0].endswith("pg_ctl") and host != "127.0.0.1":  # initdb trusts loopback only: also the host's net
            with (root / "data" / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {host}/24 trust\n")
        done = subprocess.run([*run_as, *step], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").is_file() else ""
            cluster.stop()
            raise RuntimeError(f"{Path(step[0]).name} failed: {(done.stderr or done.stdout).strip()} {log[-500:]}")
    return cluster


# ------------------------------------------------------------------------------------------------ Redis


@dataclass
class RedisServer:
    root: Path
    port: int
    process: subprocess.Popen
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        stop_server(self.process, self.root)


def stop_server(process: subprocess.Popen, root: Path) -> None:
    """Terminate a fixture's server (killed if it lingers) and remove its folder."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)


def start_redis(host: str = "127.0.0.1") -> RedisServer:
    """redis-server on ``host``:free port, nothing persisted; RuntimeError with the reason when impossible."""
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file()
                                              else None)
    if binary is None:
        raise RuntimeError("redis-server not found (Debian package redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("the redis Python package is not installed") from exc
    root = Path(tempfile.mkdtemp(prefix="tunesmith-redis-"))
    port = free_port()
    beyond_loopback = ["--protected-mode", "no"] if host != "127.0.0.1" else []  # a private namespace
    process = subprocess.Popen([binary, "--port", str(port), "--bind", host, *beyond_loopback, "--save", "",
                                "--appendonly", "no", "--dir", str(root), "--daemonize", "no", "--logfile",
                                str(root / "redis.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    server = RedisServer(root=root, port=port, process=process, host=host)
    if not _wait_for_port(port, process, host=host):
        error = process.stderr.read() if process.poll() is not None and process.stderr else "no answer"
        log = (root / "redis.log").read_text() if (root / "redis.log").is_file() else ""
        server.stop()
        raise RuntimeError(f"redis-server did not start on port {port}: {error.strip()} {log[-300:]}")
    return server


# ------------------------------------------------------------------------------- an S3 server: s3rver

S3RVER = ROOT / ".tools" / "node_modules" / ".bin" / "s3rver"  # `make test` installs it (npm, a gitignored folder)
S3RVER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}  # s3rver's fixed pair


@dataclass
class S3Server:
    """A running s3rver (a Node.js S3 server keeping objects in a folder) with one bucket."""

    root: Path
    port: int
    process: subprocess.Popen
    bucket: str
    host: str = "127.0.0.1"
    buckets: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self, prefix: str) -> dict[str, str]:
        """The settings of a Tunesmith whose artifacts live under ``prefix`` in this server's bucket."""
        return {**S3RVER_CREDENTIALS, "TUNESMITH_ARTIFACTS_URL": f"s3://{self.bucket}/{prefix}",
                "TUNESMITH_S3_ENDPOINT": self.endpoint}

    def client(self):  # a boto3 client
        from tunesmith.service.object_store import s3_client

        with _environment(S3RVER_CREDENTIALS):
            return s3_client(self.endpoint)

    def stop(self) -> None:
        stop_server(self.process, self.root)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_s3rver(host: str = "127.0.0.1", bucket: str = "tunesmith") -> S3Server:
    """s3rver on ``host``:free port with ``bucket`` made at start; RuntimeError with the reason when impossible."""
    binary = Path(os.environ.get("TUNESMITH_S3RVER", S3RVER))
    if not binary.is_file():
        raise RuntimeError(f"s3rver not found at {binary} (make test installs it: npm install --prefix .tools s3rver)")
    if shutil.which("node") is None:
        raise RuntimeError("node (Node.js) not found; s3rver needs it (Debian package nodejs)")
    root = Path(tempfile.mkdtemp(prefix="tunesmith-s3-"))
    port = free_port()
    log = (root / "s3rver.log").open("w")
    process = subprocess.Popen([str(binary), "-d", str(root / "data"), "-a", host, "-p", str(port), "--silent",
                                "--configure-bucket", bucket], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = S3Server(root=root, port=port, process=process, bucket=bucket, host=host)
    if not _wait_for_port(port, process, host=host):
        output = (root / "s3rver.log").read_text(errors="replace")
        server.stop()
        raise RuntimeError(f"s3rver did not start on port {port}: {output[-500:]}")
    return server


# ------------------------------------------------------------------------------------ a live Tunesmith


class LiveServer:
    """A Tunesmith app served by uvicorn in a thread on 127.0.0.1 (what the SDK and remote CLI talk to)."""

    def __init__(self, app: object, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120  # the lifespan loads the models and the soundfont first
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


@contextlib.contextmanager
def live_server(settings: object) -> Iterator[LiveServer]:
    from tunesmith.service import create_app

    with LiveServer(create_app(settings)) as server:  # type: ignore[arg-type]
        yield server


# -------------------------------------------------------------- an in-process app and its keys (module scope)


def served(settings: object) -> Iterator[tuple[object, object]]:
    """For a module's ``server`` fixture: ``yield from served(settings)`` yields (TestClient, settings) of an app
    whose lifespan (records, models, embedded worker) runs for the module."""
    from fastapi.testclient import TestClient

    from tunesmith.service import create_app

    with TestClient(create_app(settings)) as client:  # type: ignore[arg-type]
        yield client, settings


def client_and_keys() -> tuple[object, object, object]:
    """The ``client``, ``alice`` and ``bob`` fixtures of a module that defines ``server`` (see :func:`served`):

        client_fixture, alice_fixture, bob_fixture = client_and_keys()
    """
    from tests.test_service_support import make_key

    @pytest.fixture(scope="module", name="client")
    def client_fixture(server):
        return server[0]

    @pytest.fixture(scope="module", name="alice")
    def alice_fixture(server):
        return make_key(server[1], "alice")

    @pytest.fixture(scope="module", name="bob")
    def bob_fixture(server):
        return make_key(server[1], "bob")

    return client_fixture, alice_fixture, bob_fixture


def error_of(response) -> dict:
    """The API's error body of ``response`` (checked to have code, message and field)."""
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "field"} <= set(body["error"]), body
    return body["error"]
