"""`tunesmith serve`: several API processes on one port, one queue worker, and start-up done once.

One Python process answers HTTP on one core; a second process on the same port doubles what the API can take
(`tunesmith bench service`). So `serve` is a small supervisor:

    tunesmith serve                  migrations and start-up recovery (once), WAL checkpoints, restarts
    ├── API process x N              uvicorn on the same host:port with SO_REUSEPORT (the kernel spreads
    │                                connections), no recovery, no consumer (``tunesmith serve --api-child``)
    └── worker process (nice 10)     `tunesmith worker` (:mod:`tunesmith.service.worker_process`)

What the API processes share lives in ``<data dir>/run`` (:class:`ServeRun`): the rate-limit table
(:class:`~tunesmith.service.limits.SharedWindowLimiter`), prometheus_client's multiprocess directory, the
worker's report and the connection counts that keep them evenly loaded (:mod:`tunesmith.service.balance`).
Every child dies with the supervisor (PDEATHSIG and a watchdog), so a `serve` killed with SIGKILL leaves
nothing running; SIGINT or SIGTERM stops the API processes first (they finish their requests),
then lets the worker finish its running jobs. An API process that dies is started again (more than
CRASHES_PER_MINUTE times in a minute stop the server); one that cannot start at all (a bad setting, a broken
install) stops the server with its reason, as a taken port or a data directory another `serve` uses do at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tunesmith.config import Settings
from tunesmith.errors import ParameterError
from tunesmith.service.balance import ConnectionBalance
from tunesmith.service.wal import WalCheckpointer
from tunesmith.service.worker_process import WorkerProcess, die_with_parent, exit_when_orphaned

log = logging.getLogger("tunesmith.service")
STOP_SECONDS = 30.0  # an API process gets this long to finish its requests
CRASHES_PER_MINUTE = 5  # more restarts than this in a minute stop the server (something is wrong for good)
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ServeRun:
    """The files the processes of one `tunesmith serve` share, in ``directory``."""

    directory: Path

    @property
    def rate_limit(self) -> Path:
        return self.directory / "rate-limit"

    @property
    def worker(self) -> Path:
        return self.directory / "worker.json"

    @property
    def metrics(self) -> Path:
        return self.directory / "metrics"

    @property
    def connections(self) -> Path:
        return self.directory / "connections"

    @property
    def writer_lock(self) -> Path:
        return self.directory / "submit.lock"

    def ready(self, index: int) -> Path:
        """Made by API process ``index`` once it answers (an exit before that means it cannot start)."""
        return self.directory / f"ready-{index}"


def sqlite_files(settings: Settings) -> list[Path]:
    """The SQLite files of the records and the queue (the ones on other servers are not ours to checkpoint)."""
    from tunesmith.service.db import sqlite_file
    from tunesmith.service.queue import sqlite_queue_file

    files = (sqlite_file(settings.database_url or ""), sqlite_queue_file(settings.queue_url or ""))
    return [path for path in files if path is not None]


def check_port(host: str, port: int) -> None:
    """ParameterError if ``host:port`` is taken (by anything, including another `serve`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:  # no SO_REUSEPORT: a sharing server counts as taken
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ... but the last run's closed connections not
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ParameterError(f"cannot listen on {host}:{port}: {exc.strerror}", field="port") from None


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket on ``host:port`` that other processes of this server may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


class ApiProcess:
    """One API process: `tunesmith serve --api-child`, dying with this one."""

    def __init__(self, index: int, env: dict[str, str], ready: Path) -> None:
        self.index = index
        self.env = env
        self.ready = ready
        ready.unlink(missing_ok=True)
        self.started = time.monotonic()
        self.interrupted = False
        self.process = subprocess.Popen([sys.executable, "-m", "tunesmith", "serve", "--api-child",
                                         f"{os.getpid()}:{index}"], env=env,
                                        preexec_fn=lambda: die_with_parent(0))

    def interrupt(self) -> None:
        """Ask for a graceful stop (SIGINT, once)."""
        if self.process.poll() is None and not self.interrupted:
            self.process.send_signal(signal.SIGINT)
            self.interrupted = True

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop gracefully; kill after ``timeout`` seconds."""
        self.interrupt()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("API process %d did not stop in %.0f s; killing it", self.process.pid, timeout)
            self.process.kill()
            self.process.wait(timeout=10)


def serve(settings: Settings) -> int:
    """Run the server until SIGINT or SIGTERM; returns the exit code. One `serve` per data directory."""
    check_port(settings.host, settings.port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    owner = os.open(settings.data_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)  # held while this runs
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(owner)
        raise ParameterError(f"another `tunesmith serve` is running on {settings.data_dir}", field="data_dir") from None
    try:
        return _serve(settings)
    finally:
        os.close(owner)


def _serve(settings: Settings) -> int:
    from tunesmith.service.state import start_services

    run = ServeRun(settings.data_dir / "run")
    shutil.rmtree(run.directory, ignore_errors=True)  # what a killed server left: stale counters and reports
    run.metrics.mkdir(parents=True)
    # migrations and start-up recovery, once; with a worker process of its own this server owns the queue
    services = start_services(settings, recover="server", owns_queue=settings.workers > 0)
    services.close()
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, _frame: stopping.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = WorkerProcess(settings, report=run.worker) if settings.workers > 0 else None
    checkpointer = WalCheckpointer(sqlite_files(settings))
    checkpointer.start()
    env = {**os.environ, "TUNESMITH_HOST": settings.host, "TUNESMITH_PORT": str(settings.port),
           "TUNESMITH_DATA_DIR": str(settings.data_dir), "TUNESMITH_WORKERS": str(settings.workers),
           "TUNESMITH_API_PROCESSES": str(settings.serving_processes),
           "PROMETHEUS_MULTIPROC_DIR": str(run.metrics)}
    apis = [ApiProcess(index, env, run.ready(index)) for index in range(settings.serving_processes)]
    crashes: list[float] = []
    code = 0
    try:
        while not stopping:
            time.sleep(POLL_SECONDS)
            for i, api in enumerate(apis):
                if api.process.poll() is None or stopping:
                    continue
                now = time.monotonic()
                crashes = [t for t in crashes if now - t < 60.0] + [now]
                if not api.ready.exists() or len(crashes) > CRASHES_PER_MINUTE:
                    why = "could not start" if not api.ready.exists() else f"ended {len(crashes)} times in a minute"
                    log.error("API process %d %s (exit code %d); stopping the server", api.index, why,
                              api.process.returncode)
                    stopping.append(0)
                    code = 1
                    break
                log.warning("API process %d ended (exit code %d); starting it again", api.index,
                            api.process.returncode)
                apis[i] = ApiProcess(api.index, env, run.ready(api.index))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for api in apis:
            api.interrupt()
        for api in apis:
            api.stop()
        if worker is not None:
            worker.stop()
        checkpointer.stop()
    return code


def _server_class() -> type:
    import uvicorn

    class ApiServer(uvicorn.Server):
        """uvicorn's server, stopping gracefully on SIGINT or SIGTERM and then returning (uvicorn raises the
        signal again once it has stopped, which would end the process with a KeyboardInterrupt)."""

        ready: Path | None = None  # made once the server answers

        def handle_exit(self, sig: int, frame: object) -> None:
            if self.should_exit:  # Ctrl-C reaches the whole process group, then `serve` passes it on: one stop,
                return  # not uvicorn's forced one (`serve` kills a process that does not stop in time)
            super().handle_exit(sig, frame)  # type: ignore[arg-type]
            self._captured_signals.clear()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and self.ready is not None:
                self.ready.touch()

    return ApiServer


def run_api_child(parent_pid: int, index: int) -> int:
    """An API process of `serve` (``--api-child``): the app on its own SO_REUSEPORT socket, until SIGINT."""
    import uvicorn

    from tunesmith.config import load_settings
    from tunesmith.service import create_app

    exit_when_orphaned(parent_pid)
    settings = load_settings()
    run = ServeRun(settings.data_dir / "run")
    sock = listening_socket(settings.host, settings.port)
    balance = ConnectionBalance(run.connections, index, settings.serving_processes)
    config = uvicorn.Config(create_app(settings, serve_run=run, balance=balance), log_level="info")
    server = _server_class()(config)
    server.ready = run.ready(index)
    balance.count = lambda: len(server.server_state.connections)
    server.run(sockets=[sock])
    if not server.started:
        return 3  # its start-up failed (uvicorn logged why)
    log.info("API process %d stopped", index)
    return 0
