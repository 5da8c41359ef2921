"""Several hosts, one of them killed: real processes in network namespaces this test makes, on addresses of
their own (10.77.0.0/24 on a bridge inside the store's namespace; nothing outside loopback and these namespaces).

    store  10.77.0.4  PostgreSQL (records), Redis (queue), s3rver (artifacts), the bridge
    api    10.77.0.1  tunesmith serve --workers 0
    w1     10.77.0.2  tunesmith worker           w2  10.77.0.3  tunesmith worker

Each host has a data directory of its own (they share only the servers above, and the signing key, as a
deployment would). Jobs are submitted through the API; while w1 runs one, every process of w1's namespace is
killed with SIGKILL and its link taken down. The job's lease runs out, w2 queues it again and runs it: every job
succeeds, work that had succeeded is untouched and still downloadable, and a trigger in PostgreSQL that logs each
move to 'succeeded' shows that no job completed twice. Then w1 comes back (link up, a new worker) and takes work
again. The test removes its namespaces (and so everything in them) even when it fails.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service_fixtures import S3RVER_CREDENTIALS, start_postgres, start_redis, start_s3rver, unavailable

CLI = Path(sys.executable).with_name("tunesmith")
ROOT = Path(__file__).resolve().parents[1]
SUBNET = "10.77.0"
HOSTS = {"api": 1, "w1": 2, "w2": 3}  # host -> last byte of its address; the store is .4
STORE = f"{SUBNET}.4"
LEASE_SECONDS = 3.0
CLONE_NEWNET = 0x40000000
FAST_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
# long enough to be killed mid-run: 16 bars at 30 bpm are 128 s of audio to render, mark and encode
SLOW_JOB = {"model": "chorale", "params": {"bars": 16, "tempo": 30}}
QUICK_JOB = {"model": "chorale", "params": {"bars": 2, "tempo": 120}}

COMPLETIONS = """
CREATE TABLE completions (generation_id text, lease_owner text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION log_completion() RETURNS trigger AS $$
BEGIN
  INSERT INTO completions (generation_id, lease_owner) VALUES (NEW.id, NEW.lease_owner);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER completion AFTER UPDATE OF status ON generations
  FOR EACH ROW WHEN (NEW.status = 'succeeded' AND OLD.status <> 'succeeded') EXECUTE FUNCTION log_completion();
"""


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _enter(namespace: str) -> None:
    """Move the calling thread (only it) into a network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")
    finally:
        os.close(fd)


class Host:
    """A network namespace and a thread living in it: sockets opened and processes started by :meth:`call`
    are in the namespace (a child process inherits the namespace of the thread that starts it)."""

    def __init__(self, name: str, namespace: str, address: str) -> None:
        self.name, self.namespace, self.address = name, namespace, address
        ip("netns", "add", namespace)
        ip("-n", namespace, "link", "set", "lo", "up")
        self.thread = concurrent.futures.ThreadPoolExecutor(1, f"netns-{name}", initializer=_enter,
                                                            initargs=(namespace,))

    def call(self, function, *args, **kwargs):
        return self.thread.submit(function, *args, **kwargs).result(timeout=120)

    def pids(self) -> list[int]:
        found = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True, timeout=10)
        return [int(pid) for pid in found.stdout.split()]

    def kill9(self) -> list[int]:
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def remove(self) -> None:
        self.kill9()
        self.thread.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(RuntimeError):
            ip("netns", "del", self.namespace)


class Network:
    """The four namespaces and the bridge; :meth:`close` removes them (and kills what runs in them)."""

    def __init__(self, tag: str) -> None:
        self.hosts: dict[str, Host] = {}
        try:
            self.store = self._host("store", tag, STORE)
            ip("-n", self.store.namespace, "link", "add", "br0", "type", "bridge")
            ip("-n", self.store.namespace, "addr", "add", f"{STORE}/24", "dev", "br0")
            ip("-n", self.store.namespace, "link", "set", "br0", "up")
            for name, last in HOSTS.items():
                host = self._host(name, tag, f"{SUBNET}.{last}")
                port = f"p{name}"  # the bridge's end, in the store's namespace; the host's end is eth0
                ip("-n", self.store.namespace, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
                   host.namespace)
                ip("-n", self.store.namespace, "link", "set", port, "master", "br0", "up")
                ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
                ip("-n", host.namespace, "link", "set", "eth0", "up")
        except BaseException:
            self.close()
            raise

    def _host(self, name: str, tag: str, address: str) -> Host:
        host = Host(name, f"ts-{tag}-{name}", address)
        self.hosts[name] = host
        return host

    def link(self, name: str, state: str) -> None:
        ip("-n", self.hosts[name].namespace, "link", "set", "eth0", state)

    def close(self) -> None:
        for host in reversed(list(self.hosts.values())):
            host.remove()


