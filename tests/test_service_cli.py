"""`tunesmith keys`, `tunesmith serve` and `tunesmith worker` as an operator runs them.

`serve` and `worker` run as real processes on 127.0.0.1: the API without an embedded worker, and a separate
worker process that takes the job from the shared SQLite queue (the scale-out path, on one machine).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

import tunesmith.cli as cli
from tests.test_service_support import make_key, make_settings, trained_models
from tunesmith.cli import keys, serve
from tunesmith.service import create_app

# The CLI with the service commands registered (cli/__init__.py lists the modules; this works either way).
BOOT = """
import argparse, sys
import tunesmith.cli as cli
from tunesmith.cli import keys, serve
build = cli.build_parser
def build_parser():
    parser = build()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, module in (("keys", keys), ("serve", serve)):
        if name not in sub.choices:
            module.register(sub)
    return parser
cli.build_parser = build_parser
sys.exit(cli.main(sys.argv[1:]))
"""
FAST_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # loads in ~1 s where present


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BOOT, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=Path(__file__).resolve().parents[1])


def stop(process: subprocess.Popen) -> tuple[int, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode, process.stdout.read() if process.stdout else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tunesmith(monkeypatch, capsys):
    """Run the CLI in this process (as `tunesmith ARGS...`); returns (exit code, stdout, stderr)."""
    original = cli.build_parser

    def build_parser():
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, module in (("keys", keys), ("serve", serve)):
            if name not in sub.choices:
                module.register(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_keys_create_prints_the_key_once_and_it_works(tmp_path, tunesmith, fresh_database_url, monkeypatch):
    if fresh_database_url:
        monkeypatch.setenv("TUNESMITH_DATABASE_URL", fresh_database_url)
    code, out, err = tunesmith("keys", "create", "--name", "alice", "--quota-seconds", "30", "--data-dir",
                               str(tmp_path))
    assert code == 0, err
    secret = out.strip()
    assert out.count("\n") == 1 and secret.startswith("ts_")
    assert "shown only now" in err
    code, out, err = tunesmith("keys", "list", "--data-dir", str(tmp_path))
    assert code == 0 and "alice" in out and "30 s/day" in out
    assert secret not in out and secret[:8] in out
    settings = make_settings(tmp_path, {}, workers=0, database_url=fresh_database_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/generations", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    code, out, err = tunesmith("keys", "revoke", "1", "--data-dir", str(tmp_path))
    assert code == 0 and "revoked key 1 'alice'" in out, err
    code, out, err = tunesmith("keys", "list", "--data-dir", str(tmp_path))
    assert code == 0 and ", revoked 20" in out
    with TestClient(create_app(settings)) as client:  # a server that starts after the revocation refuses it
        answer = client.get("/v1/generations", headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 401 and "revoked" in answer.json()["error"]["message"]


@pytest.mark.parametrize(("args", "needle"), [
    (["keys", "create", "--name", " "], "--name"),
    (["keys", "create", "--name", "x", "--quota-seconds", "-5"], "--quota-seconds"),
    (["keys", "create"], "--name"),
    (["worker", "--queue", "amqp://elsewhere"], "queue_url"),
    (["keys", "revoke", "99"], "no API key with id 99"),
])
def test_bad_options_are_one_line_errors(tmp_path, tunesmith, args, needle):
    code, _, err = tunesmith(*args, "--data-dir", str(tmp_path))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], err


def test_serve_and_a_separate_worker_share_the_queue(tmp_path_factory, tmp_path):
    models = trained_models(tmp_path_factory)
    port = free_port()
    env = {**os.environ, "TUNESMITH_MODELS": json.dumps({"folk": str(models["folk"])}),
           "TUNESMITH_WEIGHTS_DIR": str(tmp_path / "no-weights"), "TUNESMITH_POLL_SECONDS": "0.1"}
    if FAST_SOUNDFONT.is_file():
        env["TUNESMITH_SOUNDFONT"] = str(FAST_SOUNDFONT)
    settings = make_settings(tmp_path, {"folk": models["folk"]})
    headers = make_key(settings, "operator")
    server = start("serve", "--port", str(port), "--data-dir", str(tmp_path), "--workers", "0", env=env)
    worker = None
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx2.get(f"{base}/v1/health", timeout=2)
                break
            except httpx2.TransportError:
                time.sleep(0.2)
        assert server.poll() is None, stop(server)[1]
        assert health.json()["queue"]["embedded_workers"] == 0
        job = httpx2.post(f"{base}/v1/generations", json={"model": "folk", "params": {"bars": 1}}, headers=headers,
                          timeout=10).json()
        assert job["status"] == "queued"
        worker = start("worker", "--data-dir", str(tmp_path), env=env)
        deadline = time.monotonic() + 180  # a busy machine: the worker loads the model and the soundfont first
        while time.monotonic() < deadline:
            record = httpx2.get(f"{base}/v1/generations/{job['id']}", headers=headers, timeout=10).json()
            if record["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert record["status"] == "succeeded", record
        audio = httpx2.get(f"{base}{record['links']['audio']['wav']}", headers=headers, timeout=10)
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    finally:
        worker_code, worker_log = stop(worker) if worker is not None else (0, "")
        server_code, server_log = stop(server)
    assert worker_code == 0, worker_log
    assert server_code == 0, server_log
    assert "worker with 1 thread(s)" in worker_log and "folk" in worker_log
