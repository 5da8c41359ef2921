"""The HTTP API end to end: a real app, SQLite records, a Huey consumer thread, tiny real models, FluidSynth."""

from __future__ import annotations

import io
import json
import os

import mido
import pytest
import soundfile as sf

from tests.service_fixtures import client_and_keys, error_of, served
from tests.test_service_support import make_key, make_settings, trained_models, wait_until_finished

MAX_BARS = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    settings = make_settings(tmp_path_factory.mktemp("api"), trained_models(tmp_path_factory), max_bars=MAX_BARS,
                             max_upload_bytes=4096, max_audio_seconds=120, database_url=database_url)
    yield from served(settings)


client_fixture, alice_fixture, bob_fixture = client_and_keys()


@pytest.fixture(scope="module")
def chorale_job(client, alice):
    """A finished chorale with FLAC made at generation time."""
    body = {"model": "chorale", "params": {"key": "G major", "bars": 2, "tempo": 120}, "seed": 3,
            "formats": ["wav", "flac"]}
    response = client.post("/v1/generations", json=body, headers=alice)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/generations/{response.json()['id']}"
    assert response.json()["status"] in ("queued", "running")
    return wait_until_finished(client, response.json()["id"], alice)


def test_health_tells_models_loading_from_models_not_loaded(client, tmp_path):
    """`serve`'s worker process reports its models when it has loaded them; until then its report (a file the API
    processes read) says it is not ready, and the models it is loading show ``loading``."""
    from tunesmith.service.routes.health import preloading
    from tunesmith.service.worker_process import WorkerView

    services = client.app.state.services
    report = tmp_path / "worker.json"
    kept, services.worker = services.worker, WorkerView(report)
    try:
        report.write_text(json.dumps({"pid": os.getpid(), "metrics_port": 0, "loaded": [], "ready": False}))
        assert preloading(services) == {"chorale", "folk"}
        health = client.get("/v1/health").json()
        assert health["queue"]["worker_alive"] is True
        assert health["models"]["folk"] == {"version": "0.0.0+local", "loaded": True, "loading": False}  # here too
        report.write_text(json.dumps({"pid": os.getpid(), "metrics_port": 0, "loaded": ["folk"], "ready": True}))
        assert preloading(services) == set()
        report.write_text(json.dumps({"pid": 2 ** 22 + 1, "loaded": [], "ready": False}))  # a worker that died
        assert preloading(services) == set()
    finally:
        services.worker = kept


def test_health_and_models_need_no_key(client):
    health = client.get("/v1/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["models"] == {"chorale": {"version": "0.0.0+local", "loaded": True, "loading": False},
                                       "folk": {"version": "0.0.0+local", "loaded": True, "loading": False}}
    models = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {"chorale", "folk"}
    assert models["chorale"]["voices"] == 4 and models["folk"]["voices"] == 1
    params = models["chorale"]["params"]
    assert params["bars"]["maximum"] == MAX_BARS and params["tempo"] == {
        "type": "number", "minimum": 20.0, "maximum": 300.0, "default": 76.0, "unit": "quarter notes per minute"}
    assert "3/4" in params["meter"]["enum"] and "violin" in params["instrument"]["enum"]
    assert any("public domain" in lic for lic in models["chorale"]["training_data"]["licences"])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer ts_not-a-key"}, {"Authorization": "Basic eDp5"}])