def netns_available() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    probe = f"ts-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        return f"ip netns add failed: {done.stderr.strip()} (needs root or CAP_SYS_ADMIN)"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


@pytest.fixture
def network():
    reason = netns_available()
    if reason is not None:
        unavailable("netns", reason)
    if not CLI.is_file():
        pytest.skip("needs the tunesmith command")
    net = Network(str(os.getpid() % 100000))
    servers = []
    try:
        yield net, servers
    finally:
        for name in HOSTS:  # the hosts' processes first, then the servers they use
            if name in net.hosts:
                net.hosts[name].kill9()
        for server in servers:
            with contextlib.suppress(Exception):
                net.store.call(server.stop)
        net.close()


class Process:
    """A tunesmith command started on a host, its output in a log file."""

    def __init__(self, host: Host, args: list[str], env: dict[str, str], log: Path) -> None:
        self.host, self.log = host, log
        with log.open("a") as out:
            self.process = host.call(subprocess.Popen, [str(CLI), *args], stdout=out, stderr=subprocess.STDOUT,
                                     env=env, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def test_a_killed_worker_host_loses_nothing_and_its_job_runs_once_elsewhere(network, tmp_path):
    from tests.tiny import tiny_weights
    from tunesmith.provenance.signing import load_or_create_signing_key

    started = time.monotonic()
    net, servers = network
    store = net.store
    postgres = store.call(start_postgres, host=STORE)
    servers.append(postgres)
    redis = store.call(start_redis, host=STORE)
    servers.append(redis)
    s3 = store.call(start_s3rver, host=STORE)
    servers.append(s3)
    database = store.call(postgres.new_database)
    key = store.call(_prepare_database, database)

    weights = tiny_weights(tmp_path / "weights")
    data = {name: tmp_path / name for name in HOSTS}
    load_or_create_signing_key(data["api"])  # one signing key, given to every host (a deployment's secret)
    for name in ("w1", "w2"):
        shutil.copytree(data["api"] / "provenance", data[name] / "provenance")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TUNESMITH_", "AWS_"))},
           **S3RVER_CREDENTIALS, "TUNESMITH_DATABASE_URL": database, "TUNESMITH_QUEUE_URL": redis.url,
           "TUNESMITH_ARTIFACTS_URL": f"s3://{s3.bucket}/multihost", "TUNESMITH_S3_ENDPOINT": s3.endpoint,
           "TUNESMITH_WEIGHTS_DIR": str(weights), "TUNESMITH_PRELOAD": '["chorale"]',
           "TUNESMITH_POLL_SECONDS": "0.1", "TUNESMITH_LEASE_SECONDS": str(LEASE_SECONDS),
           "TUNESMITH_MAX_AUDIO_SECONDS": "1000", "TUNESMITH_REQUESTS_PER_MINUTE": "100000",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if FAST_SOUNDFONT.is_file():
        env["TUNESMITH_SOUNDFONT"] = str(FAST_SOUNDFONT)
    api = net.hosts["api"]
    Process(api, ["serve", "--host", api.address, "--port", "8000", "--workers", "0", "--api-processes", "1",
                  "--data-dir", str(data["api"])], env, tmp_path / "api.log")
    workers = {name: Process(net.hosts[name], ["worker", "--data-dir", str(data[name])], env,
                             tmp_path / f"{name}.log") for name in ("w1", "w2")}
    base = f"http://{api.address}:8000"
    client = store.call(_client, key)
    try:
        _wait(lambda: store.call(_healthy, client, base), "the API", tmp_path, timeout=180)
        _wait(lambda: all("tunesmith: worker with" in w.output() for w in workers.values()), "both workers",
              tmp_path, timeout=180)
        setup = time.monotonic() - started

        quick = [store.call(_submit, client, base, QUICK_JOB, seed) for seed in range(2)]
        _wait(lambda: all(s == "succeeded" for s in store.call(_statuses, database, quick).values()),
              "the first jobs", tmp_path)
        before = store.call(_records, database, quick)  # work that succeeded before the kill
        slow = [store.call(_submit, client, base, SLOW_JOB, seed) for seed in range(10, 13)]
        w1_pid = workers["w1"].pid
        victim = _wait(lambda: store.call(_running_on, database, w1_pid), "a job running on w1", tmp_path)
        killed_at = time.monotonic()
        killed = net.hosts["w1"].kill9()
        net.link("w1", "down")
        assert w1_pid in killed
        w2_pid = workers["w2"].pid
        _wait(lambda: _pid_of(store.call(_owners, database, [victim]).get(victim)) == w2_pid,
              "w2 to run the killed host's job", tmp_path, timeout=60)
        recovered = time.monotonic()

        net.link("w1", "up")  # w1 comes back (its start overlaps w2's work) and takes work again
        back = Process(net.hosts["w1"], ["worker", "--data-dir", str(data["w1"])], env, tmp_path / "w1-back.log")
        _wait(lambda: all(s == "succeeded" for s in store.call(_statuses, database, slow).values()),
              "every job to succeed", tmp_path, timeout=120)
        final = store.call(_records, database, quick + slow)
        assert final[victim]["interruptions"] == 1, final[victim]
        assert _pid_of(final[victim]["lease_owner"]) == w2_pid  # it ran again on w2
        for job_id, record in before.items():  # nothing that had succeeded changed
            assert final[job_id] == record
        completions = store.call(_completions, database)
        assert sorted(completions) == sorted(quick + slow), completions  # each job completed exactly once
        for job_id in quick + slow:
            audio = store.call(_get, client, f"{base}/v1/generations/{job_id}/audio?format=wav",
                               {"Range": "bytes=0-3"})
            assert audio == (206, b"RIFF"), (job_id, audio)

        _wait(lambda: "tunesmith: worker with" in back.output(), "w1 back", tmp_path, timeout=120)
        later: list[str] = []

        def w1_took_one() -> bool:
            later.append(store.call(_submit, client, base, QUICK_JOB, 100 + len(later)))
            owners = store.call(_owners, database, later)
            return back.pid in {_pid_of(owner) for owner in owners.values()}

        _wait(w1_took_one, "w1 to take a job again", tmp_path, every=0.5, timeout=60)
        _wait(lambda: all(s == "succeeded" for s in store.call(_statuses, database, later).values()),
              "the later jobs", tmp_path, timeout=120)
        assert sorted(store.call(_completions, database)) == sorted(quick + slow + later)
        print(f"multi-host: set-up {setup:.1f} s, killed job taken by w2 {recovered - killed_at:.1f} s after the "
              f"kill, whole test {time.monotonic() - started:.1f} s")
    finally:
        store.call(client.close)


# ------------------------------------------------------------------------------------------- helpers
# (called on the store's thread: its sockets are in the store's namespace, which reaches every host)


def _prepare_database(url: str) -> str:
    """Migrate, add the completion log and make an API key; returns the key."""
    from sqlalchemy import text

    from tunesmith.service import crud
    from tunesmith.service.db import Database

    db = Database(url)
    try:
        db.migrate()
        with db.engine.begin() as connection:
            connection.execute(text(COMPLETIONS))
        with db.session() as session:
            _, secret = crud.create_api_key(session, name="multihost")
        return secret
    finally:
        db.close()


def _query(url: str, sql: str, **params) -> list[tuple]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as connection:
        return list(connection.execute(sql, params).fetchall())


def _statuses(url: str, ids: list[str]) -> dict[str, str]:
    return dict(_query(url, "SELECT id, status FROM generations WHERE id = ANY(%(ids)s)", ids=ids))


def _owners(url: str, ids: list[str]) -> dict[str, str]:
    return dict(_query(url, "SELECT id, lease_owner FROM generations WHERE id = ANY(%(ids)s) AND lease_owner IS NOT "
                            "NULL", ids=ids))


def _records(url: str, ids: list[str]) -> dict[str, dict]:
    rows = _query(url, "SELECT id, status, artifacts::text, finished, interruptions, lease_owner FROM generations "
                       "WHERE id = ANY(%(ids)s)", ids=ids)
    return {row[0]: {"status": row[1], "artifacts": row[2], "finished": row[3], "interruptions": row[4],
                     "lease_owner": row[5]} for row in rows}


def _running_on(url: str, pid: int) -> str | None:
    rows = _query(url, "SELECT id, lease_owner FROM generations WHERE status = 'running' AND progress < 0.9")
    return next((job_id for job_id, owner in rows if _pid_of(owner) == pid), None)


def _completions(url: str) -> list[str]:
    return [row[0] for row in _query(url, "SELECT generation_id FROM completions")]


def _pid_of(lease_owner: str | None) -> int | None:
    """The process of a lease (``host/pid/run``)."""
    return int(lease_owner.split("/")[1]) if lease_owner else None


def _client(key: str):
    import httpx2

    return httpx2.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _healthy(client, base: str) -> bool:
    import httpx2

    try:
        return client.get(f"{base}/v1/health").status_code == 200
    except httpx2.TransportError:
        return False


def _submit(client, base: str, body: dict, seed: int) -> str:
    answer = client.post(f"{base}/v1/generations", json={**body, "seed": seed})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def _get(client, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    answer = client.get(url, headers=headers)
    return answer.status_code, answer.content


def _wait(condition, what: str, logs: Path, *, timeout: float = 60.0, every: float = 0.05):
    """Poll ``condition()`` until it is truthy (bounded); returns its value. On time-out the hosts' logs are shown."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    shown = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
                      for log in sorted(logs.glob("*.log")))
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{shown}")
