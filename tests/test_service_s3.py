"""Artifacts and uploads in an S3-compatible object store: a real S3 server (s3rver, tests/service_fixtures.py)
and two Tunesmith apps with data directories of their own sharing one bucket, as two hosts would. Host A runs
the jobs; host B has no worker and no file of A's, and answers A's works (whole, by range, transcoded, zipped)
from the bucket alone."""

from __future__ import annotations

import io
import os
import uuid
import zipfile

import pytest
import soundfile as sf

from tests.service_fixtures import S3RVER_CREDENTIALS, error_of, served
from tests.test_service_support import make_key, make_settings, trained_models, wait_until_finished
from tunesmith.config import load_settings
from tunesmith.errors import DependencyError, ParameterError
from tunesmith.service.storage import make_store


@pytest.fixture(scope="module")
def credentials():
    saved = {name: os.environ.get(name) for name in S3RVER_CREDENTIALS}
    os.environ.update(S3RVER_CREDENTIALS)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def prefix(s3_server, credentials):
    return f"test-{uuid.uuid4().hex[:8]}"


def host_settings(tmp_path_factory, s3_server, prefix, name, **overrides):
    return make_settings(tmp_path_factory.mktemp(name), trained_models(tmp_path_factory), max_bars=8,
                         artifacts_url=f"s3://{s3_server.bucket}/{prefix}", s3_endpoint=s3_server.endpoint,
                         **overrides)


@pytest.fixture(scope="module")
def host_a(tmp_path_factory, s3_server, prefix, postgres_cluster, redis_server):
    database = postgres_cluster.new_database()  # both hosts share the records and the queue, as a deployment does
    settings = host_settings(tmp_path_factory, s3_server, prefix, "host-a", database_url=database,
                             queue_url=redis_server.url)
    yield from served(settings)


@pytest.fixture(scope="module")
def host_b(tmp_path_factory, s3_server, prefix, host_a):
    settings = host_settings(tmp_path_factory, s3_server, prefix, "host-b", workers=0,
                             database_url=host_a[1].database_url, queue_url=host_a[1].queue_url)
    yield from served(settings)


@pytest.fixture(scope="module")
def alice(host_a):
    return make_key(host_a[1], "alice")


@pytest.fixture(scope="module")
def work(host_a, alice):
    """A finished chorale with its stems and a FLAC."""
    client = host_a[0]
    body = {"model": "chorale", "params": {"key": "D minor", "bars": 2, "tempo": 120}, "seed": 4,
            "formats": ["wav", "flac", "stems"]}
    response = client.post("/v1/generations", json=body, headers=alice)
    assert response.status_code == 202, response.text
    job = wait_until_finished(client, response.json()["id"], alice)
    assert job["status"] == "succeeded", job["error"]
    return job


def stored_keys(s3_server, prefix) -> dict[str, int]:
    """key -> size of every object under ``prefix`` in the bucket."""
    client = s3_server.client()
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_server.bucket, Prefix=f"{prefix}/"):
        found |= {item["Key"]: item["Size"] for item in page.get("Contents", [])}
    return found


def test_artifacts_live_in_the_bucket_not_the_data_directory(host_a, s3_server, prefix, work):
    keys = stored_keys(s3_server, prefix)
    assert {"wav", "mid", "flac"} <= set(work["provenance"]["content_sha256"])
    artifacts = {k for k in keys if k.startswith(f"{prefix}/artifacts/")}
    assert len(artifacts) >= 5 + len(work["result"]["stems"]), keys  # wav mid flac 2 pictures + one per stem
    local = [p for p in (host_a[1].data_dir / "artifacts").rglob("*") if p.is_file() and ".tmp" not in p.parts]
    assert local == []


