"""POST /v1/analyses over HTTP: a real app on SQLite and PostgreSQL with the shipped analyzer, FluidSynth renders
the recordings, a Huey consumer thread runs the long ones.

The recordings are scores in a known key and tempo rendered with FluidSynth, written with soundfile.
"""

from __future__ import annotations

import io
import json
import math
import time

import numpy as np
import pytest
import soundfile as sf

from tests.service_fixtures import client_and_keys, error_of, served
from tests.test_service_support import make_key
from tunesmith.config import Settings

SR = 22050
SYNC_SECONDS = 8.0
MAX_SECONDS = 30.0
MAX_UPLOAD = 1_500_000
TEMPO = 120.0
# G major: a tonic arpeggio and scale in quarter notes (one beat = 0.5 s at 120 BPM)
G_MAJOR = [67, 71, 74, 79, 74, 71, 67, 66, 67, 69, 71, 72, 74, 72, 71, 69, 67, 62, 67, 71, 74, 71, 67, 67]


def rendered(pitches: list[int], *, seconds: float | None = None) -> bytes:
    """A WAV of ``pitches`` as quarter notes at TEMPO played on a piano (FluidSynth), cut to ``seconds``."""
    from tunesmith.symbolic.render import get_renderer
    from tunesmith.symbolic.score import Note, Part, Score

    notes = [Note(p, float(i), 1.0, 90) for i, p in enumerate(pitches)]
    audio = get_renderer(SR).render(Score(parts=[Part("Piano", notes, program=0)], tempo=TEMPO, key=None))
    mono = audio.mean(axis=0)
    if seconds is not None:
        mono = mono[: round(seconds * SR)]
    buffer = io.BytesIO()
    sf.write(buffer, mono, SR, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    """A server with the shipped analyzer (no composers) on SQLite, then on PostgreSQL."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    settings = Settings(data_dir=tmp_path_factory.mktemp("analyses"), database_url=database_url, workers=1,
                        poll_seconds=0.1, requests_per_minute=10_000, preload=["analyzer"],
                        analysis_sync_seconds=SYNC_SECONDS, max_analysis_seconds=MAX_SECONDS,
                        max_upload_bytes=MAX_UPLOAD)
    for client, _ in served(settings):
        if "analyzer" not in client.get("/v1/health").json()["models"]:
            pytest.fail("the shipped analyzer (weights/analyzer.json) is not served")
        yield client, settings


client_fixture, alice_fixture, bob_fixture = client_and_keys()


def analyze(client, headers, name: str, data: bytes):
    return client.post("/v1/analyses", files={"file": (name, data, "application/octet-stream")}, headers=headers)


@pytest.fixture(scope="module")
def short(client, alice):
    response = analyze(client, alice, "g-major.wav", rendered(G_MAJOR[:14]))  # 14 beats: 7 s + the tail
    assert response.status_code == 200, response.text
    return response.json()


def test_health_lists_the_loaded_analyzer(client):
    analyzer = client.get("/v1/health").json()["models"]["analyzer"]
    assert analyzer["loaded"] is True and analyzer["kind"] == "analyzer"


def test_a_short_recording_is_analyzed_in_the_request(client, alice, short):
    assert short["status"] == "succeeded" and short["progress"] == 1.0
    assert short["filename"] == "g-major.wav" and short["format"] == "wav"
    result = short["result"]
    assert result["file"] == "g-major.wav" and result["model"]["id"] == "analyzer"
    assert result["key"]["name"] == "G major"
    bpm = result["tempo"]["bpm"]
    octaves = math.log2(bpm / TEMPO)  # a beat tracker may lock on to half or double time
    assert abs(octaves - round(octaves)) < 0.06, bpm
    assert result["melody"] and {n["pitch"] for n in result["melody"]} <= set(range(60, 84))
    again = client.get(f"/v1/analyses/{short['id']}", headers=alice)
    assert again.status_code == 200 and again.json() == short


def test_another_key_does_not_see_an_analysis(client, bob, short):
    response = client.get(f"/v1/analyses/{short['id']}", headers=bob)
    assert response.status_code == 404 and error_of(response)["field"] == "id"
    assert client.get(f"/v1/analyses/{short['id']}").status_code == 401


def test_a_long_recording_becomes_a_job(client, alice):
    data = rendered(G_MAJOR, seconds=SYNC_SECONDS + 2)
    response = analyze(client, alice, "long.wav", data)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running") and job["result"] is None
    assert response.headers["location"] == job["links"]["self"]
    deadline = time.monotonic() + 60
    while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(job["links"]["self"], headers=alice).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["key"]["name"] == "G major" and job["result"]["tempo"] is not None
    assert abs(job["result"]["duration"] - (SYNC_SECONDS + 2)) < 0.05
    with client.stream("GET", job["links"]["events"], headers=alice) as events:
        body = "".join(events.iter_text())
    assert "event: done" in body and '"status":"succeeded"' in body
    metrics = client.get("/metrics").text
    assert 'tunesmith_analyses_total{mode="job",status="succeeded"}' in metrics
    assert 'tunesmith_analyses_total{mode="request",status="succeeded"}' in metrics


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("notes.txt", b"these are not the droids you are looking for" * 40, "not audio"),
    ("cut.wav", None, "truncated"),
    ("noise.mp3", bytes(range(256)) * 8, ""),
    ("empty.wav", b"", "empty"),
])
def test_a_file_that_is_not_audio_is_400_on_file(client, alice, name, data, reason):
    if data is None:  # a real WAV cut in the middle of its samples
        data = rendered(G_MAJOR[:4])[:20_000]
    response = analyze(client, alice, name, data)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["field"] == "file" and reason in error["message"] and name in error["message"]
    assert "analysis-inputs" not in error["message"]  # the server's paths are not shown


def test_too_big_and_too_long_are_413(client, alice):
    big = analyze(client, alice, "big.wav", b"RIFF" + bytes(MAX_UPLOAD + 10))
    assert big.status_code == 413
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(round((MAX_SECONDS + 5) * 8000), dtype=np.float32), 8000, format="WAV",
             subtype="PCM_16")  # small in bytes, long in seconds
    long = analyze(client, alice, "long-silence.wav", buffer.getvalue())
    assert long.status_code == 413
    error = error_of(long)
    assert error["field"] == "file" and f"{MAX_SECONDS:g} s" in error["message"]


def test_tunesmith_analyze_with_server(shipped_server, tmp_path, capsys, monkeypatch):
    import mido

    import tunesmith.cli as cli

    monkeypatch.delenv("TUNESMITH_SERVER", raising=False)
    live, settings = shipped_server
    key = make_key(settings, "analyze-cli")["Authorization"].removeprefix("Bearer ")
    recording = tmp_path / "g major.wav"
    recording.write_bytes(rendered(G_MAJOR[:14]))
    args = ["analyze", str(recording), "--server", live.url, "--api-key", key]
    assert cli.main([*args, "--json", "--midi", str(tmp_path / "melody.mid")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["server"] == live.url and report["file"] == str(recording)
    assert report["key"]["name"] == "G major" and report["tempo"] is not None
    notes = [m for t in mido.MidiFile(tmp_path / "melody.mid").tracks for m in t if m.type == "note_on" and m.velocity]
    assert len(notes) == len(report["melody"]) > 0
    assert cli.main(args) == 0
    assert "key: G major" in capsys.readouterr().out
    assert cli.main([*args, "--checkpoint", "runs/x"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