def test_v1_needs_a_valid_bearer_key(client, headers):
    for method, path in (("GET", "/v1/generations"), ("POST", "/v1/generations"),
                         ("GET", "/v1/generations/some-id/audio")):
        response = client.request(method, path, headers=headers, json={"model": "chorale"})
        assert response.status_code == 401, (method, path)
        assert error_of(response)["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_generation_end_to_end(client, alice, chorale_job):
    job = chorale_job
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    assert job["result"]["key"] == "G major" and job["result"]["bars"] == 2 and job["result"]["seed"] == 3
    assert job["params"] == {"key": "G major", "bars": 2, "meter": "4/4", "tempo": 120.0, "temperature": 1.0,
                             "top_p": 0.95, "instrument": "church_organ", "seed": 3}
    assert job["formats"] == ["wav", "flac", "mid"]
    assert job["started"] and job["finished"] and job["created"] <= job["started"] <= job["finished"]

    wav = client.get(job["links"]["audio"]["wav"], headers=alice)
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    assert wav.content[:4] == b"RIFF" and wav.content[8:12] == b"WAVE"
    audio, sr = sf.read(io.BytesIO(wav.content))
    assert sr == 44100 and audio.ndim == 2 and audio.shape[1] == 2 and audio.shape[0] > 0
    assert abs(audio).max() > 0.01  # not silence
    assert job["audio_seconds"] == pytest.approx(audio.shape[0] / sr, abs=1e-3)
    assert job["audio_seconds"] == pytest.approx(2 * 4 * 60 / 120 + 1.0, abs=0.05)  # 2 bars at 120 BPM + tail

    midi = client.get(job["links"]["midi"], headers=alice)
    assert midi.status_code == 200 and midi.headers["content-type"] == "audio/midi"
    assert midi.content[:4] == b"MThd"
    notes = [m for track in mido.MidiFile(file=io.BytesIO(midi.content)).tracks for m in track
             if m.type == "note_on" and m.velocity > 0]
    assert len(notes) >= 4  # four voices sound at least once

    flac = client.get(job["links"]["audio"]["flac"], headers=alice)
    assert flac.headers["content-type"] == "audio/flac" and flac.content[:4] == b"fLaC"
    for _ in range(2):  # made from the WAV on the first request, then served from the store
        mp3 = client.get(f"/v1/generations/{job['id']}/audio?format=mp3", headers=alice)
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg" and len(mp3.content) > 1000
        sound, _ = sf.read(io.BytesIO(mp3.content))
        assert sound.shape[0] > 0


def test_audio_range_requests(client, alice, chorale_job):
    url = chorale_job["links"]["audio"]["wav"]
    full = client.get(url, headers=alice).content
    assert client.get(url, headers=alice).headers["accept-ranges"] == "bytes"
    part = client.get(url, headers=alice | {"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{len(full)}"
    assert part.content == full[:100]
    tail = client.get(url, headers=alice | {"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full[-10:]
    outside = client.get(url, headers=alice | {"Range": f"bytes={len(full) + 10}-"})
    assert outside.status_code == 416 and outside.headers["content-range"] == f"bytes */{len(full)}"
    assert error_of(outside)["code"] == "range_not_satisfiable"
    other_unit = client.get(url, headers=alice | {"Range": "pages=1-2"})  # RFC 9110 14.2: ignored
    assert other_unit.status_code == 200 and other_unit.content == full
    malformed = client.get(url, headers=alice | {"Range": "bytes=abc"})
    assert malformed.status_code == 400 and error_of(malformed)["code"] == "bad_range"
    midi = client.get(chorale_job["links"]["midi"], headers=alice | {"Range": "bytes=0-3"})
    assert midi.status_code == 206 and midi.content == b"MThd"


def test_events_stream_progress_then_done(client, alice):
    created = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 2}, "seed": 1}, headers=alice)
    events = []
    with client.stream("GET", created.json()["links"]["events"], headers=alice) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    names = [n for n, _ in events]
    assert names[-1] == "done" and names.count("done") == 1 and "progress" in names
    progress = [d["progress"] for n, d in events if n == "progress"]
    assert progress == sorted(progress)
    assert events[-1][1]["status"] == "succeeded" and events[-1][1]["id"] == created.json()["id"]


def test_prompt_is_read_and_echoed(client, alice):
    response = client.post("/v1/generations", json={"prompt": "a slow chorale in D minor for organ, 3 bars"},
                           headers=alice)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["model"] == "chorale"
    read = job["interpretation"]["params"]
    assert job["params"] | {"seed": 0} == {"key": "D minor", "bars": 3, "meter": "4/4", "tempo": read["tempo"]["value"],
                                           "temperature": 1.0, "top_p": 0.95, "instrument": "church_organ",
                                           "seed": 0}
    assert 40 <= job["params"]["tempo"] <= 80 and "slow" in read["tempo"]["words"]  # a slow tempo, from 'slow'
    assert read["key"]["source"] == "rule" and read["bars"]["value"] == 3
    assert job["prompt"] == "a slow chorale in D minor for organ, 3 bars"
    assert job["interpretation"]["unused_words"] == [] and job["interpretation"]["language"] == "en"


def test_explicit_params_win_over_the_prompt(client, alice):
    body = {"prompt": "a fast folk tune in G, 4 bars, for gloomy violin", "params": {"bars": 2, "key": "A minor"}}
    job = client.post("/v1/generations", json=body, headers=alice).json()
    assert job["model"] == "folk"
    assert job["params"]["bars"] == 2 and job["params"]["key"] == "A minor"  # explicit
    assert job["params"]["tempo"] >= 120 and job["params"]["instrument"] == "violin"  # from the prompt: fast, violin
    notes = job["interpretation"]["notes"]
    assert "bars: 2 as given in params (the prompt said 4)" in notes
    assert job["interpretation"]["unused_words"] == []  # 'gloomy' is a mood now
    explicit_model = client.post("/v1/generations", json={"model": "chorale", "prompt": "a jig", "params":
                                                          {"bars": 1}}, headers=alice).json()
    assert explicit_model["model"] == "chorale" and explicit_model["params"]["meter"] == "6/8"


def test_moods_scenes_and_styles_get_a_job(client, alice):
    """Prompts the old reader refused are read now (the song model is not on this server: the nearest model)."""
    for prompt in ("a calm chorale for strings", "a sad piano piece", "epic cinematic orchestral music",
                   "lo-fi hip hop beat with mellow piano, 80 bpm", "一首安静的钢琴曲"):
        response = client.post("/v1/generations", json={"prompt": prompt, "params": {"bars": 1}}, headers=alice)
        assert response.status_code == 202, (prompt, response.text)
        assert response.json()["interpretation"]["params"], prompt


@pytest.mark.parametrize(("prompt", "needle"), [
    ("xyzzy plugh", "not seem to be about music"),
    ("what is the weather tomorrow", "not seem to be about music"),
    ("a chorale that is also a jig", "more than one model"),
    ("slow and fast chorale", "contradicts itself"),
])
def test_prompts_that_cannot_be_followed_are_422(client, alice, prompt, needle):
    response = client.post("/v1/generations", json={"prompt": prompt}, headers=alice)
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "prompt" and needle in error["message"]


def test_what_a_model_cannot_do_is_left_to_it_with_a_note(client, alice):
    job = client.post("/v1/generations", json={"prompt": "a hymn in 5/4, 2 bars"}, headers=alice).json()
    assert job["model"] == "chorale" and job["params"]["meter"] == "4/4"
    assert any("5/4" in note for note in job["interpretation"]["notes"])
    too_long = client.post("/v1/generations", json={"prompt": "a chorale of 40 bars", "params": {"tempo": 300}},
                           headers=alice).json()  # more than this server writes: its longest, with a note
    assert too_long["params"]["bars"] == MAX_BARS
    assert any("asks for 40" in note for note in too_long["interpretation"]["notes"])


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "chorale", "params": {"bars": 0}}, "params.bars"),
    ({"model": "chorale", "params": {"bars": "many"}}, "params.bars"),
    ({"model": "chorale", "params": {"bars": MAX_BARS + 1}}, "params.bars"),
    ({"model": "chorale", "params": {"tempo": 500}}, "params.tempo"),
    ({"model": "chorale", "params": {"temperature": 5}}, "params.temperature"),
    ({"model": "chorale", "params": {"top_p": 0}}, "params.top_p"),
    ({"model": "chorale", "params": {"key": "H minor"}}, "params.key"),
    ({"model": "chorale", "params": {"meter": "5/4"}}, "params.meter"),
    ({"model": "chorale", "params": {"instrument": "kazoo"}}, "params.instrument"),
    ({"model": "chorale", "params": {"colour": "blue"}}, "params.colour"),
    ({"model": "chorale", "seed": -1}, "seed"),
    ({"model": "chorale", "formats": ["aiff"]}, "formats.0"),
    ({"model": "theremin"}, "model"),
    ({"params": {"bars": 2}}, "model"),
    ({"model": "chorale", "params": {"bars": 16, "tempo": 20}}, "params.bars"),  # 193 s > max_audio_seconds
])
def test_invalid_requests_are_422_naming_the_field(client, alice, body, field):
    response = client.post("/v1/generations", json=body, headers=alice)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_parameter" and error["field"] == field, error