def test_another_host_serves_the_work_whole_and_by_range(host_a, host_b, alice, s3_server, prefix, work):
    a, b = host_a[0], host_b[0]
    url = work["links"]["audio"]["wav"]
    full = a.get(url, headers=alice)
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    assert b.get(url, headers=alice).content == full.content
    objects = s3_server.client()
    assert any(objects.get_object(Bucket=s3_server.bucket, Key=k)["Body"].read() == full.content
               for k in stored_keys(s3_server, prefix) if k.endswith(".wav"))  # the bytes are an object of the bucket
    size = len(full.content)
    part = b.get(url, headers=alice | {"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.content == full.content[100:200] and part.headers["content-length"] == "100"
    tail = b.get(url, headers=alice | {"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full.content[-10:]
    open_ended = b.get(url, headers=alice | {"Range": f"bytes={size - 5}-"})
    assert open_ended.status_code == 206 and open_ended.content == full.content[-5:]
    outside = b.get(url, headers=alice | {"Range": f"bytes={size + 10}-"})
    assert outside.status_code == 416 and outside.headers["content-range"] == f"bytes */{size}"
    assert error_of(outside)["code"] == "range_not_satisfiable"
    assert b.get(url, headers=alice | {"Range": "pages=1-2"}).content == full.content  # an unknown unit: ignored
    malformed = b.get(url, headers=alice | {"Range": "bytes=abc"})
    assert malformed.status_code == 400 and error_of(malformed)["field"] == "Range"
    several = b.get(url, headers=alice | {"Range": "bytes=0-3,8-11"})  # answered from a local copy
    assert several.status_code == 206 and several.headers["content-type"].startswith("multipart/byteranges")
    assert full.content[:4] in several.content and full.content[8:12] in several.content
    midi = b.get(work["links"]["midi"], headers=alice | {"Range": "bytes=0-3"})
    assert midi.status_code == 206 and midi.content == b"MThd"
    flac = b.get(work["links"]["audio"]["flac"], headers=alice)
    assert flac.status_code == 200 and sf.read(io.BytesIO(flac.content))[0].shape[0] > 0
    for kind in ("spectrogram", "pianoroll"):
        picture = b.get(work["links"][kind], headers=alice)
        assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")


def test_stems_and_their_zip_from_the_bucket(host_b, alice, work):
    b = host_b[0]
    tracks = work["result"]["stems"]
    first = b.get(work["links"]["stems"][tracks[0]], headers=alice)
    assert first.status_code == 200 and first.content.startswith(b"RIFF")
    part = b.get(work["links"]["stems"][tracks[0]], headers=alice | {"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == b"RIFF"
    archive = b.get(work["links"]["stems_zip"], headers=alice)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        assert sorted(opened.namelist()) == sorted(f"{t}.wav" for t in tracks)
        assert opened.read(f"{tracks[0]}.wav") == first.content


def test_a_format_made_later_on_another_host_is_stored_for_all(host_a, host_b, alice, work):
    mp3 = host_b[0].get(work["links"]["audio"]["mp3"], headers=alice)  # made by B from the bucket's WAV
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert host_a[0].get(work["links"]["audio"]["mp3"], headers=alice).content == mp3.content


def test_an_upload_reaches_the_worker_through_the_bucket(host_a, host_b, alice, s3_server, prefix):
    import mido

    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for pitch in (60, 62, 64, 65, 67, 65, 64, 62):
        track += [mido.Message("note_on", note=pitch, velocity=80, time=0),
                  mido.Message("note_off", note=pitch, velocity=0, time=480)]
    data = io.BytesIO()
    midi.save(file=data)
    uploaded = host_b[0].post("/v1/uploads", headers=alice, files={"file": ("tune.mid", data.getvalue())})
    assert uploaded.status_code == 201, uploaded.text
    assert any(k.startswith(f"{prefix}/uploads/") and k.endswith(".mid") for k in stored_keys(s3_server, prefix))
    body = {"model": "folk", "params": {"input": uploaded.json()["id"], "bars": 2}, "seed": 2}
    job = host_b[0].post("/v1/generations", json=body, headers=alice)  # B records, A's worker runs it
    assert job.status_code == 202, job.text
    done = wait_until_finished(host_a[0], job.json()["id"], alice)
    assert done["status"] == "succeeded", done["error"]


def test_deleting_a_work_deletes_its_objects(host_a, alice, s3_server, prefix):
    client = host_a[0]
    job = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 1}, "seed": 99}, headers=alice)
    done = wait_until_finished(client, job.json()["id"], alice)
    assert done["status"] == "succeeded"
    before = stored_keys(s3_server, prefix)
    assert client.delete(f"/v1/generations/{done['id']}", headers=alice).status_code == 204
    after = stored_keys(s3_server, prefix)
    gone = set(before) - set(after)
    assert len(gone) >= 4 and not set(after) - set(before), gone  # wav, mid, spectrogram, piano roll


def test_a_bad_url_or_an_unreachable_store_is_named(tmp_path, credentials):
    with pytest.raises(ParameterError, match="artifacts_url"):
        load_settings(data_dir=tmp_path, artifacts_url="https://bucket/prefix")
    closed = load_settings(data_dir=tmp_path, artifacts_url="s3://nowhere/x", s3_endpoint="http://127.0.0.1:9")
    with pytest.raises(DependencyError, match=r"127\.0\.0\.1:9.*'nowhere'"):
        make_store(closed)
