"""`tunesmith serve` with two API processes on one port, real processes: both answer, and what must be counted
together is (the rate limit, the metrics); a port already taken is a one-line error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tunesmith.service import crud
from tunesmith.service.db import Database

CLI = Path(sys.executable).with_name("tunesmith")
LIMIT = 6  # requests per minute per key
pytestmark = pytest.mark.skipif(not CLI.is_file(), reason="needs the tunesmith command")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`serve --api-processes 2 --workers 0` on a fresh data directory; yields (base URL, key, process)."""
    data_dir = tmp_path_factory.mktemp("supervised")
    db = Database(f"sqlite:///{data_dir / 'tunesmith.db'}")
    db.migrate()
    with db.session() as session:
        _, secret = crud.create_api_key(session, name="k")
    db.close()
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TUNESMITH_")}
    env.update(TUNESMITH_REQUESTS_PER_MINUTE=str(LIMIT), TUNESMITH_PRELOAD="[]")
    log = (data_dir / "serve.log").open("w")
    process = subprocess.Popen([str(CLI), "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers",
                                "0", "--api-processes", "2"], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen) < 2 and process.poll() is None:
        try:  # a new connection each time: the kernel hands it to one of the two processes
            seen.add(httpx2.get(f"{base}/v1/health", timeout=2).json()["process"])
        except httpx2.TransportError:
            time.sleep(0.1)
    try:
        assert len(seen) == 2, f"API processes seen: {seen}\n{(data_dir / 'serve.log').read_text()}"
        yield base, secret, process, data_dir
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        log.close()
        assert process.returncode == 0, (data_dir / "serve.log").read_text()


def test_two_api_processes_share_one_rate_limit_and_one_metrics_page(server):
    base, secret, process, _ = server
    headers = {"Authorization": f"Bearer {secret}"}
    into_minute = time.monotonic() % 60  # the limiter's windows are minutes of the machine's monotonic clock:
    if into_minute > 45:  # start well inside one, so that the window before does not count part of these
        time.sleep(60.5 - into_minute)
    answers, pids = [], set()
    for _ in range(LIMIT + 4):  # each on a new connection, so both processes take some
        with httpx2.Client(base_url=base, headers=headers, timeout=10) as client:
            answers.append(client.get("/v1/generations").status_code)
            pids.add(client.get("/v1/health").json()["process"])
    assert answers.count(200) == LIMIT and answers.count(429) == 4, answers  # one budget, not one per process
    metrics = httpx2.get(f"{base}/metrics", timeout=10).text
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith('tunesmith_http_requests_total{method="GET",route="/v1/generations"'))
    assert counted == LIMIT + 4  # whichever process answered the scrape added up both
    assert len(pids) == 2 and process.pid not in pids


def test_a_second_serve_on_the_same_data_directory_is_refused(server):
    *_, data_dir = server
    done = subprocess.run([str(CLI), "serve", "--port", str(free_port()), "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "another `tunesmith serve` is running" in lines[0], done.stderr
    assert (data_dir / "run" / "ready-0").exists()  # the running server's shared files were left alone


def test_a_taken_port_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([str(CLI), "serve", "--port", str(port), "--data-dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], done.stderr


def test_the_port_check_refuses_a_listener_but_not_the_last_run_s_closed_connections():
    from tunesmith.errors import ParameterError
    from tunesmith.service.supervisor import check_port

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    with pytest.raises(ParameterError, match="cannot listen"):
        check_port("127.0.0.1", port)  # someone listens there
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server closes first, as uvicorn does with idle keep-alive connections: TIME_WAIT
    time.sleep(0.1)
    client.close()
    server.close()
    check_port("127.0.0.1", port)  # a restarted server may listen again at once
