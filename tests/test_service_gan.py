"""The neural instrument over HTTP: `notes` (one note) and `perform` (an uploaded score), on SQLite and PostgreSQL.

A real app with a Huey consumer thread and the shipped `notes` GAN. The note the service writes is compared with
the one the facade plays directly (same seed): the service must not change the sound beyond its watermark.
"""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest
import soundfile as sf
import torch
from fastapi.testclient import TestClient

from tests.test_service_studio import browser, open_studio, page, secret_of  # noqa: F401 (fixtures)
from tests.test_service_support import make_key, wait_until_finished
from tests.test_service_uploads import error_of, midi_bytes, upload
from tunesmith.config import Settings
from tunesmith.service import create_app
from tunesmith.service.generations.tasks import SAMPLE_RATE

NOTE = {"instrument": "violin", "pitch": 64, "velocity": 100, "duration": 1.0, "morph_to": "flute", "morph": 0.5}
SMALL_PIECE = [(60, 0, 1), (64, 1, 1), (67, 2, 2)]  # (pitch, start beat, beats) at 120 BPM: 2 s


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    torch.set_num_threads(1)
    settings = Settings(data_dir=tmp_path_factory.mktemp("gan"), database_url=database_url, workers=1,
                        poll_seconds=0.1, requests_per_minute=10_000, preload=["notes", "perform"])
    with TestClient(create_app(settings)) as client:
        yield client, settings


@pytest.fixture(scope="module")
def client(server):
    return server[0]


@pytest.fixture(scope="module")
def alice(server):
    return make_key(server[1], "alice")


@pytest.fixture(scope="module")
def note_job(client, alice):
    created = client.post("/v1/generations", json={"model": "notes", "params": NOTE, "seed": 1,
                                                   "formats": ["wav", "flac"]}, headers=alice)
    assert created.status_code == 202, created.text
    job = wait_until_finished(client, created.json()["id"], alice)
    assert job["status"] == "succeeded", job
    return job


def test_models_list_the_neural_instrument_with_ranges(client):
    models = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
    notes, perform = models["notes"], models["perform"]
    assert set(notes["params"]) == {"instrument", "pitch", "velocity", "duration", "morph_to", "morph", "seed"}
    assert "violin" in notes["params"]["instrument"]["enum"] and "mid" not in notes["formats"]
    assert notes["params"]["duration"]["minimum"] == 0.05 and notes["params"]["duration"]["maximum"] == 30.0
    assert set(perform["params"]) == {"input", "instrument", "drums", "seed"}
    assert set(perform["params"]["drums"]["enum"]) == {"neural", "notes"}
    assert not any(name.startswith("drums") for name in perform["params"]["instrument"]["enum"])


def test_note_job_writes_the_facades_note_signed(client, alice, note_job):
    from tunesmith.audio.dsp import resample
    from tunesmith.compose.notesynth import MAX_DURATION, MIN_DURATION
    from tunesmith.families.instrument import NOTE_DURATION_RANGE
    from tunesmith.generation.pipeline import load_model

    assert NOTE_DURATION_RANGE == (MIN_DURATION, MAX_DURATION)  # the service's limits are the facade's
    data = client.get(note_job["links"]["audio"]["wav"], headers=alice).content
    info = sf.info(io.BytesIO(data))
    assert info.subtype == "PCM_16" and info.samplerate == SAMPLE_RATE and info.channels == 1
    served, _ = sf.read(io.BytesIO(data), dtype="float32")
    assert 1.45 <= len(served) / SAMPLE_RATE <= 1.55  # held 1.0 s, then the 0.5 s release
    synth = load_model(client.app.state.services.catalog.get("notes"))
    direct = synth.note("violin", 64, velocity=100, duration=1.0, seed=1, morph_to="flute", morph=0.5)
    direct = resample(direct, orig_sr=16000, target_sr=SAMPLE_RATE)
    assert len(direct) == len(served)
    assert np.corrcoef(direct, served)[0, 1] > 0.99  # the same note; only the watermark and 16-bit added
    verdict = client.post("/v1/verifications", files={"file": ("note.wav", data, "audio/wav")},
                          headers=alice).json()
    assert verdict["signature"] == "valid" and verdict["watermark"] == "detected", verdict
    assert verdict["manifest"]["model_id"] == "notes" and verdict["manifest"]["seed"] == 1
    assert client.get(note_job["links"]["audio"]["flac"], headers=alice).status_code == 200
    assert client.get(note_job["links"]["spectrogram"], headers=alice).headers["content-type"] == "image/png"
    for link in (note_job["links"]["pianoroll"], note_job["links"]["midi"]):  # audio only: no score
        response = client.get(link, headers=alice)
        assert response.status_code == 409 and error_of(response)["field"] == "id"