def test_malformed_json_is_400_and_bad_query_422(client, alice, chorale_job):
    response = client.post("/v1/generations", content=b"{not json", headers=alice | {"Content-Type":
                                                                                      "application/json"})
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_json"  # malformed syntax
    assert error_of(response)["field"] == "body"
    response = client.post("/v1/generations", content=b'{"model": "chorale"}', headers=alice | {"Content-Type":
                                                                                                "text/plain"})
    assert response.status_code == 415 and error_of(response)["field"] == "Content-Type"
    response = client.get(f"/v1/generations/{chorale_job['id']}/audio?format=aiff", headers=alice)
    assert response.status_code == 422 and error_of(response)["field"] == "format"
    response = client.get("/v1/generations?limit=0", headers=alice)
    assert response.status_code == 422 and error_of(response)["field"] == "limit"


def test_another_keys_work_does_not_exist(client, alice, bob, chorale_job):
    job_id = chorale_job["id"]
    for method, path in (("GET", f"/v1/generations/{job_id}"), ("GET", f"/v1/generations/{job_id}/audio"),
                         ("GET", f"/v1/generations/{job_id}/midi"), ("GET", f"/v1/generations/{job_id}/events"),
                         ("DELETE", f"/v1/generations/{job_id}")):
        response = client.request(method, path, headers=bob)
        assert response.status_code == 404, (method, path)
        assert error_of(response)["code"] == "not_found"
    assert job_id not in [g["id"] for g in client.get("/v1/generations", headers=bob).json()["items"]]
    assert client.get(f"/v1/generations/{job_id}", headers=alice).status_code == 200


