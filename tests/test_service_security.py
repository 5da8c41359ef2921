"""Security checks of the API as tests: keys kept and looked up by hash, revocation reaching every API process of
`serve` within a second, per-key isolation on every route, and no path traversal through any id or file name.

Keys: the database keeps only sha256(secret) (``api_keys.key_hash``) and a request's key is found by that hash
(an index lookup, and a dict lookup in each process's cache), so the secret itself is never compared with anything
and a comparison's timing can only tell about a hash of it: nothing to compare in constant time. The tests below
check that what is stored and looked up is the hash.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.service_fixtures import error_of, free_port
from tests.test_service_support import make_key, wait_until_finished
from tests.test_service_uploads import MELODY, midi_bytes
from tests.tiny import tiny_weights
from tunesmith.bench.hostile import seed_file
from tunesmith.config import Settings
from tunesmith.service import create_app, crud
from tunesmith.service.db import ApiKey, Database

CLI = Path(sys.executable).with_name("tunesmith")


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    """The app with the tiny models on SQLite, then on PostgreSQL."""
    root = tmp_path_factory.mktemp("security")
    settings = Settings(data_dir=root / "data", weights_dir=tiny_weights(root / "weights"), workers=1,
                        poll_seconds=0.1, requests_per_minute=100_000, daily_audio_seconds=10**6,
                        database_url=database_url)
    with TestClient(create_app(settings)) as client:
        yield client, settings


@pytest.fixture(scope="module")
def alice(server):
    return make_key(server[1], "alice")


@pytest.fixture(scope="module")
def bob(server):
    return make_key(server[1], "bob")


@pytest.fixture(scope="module")
def owned(server, alice):
    """Alice's resources: a finished generation (with stems), an upload and an analysis; {path parameter: id}."""
    client = server[0]
    job = client.post("/v1/generations", headers=alice, json={"model": "folk", "params": {"bars": 1}, "seed": 3,
                                                                "formats": ["wav", "mid", "stems"]})
    assert job.status_code == 202, job.text
    record = wait_until_finished(client, job.json()["id"], alice)
    assert record["status"] == "succeeded" and record["result"]["stems"], record
    upload = client.post("/v1/uploads", headers=alice, files={"file": ("melody.mid", midi_bytes(MELODY))})
    analysis = client.post("/v1/analyses", headers=alice, files={"file": ("tone.wav", seed_file("wav"))})
    assert upload.status_code == 201 and analysis.status_code == 200, (upload.text, analysis.text)
    return {"generation_id": job.json()["id"], "upload_id": upload.json()["id"],
            "analysis_id": analysis.json()["id"], "track": record["result"]["stems"][0]}


def operations(client) -> list[tuple[str, str]]:
    """(method, path template) of every operation of the app's OpenAPI document that names a resource."""
    paths = client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops if "{" in path]


def fill(path: str, values: dict[str, str]) -> str:
    names = re.findall(r"\{(\w+)\}", path)
    unknown = [n for n in names if n not in values]
    assert not unknown, f"{path}: no id for {unknown}; add the resource to the `owned` fixture"
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


# ------------------------------------------------------------------------------------------------- keys