@pytest.mark.parametrize(("params", "extra", "field"), [
    ({"instrument": "banjo_of_doom"}, {}, "params.instrument"),
    ({"instrument": "violin", "pitch": 30}, {}, "params.pitch"),
    ({"instrument": "violin", "pitch": 64, "duration": 31.0}, {}, "params.duration"),
    ({"instrument": "violin", "pitch": 64, "duration": 0.01}, {}, "params.duration"),
    ({"instrument": "violin", "pitch": 64, "morph": 0.5}, {}, "params.morph"),
    ({"instrument": "violin", "pitch": 64, "bars": 4}, {}, "params.bars"),
    ({"instrument": "violin", "pitch": 64}, {"formats": ["wav", "mid"]}, "formats"),
])
def test_bad_note_requests_are_422_on_the_field(client, alice, params, extra, field):
    response = client.post("/v1/generations", json={"model": "notes", "params": params, **extra}, headers=alice)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field


def test_perform_needs_an_input(client, alice):
    response = client.post("/v1/generations", json={"model": "perform", "params": {"instrument": "cello"}},
                           headers=alice)
    assert response.status_code == 422 and error_of(response)["field"] == "params.input"


def test_perform_plays_an_uploaded_piece(client, alice):
    uploaded = upload(client, alice, "small.mid", midi_bytes(SMALL_PIECE, tempo=120.0), "audio/midi")
    assert uploaded.status_code == 201, uploaded.text
    created = client.post("/v1/generations", json={"model": "perform", "seed": 3, "params": {
        "input": uploaded.json()["id"], "instrument": "cello"}}, headers=alice)
    assert created.status_code == 202, created.text
    job = wait_until_finished(client, created.json()["id"], alice)
    assert job["status"] == "succeeded" and job["result"]["n_notes"] == 3, job
    audio, sr = sf.read(io.BytesIO(client.get(job["links"]["audio"]["wav"], headers=alice).content))
    assert 2.0 <= len(audio) / sr <= 3.0 and np.abs(audio).max() > 0.01  # 2 s of notes plus the last release
    midi = client.get(job["links"]["midi"], headers=alice)
    assert midi.status_code == 200 and midi.content[:4] == b"MThd"
    played = mido.MidiFile(file=io.BytesIO(midi.content))
    programs = {m.program for t in played.tracks for m in t if m.type == "program_change"}
    assert programs == {42}  # the cello's General MIDI program: the piece as performed
    pitches = sorted(m.note for t in played.tracks for m in t if m.type == "note_on" and m.velocity > 0)
    assert pitches == sorted(p for p, _, _ in SMALL_PIECE)


def test_the_studio_builds_the_notes_form_and_plays_the_note(shipped_server, page):  # noqa: F811
    server, settings = shipped_server
    open_studio(page, server, secret_of(make_key(settings, "studio-notes")))
    page.select_option("#model", "notes")
    page.wait_for_selector("#param-pitch")
    assert page.locator("#param-bars").count() == 0  # no bars or key for a single note
    assert page.get_attribute("#param-pitch", "max") == "127" and page.get_attribute("#param-duration", "max") == "30"
    page.select_option("#param-instrument", "violin")
    page.fill("#param-pitch", "30")  # below the violin: the server's 422 shows next to the field
    page.click("#generate")
    page.wait_for_function("document.querySelector('[data-error-for=\"params.pitch\"]').textContent.length > 0")
    page.fill("#param-pitch", "64")
    page.fill("#param-duration", "0.5")
    page.fill("#param-seed", "5")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#result').dataset.status === 'succeeded' && "
                           "document.querySelector('#player').src.startsWith('blob:') && "
                           "document.querySelector('#spectrogram').src.startsWith('blob:')", timeout=60_000)
    assert page.locator("#pianoroll").is_hidden() and page.locator("#download-mid").is_hidden()
    assert "Pitch" in page.text_content("#result-details")
    assert [p for p in page.problems if "422" not in p] == [], page.problems  # the one 422 was asked for