def test_list_is_newest_first_and_paginated(client, server):
    carol = make_key(server[1], "carol")
    ids = [client.post("/v1/generations", json={"model": "folk", "params": {"bars": 1}}, headers=carol).json()["id"]
           for _ in range(3)]
    first = client.get("/v1/generations?limit=2", headers=carol).json()
    assert first["total"] == 3 and [g["id"] for g in first["items"]] == ids[::-1][:2]
    assert first["next"] == "/v1/generations?limit=2&offset=2"
    second = client.get(first["next"], headers=carol).json()
    assert [g["id"] for g in second["items"]] == ids[:1] and second["next"] is None
    for job_id in ids:
        wait_until_finished(client, job_id, carol)


def test_delete_a_finished_work_removes_it_and_its_files(client, server):
    dave = make_key(server[1], "dave")
    job_id = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 1}, "seed": 99},
                         headers=dave).json()["id"]
    job = wait_until_finished(client, job_id, dave)
    assert job["status"] == "succeeded"
    store = server[1].data_dir / "artifacts"
    before = {p.name for p in store.rglob("*.wav")}
    assert client.delete(f"/v1/generations/{job_id}", headers=dave).status_code == 204
    assert client.get(f"/v1/generations/{job_id}", headers=dave).status_code == 404
    assert client.delete(f"/v1/generations/{job_id}", headers=dave).status_code == 404
    assert len({p.name for p in store.rglob("*.wav")}) == len(before) - 1


def test_daily_quota_is_429_with_retry_after(client, server):
    frugal = make_key(server[1], "frugal", quota_seconds=10)
    ok = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 1, "tempo": 120}}, headers=frugal)
    assert ok.status_code == 202  # 2 s of music + 1 s tail
    response = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 8}}, headers=frugal)
    assert response.status_code == 429
    assert error_of(response)["code"] == "quota_exceeded" and "00:00 UTC" in error_of(response)["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 86400
    wait_until_finished(client, ok.json()["id"], frugal)


def test_request_bodies_over_the_limit_are_413(client, alice):
    big = {"model": "chorale", "prompt": "x" * 5000}
    response = client.post("/v1/generations", json=big, headers=alice)
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"

    def chunks():  # no Content-Length: counted while it streams in
        yield b'{"model": "chorale", "prompt": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    response = client.post("/v1/generations", content=chunks(), headers=alice | {"Content-Type": "application/json"})
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"


def test_unknown_routes_answer_json_errors(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = client.put("/v1/health")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, OPTIONS"


def test_metrics_count_requests_jobs_and_audio(client, chorale_job):
    text = client.get("/metrics").text
    assert 'tunesmith_http_requests_total{method="POST",route="/v1/generations",status="202"}' in text
    assert 'tunesmith_http_request_duration_seconds_bucket{le="0.5",method="GET",route="/v1/health"}' in text
    assert "tunesmith_queue_depth " in text
    assert 'tunesmith_job_duration_seconds_count{model="chorale",status="succeeded"}' in text
    audio = [line for line in text.splitlines()
             if line.startswith('tunesmith_audio_seconds_generated_total{model="chorale"}')]
    assert audio and float(audio[0].split()[-1]) >= chorale_job["audio_seconds"]


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text.lower()
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/v1/health", "/v1/models", "/v1/generations", "/v1/generations/{generation_id}",
                 "/v1/generations/{generation_id}/events", "/v1/generations/{generation_id}/audio",
                 "/v1/generations/{generation_id}/midi"):
        assert path in paths, path
    assert set(paths["/v1/generations/{generation_id}"]) == {"get", "delete"}
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