def test_keys_are_stored_and_found_by_their_hash_only(server, alice):
    secret = alice["Authorization"].split()[1]
    assert server[0].get("/v1/generations", headers=alice).status_code == 200  # now in the process's cache
    db = Database(server[1].database_url or "")
    try:
        with db.session() as session:
            rows = [(k.name, k.prefix, k.key_hash) for k in session.query(ApiKey)]
            assert crud.api_key_by_secret(session, secret).key_hash == crud.hash_secret(secret)
            assert crud.api_key_by_secret(session, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    finally:
        db.close()
    stored = " ".join(" ".join(row) for row in rows)
    assert secret not in stored and crud.hash_secret(secret) in stored  # the secret is nowhere in the records
    assert all(len(prefix) <= 8 for _, prefix, _ in rows)  # only its first characters, to tell keys apart
    services = server[0].app.state.services
    assert secret not in services._keys and crud.hash_secret(secret) in services._keys  # the cache: by hash too


# -------------------------------------------------------------------------------------------- isolation


def test_every_route_hides_other_keys_resources(server, alice, bob, owned):
    client = server[0]
    checked = []
    for method, path in operations(client):
        url = fill(path, owned)
        theirs = client.request(method, url, headers=bob)
        assert theirs.status_code == 404, f"{method} {url} with another key: {theirs.status_code} {theirs.text[:200]}"
        assert error_of(theirs)["code"] == "not_found"
        checked.append(f"{method} {path}")
    assert len(checked) >= 10, checked
    for method, path in operations(client):  # the owner still reaches each of them (the test can fail)
        if method == "GET":
            mine = client.request(method, fill(path, owned), headers=alice)
            assert mine.status_code != 404, f"{method} {path} for its owner: {mine.text[:200]}"
    assert client.delete(f"/v1/generations/{owned['generation_id']}", headers=bob).status_code == 404
    assert client.get(f"/v1/generations/{owned['generation_id']}", headers=alice).status_code == 200  # still there
    listed = client.get("/v1/generations", headers=bob).json()
    assert all(item["id"] != owned["generation_id"] for item in listed["items"])
    borrowed = client.post("/v1/generations", headers=bob, json={"model": "chorale", "params": {
        "input": owned["upload_id"], "harmonize": True}})  # another key's upload named in a body: not found
    assert borrowed.status_code == 422 and error_of(borrowed)["field"] == "params.input"


# ------------------------------------------------------------------------------------------ traversal

HOSTILE_IDS = ["..", "../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%2e%2e%2f%2e%2e%2fetc",
               "%2Fetc%2Fpasswd", "..%5C..%5Cwindows", "abc%00def", "%00", "....//....//etc", "%252e%252e%252f",
               "C:%5Cwindows%5Cwin.ini", "~root"]


def test_ids_cannot_reach_files_or_other_paths(server, alice, owned):
    client = server[0]
    passwd = Path("/etc/passwd").read_bytes()[:32] if Path("/etc/passwd").is_file() else b"root:"
    for method, path in operations(client):
        for hostile in HOSTILE_IDS:
            url = re.sub(r"\{(\w+)\}", hostile, path)
            response = client.request(method, url, headers=alice)
            assert response.status_code in (404, 405, 422), f"{method} {url}: {response.status_code}"
            assert passwd not in response.content and b"[boot loader]" not in response.content
    for hostile in ["../index.html", "..%2Fservice%2Fapp.py", "%2e%2e%2f%2e%2e%2fconfig.py", "studio.js%00.png"]:
        response = client.get(f"/studio/{hostile}")
        assert response.status_code == 404, f"/studio/{hostile}: {response.status_code}"
    for hostile in ["../../../../tmp/x", "/etc/passwd", "..%2f..%2fx"]:  # a query parameter that names a format
        response = client.get(f"/v1/generations/{owned['generation_id']}/audio", params={"format": hostile},
                              headers=alice)
        assert response.status_code == 422 and error_of(response)["field"] == "format"


def test_file_names_cannot_place_files_outside_the_data_directory(server, alice, tmp_path):
    client, settings = server
    outside = settings.data_dir.parent
    before = {p for p in outside.rglob("*") if "data" not in p.relative_to(outside).parts[:1]}
    names = ["../../escape.mid", "/tmp/escape-absolute.mid", "..\\..\\escape.mid", "a/../../escape.mid",
             "escape\x00.mid", "%2e%2e%2fescape.mid", "....//escape.mid", "C:\\escape.mid"]
    for name in names:
        uploaded = client.post("/v1/uploads", headers=alice, files={"file": (name, midi_bytes(MELODY))})
        assert uploaded.status_code == 201, (name, uploaded.text)
        shown = uploaded.json()["filename"]
        assert "/" not in shown and "\\" not in shown and ".." not in shown.removesuffix(".mid"), shown
        verified = client.post("/v1/verifications", headers=alice, files={"file": (name, seed_file("wav"))})
        assert verified.status_code == 200 and "/" not in verified.json()["file"], verified.text
        analysed = client.post("/v1/analyses", headers=alice, files={"file": (name.replace(".mid", ".wav"),
                                                                              seed_file("wav"))})
        assert analysed.status_code == 200 and "/" not in analysed.json()["filename"], analysed.text
    after = {p for p in outside.rglob("*") if "data" not in p.relative_to(outside).parts[:1]}
    assert after == before, sorted(map(str, after - before))
    assert not Path("/tmp/escape-absolute.mid").exists() and not (settings.data_dir / "escape.mid").exists()


# ------------------------------------------------------------------------------------------ revocation


@pytest.mark.skipif(not CLI.is_file(), reason="needs the tunesmith command")
def test_a_revoked_key_is_refused_by_every_api_process_within_a_second(tmp_path):
    """`serve` with two API processes; the key is cached in both (30 s), then revoked with `tunesmith keys
    revoke`: a second after the command has returned, both processes refuse it."""
    data_dir = tmp_path / "data"
    done = subprocess.run([str(CLI), "keys", "create", "--name", "soon-revoked", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120, env=_clean_env())
    assert done.returncode == 0, done.stderr
    headers = {"Authorization": f"Bearer {done.stdout.strip()}"}
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen([str(CLI), "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "0",
                              "--api-processes", "2"], stdout=log, stderr=subprocess.STDOUT,
                             env=_clean_env(TUNESMITH_PRELOAD="[]", TUNESMITH_REQUESTS_PER_MINUTE="10000"))
    base = f"http://127.0.0.1:{port}"
    try:
        def answers_by_process() -> dict[int, int]:
            """{API process: status of GET /v1/generations}, from new connections until both answered."""
            seen: dict[int, int] = {}
            for _ in range(200):
                try:
                    with httpx2.Client(base_url=base, headers=headers, timeout=10) as client:
                        pid = client.get("/v1/health").json()["process"]  # the same connection: the same process
                        seen[pid] = client.get("/v1/generations").status_code
                except httpx2.TransportError:
                    time.sleep(0.2)
                if len(seen) == 2:
                    break
            return seen

        before = answers_by_process()
        assert len(before) == 2 and set(before.values()) == {200}, (before, (tmp_path / "serve.log").read_text())
        revoked = subprocess.run([str(CLI), "keys", "revoke", "1", "--data-dir", str(data_dir)],
                                 capture_output=True, text=True, timeout=120, env=_clean_env())
        assert revoked.returncode == 0, revoked.stderr
        time.sleep(1.0)
        after = answers_by_process()
        assert len(after) == 2 and set(after.values()) == {401}, after
        with httpx2.Client(base_url=base, headers=headers, timeout=10) as client:
            assert "revoked" in client.get("/v1/generations").json()["error"]["message"]
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
        log.close()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TUNESMITH_")}
    return env | extra
