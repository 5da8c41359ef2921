"""The queue consumer of `tunesmith serve` as a child process, so that generation never starves the API.

The embedded consumer threads of :mod:`tunesmith.service.queue` share the API's interpreter lock: while a job
composes and renders, requests wait. `tunesmith serve` therefore starts `tunesmith worker` as a child process
(:class:`WorkerProcess`) at a lower CPU priority (``os.nice``), on the same records, queue and data directory:

- it is started after the API's start-up recovery, so it runs no recovery of its own (``--no-recover``);
- it reports the models it loaded on a pipe and serves its job metrics on a loopback port; `serve` writes
  both into a small JSON file that the API processes read (:class:`WorkerView`): ``GET /v1/health`` shows
  the models and ``GET /metrics`` merges the job metrics in;
- it dies with its parent: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux, and everywhere a watchdog thread
  that polls ``getppid()``; a `serve` killed with SIGKILL leaves no orphan running jobs, and the next start
  recovers them like those of embedded threads. A normal stop (Ctrl-C, SIGTERM to `serve`) asks the child to
  finish its running jobs first (SIGINT), then waits.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tunesmith.config import Settings

log = logging.getLogger("tunesmith.service")
WORKER_NICE = 10  # CPU priority below the API's (a weight of about a tenth of the API's under contention)
JOB_FAMILIES = ("tunesmith_job_duration_seconds", "tunesmith_audio_seconds_generated")
PR_SET_PDEATHSIG = 1
STOP_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def die_with_parent(nice: int) -> None:
    """In a child between fork and exec: lower its CPU priority by ``nice`` and have it killed when this
    thread of its parent ends."""
    os.nice(nice)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def exit_when_orphaned(parent_pid: int, every: float = 0.5) -> None:
    """In the child: end this process at once (as SIGKILL would) when ``parent_pid`` is no longer its parent."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every)
        log.error("the serve process %d is gone; this worker stops now", parent_pid)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def report_loaded(fd: int, loaded: list[str]) -> None:
    """In the child: tell the parent which models this worker has loaded (one JSON line on the pipe)."""
    with os.fdopen(fd, "w") as pipe:
        pipe.write(json.dumps({"loaded": loaded}) + "\n")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (not gone, not a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def job_metrics(port: int) -> bytes:
    """The job metrics (Prometheus text) a worker serves on loopback ``port``, or nothing if it does not answer
    within a second."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1.0) as answer:
            text = answer.read().decode("utf-8")
    except OSError:
        return b""
    keep = [line for line in text.splitlines() if any(
        line.startswith((family, f"# HELP {family}", f"# TYPE {family}")) for family in JOB_FAMILIES)]
    return ("\n".join(keep) + "\n").encode("utf-8") if keep else b""


class WorkerView:
    """What an API process of `serve` knows of the worker process its parent runs: read from the file that
    :class:`WorkerProcess` keeps up to date."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def pid(self) -> int | None:
        return self._read().get("pid")

    @property
    def loaded(self) -> list[str]:
        return list(self._read().get("loaded", []))

    @property
    def ready(self) -> bool:
        """Whether the worker has finished loading its models (it reported them)."""
        return bool(self._read().get("ready"))

    def alive(self) -> bool:
        pid = self.pid
        return pid is not None and process_alive(pid)

    def job_metrics(self) -> bytes:
        port = self._read().get("metrics_port")
        return job_metrics(port) if port else b""


class WorkerProcess:
    """`tunesmith worker` as a child of this process, with ``settings.workers`` threads and a lower priority;
    what the API processes need to know of it is kept in the file ``report`` (:class:`WorkerView`)."""

    def __init__(self, settings: Settings, report: Path, nice: int = WORKER_NICE) -> None:
        self.settings = settings
        self.metrics_port = _free_port()
        self.loaded: list[str] = []
        self.ready = False  # the worker has reported its models: loading is over
        self.report = report
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "TUNESMITH_DATABASE_URL": settings.database_url or "",
               "TUNESMITH_QUEUE_URL": settings.queue_url or "", "TUNESMITH_DATA_DIR": str(settings.data_dir)}
        command = [sys.executable, "-m", "tunesmith", "worker", "--workers", str(settings.workers),
                   "--data-dir", str(settings.data_dir), "--metrics-port", str(self.metrics_port),
                   "--serve-child", f"{os.getpid()}:{write_fd}"]
        try:
            # must be called on the thread that lives as long as the server: the death signal follows the thread
            self.process = subprocess.Popen(command, env=env, pass_fds=(write_fd,),
                                            preexec_fn=lambda: die_with_parent(nice))
        finally:
            os.close(write_fd)
        self._publish()
        threading.Thread(target=self._read_reports, args=(read_fd,), name="worker-reports", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_reports(self, fd: int) -> None:
        with os.fdopen(fd) as pipe:
            for line in pipe:
                with contextlib.suppress(ValueError):
                    self.loaded = list(json.loads(line).get("loaded", []))
                    self.ready = True
                    self._publish()

    def _publish(self) -> None:
        scratch = self.report.with_suffix(".tmp")
        scratch.write_text(json.dumps({"pid": self.pid, "metrics_port": self.metrics_port, "loaded": self.loaded,
                                      "ready": self.ready}))
        scratch.replace(self.report)  # readers see the old file or the new one, never half of one


    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Let the running jobs finish (SIGINT: Huey's graceful stop), then wait; kill after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("the worker process %d did not stop in %.0f s; killing it", self.pid, timeout)
            self.process.kill()
            self.process.wait(timeout=10)
