"""Uploads over HTTP (a real app on SQLite and PostgreSQL, a Huey consumer thread, the shipped models, FluidSynth)
and the work images.

The melodies are written with mido here, not with tunesmith's own writer, so a reader bug cannot hide itself.
"""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest
from PIL import Image

from tests.service_fixtures import client_and_keys, error_of, served
from tests.test_service_support import wait_until_finished
from tunesmith.config import Settings

MAX_UPLOAD = 64 * 1024
TPB = 480
# two bars of 4/4 in the soprano's range (MIDI 60-81): (pitch, start beat, beats)
MELODY = [(67, 0, 1), (69, 1, 1), (71, 2, 1), (72, 3, 1), (74, 4, 2), (72, 6, 1), (71, 7, 1)]
ABC = "X:1\nT:Upload test\nM:3/4\nL:1/4\nQ:1/4=90\nK:D\nD E F | G A B | A3 |]\n"


def midi_bytes(notes, *, tempo=100.0, key=None, channel=0, meta_only=False) -> bytes:
    """A type-1 MIDI file of one track with ``notes`` (pitch, start beat, beats)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0),
                           mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    if key:
        meta.append(mido.MetaMessage("key_signature", key=key, time=0))
    mid.tracks.append(meta)
    if not meta_only:
        events = sorted([(round(s * TPB), 1, p) for p, s, _ in notes] + [(round((s + d) * TPB), 0, p)
                                                                         for p, s, d in notes])
        track, now = mido.MidiTrack(), 0
        for tick, on, pitch in events:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, note=pitch, velocity=80 if on else 0, channel=channel, time=tick - now))
            now = tick
        mid.tracks.append(track)
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def notes_of_track(data: bytes, name: str) -> list[tuple[int, float, float]]:
    """(pitch, start beat, beats) of the track called ``name`` in a MIDI file, read with mido."""
    mid = mido.MidiFile(file=io.BytesIO(data))
    for track in mid.tracks:
        if track.name.strip() != name:
            continue
        now, open_, notes = 0, {}, []
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                open_[msg.note] = now
            elif msg.type in ("note_on", "note_off") and msg.note in open_:
                start = open_.pop(msg.note)
                notes.append((msg.note, start / mid.ticks_per_beat, (now - start) / mid.ticks_per_beat))
        return sorted(notes, key=lambda n: n[1])
    raise AssertionError(f"no track {name!r} in {[t.name for t in mid.tracks]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    """A server with the shipped models on SQLite, then on PostgreSQL (conftest's `database_url`)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("uploads"), database_url=database_url, workers=1,
                        poll_seconds=0.1, requests_per_minute=10_000, max_upload_bytes=MAX_UPLOAD, max_bars=16)
    yield from served(settings)


client_fixture, alice_fixture, bob_fixture = client_and_keys()


def upload(client, headers, name: str, data: bytes, content_type: str = "application/octet-stream"):
    return client.post("/v1/uploads", files={"file": (name, data, content_type)}, headers=headers)


@pytest.fixture(scope="module")
def melody(client, alice):
    response = upload(client, alice, "melody.mid", midi_bytes(MELODY, key="G"), "audio/midi")
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_answers_what_was_read(client, alice, melody):
    assert set(melody) == {"id", "filename", "format", "parts", "notes", "bars", "key", "created"}
    assert melody["filename"] == "melody.mid" and melody["format"] == "midi"
    assert (melody["parts"], melody["notes"], melody["bars"], melody["key"]) == (1, len(MELODY), 2, "G major")
    again = client.get(f"/v1/uploads/{melody['id']}", headers=alice)
    assert again.status_code == 200 and again.json() == melody


def test_abc_and_musicxml_uploads(client, alice, tmp_path):
    abc = upload(client, alice, "tune.abc", ABC.encode(), "text/plain")
    assert abc.status_code == 201, abc.text
    assert {k: abc.json()[k] for k in ("format", "parts", "notes", "bars", "key")} == {
        "format": "abc", "parts": 1, "notes": 7, "bars": 3, "key": "D major"}
    from music21 import converter  # an independent writer of MusicXML

    xml_path = converter.parse(ABC, format="abc").write("musicxml", fp=tmp_path / "tune.musicxml")
    xml = upload(client, alice, "tune.musicxml", xml_path.read_bytes(), "application/xml")
    assert xml.status_code == 201, xml.text
    assert {k: xml.json()[k] for k in ("format", "notes", "bars")} == {"format": "musicxml", "notes": 7, "bars": 3}
    unnamed = upload(client, alice, "melody", midi_bytes(MELODY))  # no extension: the type comes from the bytes
    assert unnamed.status_code == 201 and unnamed.json()["format"] == "midi"


@pytest.mark.parametrize(("name", "data", "needle"), [
    ("noise.mid", bytes(range(256)) * 4, "not a readable MIDI file"),
    ("notes.txt", b"just some words, not music", "is not a score this server reads"),
    ("empty.mid", b"", "empty"),
    ("silent.mid", midi_bytes([], meta_only=True), "no notes"),
    ("drums.mid", midi_bytes([(36, 0, 1), (38, 1, 1)], channel=9), "no pitched notes"),
    ("broken.musicxml", b"<?xml version='1.0'?><score-partwise><part id='P1'>", "could not be"),
])
def test_unreadable_files_are_400_on_the_field_file(client, alice, name, data, needle):
    response = upload(client, alice, name, data)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["field"] == "file" and needle in error["message"], error


def test_upload_without_a_file_is_422(client, alice):
    response = client.post("/v1/uploads", files={"other": ("x.txt", b"x")}, headers=alice)
    assert response.status_code == 422 and error_of(response)["field"] == "file"
    response = client.post("/v1/uploads", data={"other": "x"}, headers=alice)  # a form that cannot hold a file
    assert response.status_code == 415 and error_of(response)["field"] == "Content-Type"


def test_upload_over_the_size_limit_is_413(client, alice):
    big = midi_bytes(MELODY) + b"\0" * MAX_UPLOAD
    response = upload(client, alice, "big.mid", big)
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"


def test_uploads_need_a_key_and_belong_to_it(client, alice, bob, melody):
    assert upload(client, {}, "melody.mid", midi_bytes(MELODY)).status_code == 401
    response = client.get(f"/v1/uploads/{melody['id']}", headers=bob)
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    body = {"model": "chorale", "params": {"input": melody["id"], "harmonize": True}}
    response = client.post("/v1/generations", json=body, headers=bob)
    assert response.status_code == 422 and error_of(response)["field"] == "params.input"


@pytest.mark.parametrize(("params", "model", "field"), [
    ({"input": "no-such-upload"}, "chorale", "params.input"),
    ({"harmonize": True}, "chorale", "params.harmonize"),
    ({"harmonize": True, "input": "MELODY"}, "folk", "params.harmonize"),
    ({"harmonize": "sometimes", "input": "MELODY"}, "chorale", "params.harmonize"),
])
def test_bad_input_params_are_422(client, alice, melody, params, model, field):
    params = {k: melody["id"] if v == "MELODY" else v for k, v in params.items()}
    response = client.post("/v1/generations", json={"model": model, "params": params}, headers=alice)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field


def test_harmonized_soprano_is_the_melody_note_for_note(client, alice, melody):
    body = {"model": "chorale", "params": {"input": melody["id"], "harmonize": True}, "seed": 5}
    created = client.post("/v1/generations", json=body, headers=alice)
    assert created.status_code == 202, created.text
    assert created.json()["params"]["input"] == melody["id"] and created.json()["params"]["harmonize"] is True
    assert created.json()["params"]["tempo"] == 100.0 and created.json()["params"]["key"] is None  # from the file
    job = wait_until_finished(client, created.json()["id"], alice, timeout=90)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["mode"] == "harmonize" and job["result"]["bars"] == 2
    midi = client.get(job["links"]["midi"], headers=alice).content
    soprano = notes_of_track(midi, "Soprano")
    assert soprano == [(p, float(s), float(d)) for p, s, d in MELODY]
    for voice in ("Alto", "Tenor", "Bass"):
        assert notes_of_track(midi, voice), voice


def test_continuation_keeps_the_uploaded_opening(client, alice):
    opening = MELODY[:4]  # one bar
    uploaded = upload(client, alice, "opening.mid", midi_bytes(opening)).json()
    body = {"model": "folk", "params": {"input": uploaded["id"], "bars": 2}, "seed": 2}
    created = client.post("/v1/generations", json=body, headers=alice)
    assert created.status_code == 202, created.text
    job = wait_until_finished(client, created.json()["id"], alice, timeout=90)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["mode"] == "continue" and job["result"]["bars"] == 3
    assert job["audio_seconds"] == pytest.approx(3 * 4 * 60 / 100 + 1.0, abs=0.1)  # at the file's tempo
    notes = notes_of_track(client.get(job["links"]["midi"], headers=alice).content, "Melody")
    assert [(p, s) for p, s, _ in notes[:4]] == [(p, float(s)) for p, s, _ in opening]
    assert [d for _, _, d in notes[:3]] == [float(d) for _, _, d in opening[:3]]  # the last may be held on
    assert any(start >= 4 for _, start, _ in notes)  # and it goes on


def png_of(response) -> np.ndarray:
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("L"), dtype=float)


def test_work_images_and_their_409_before_success(client, alice):
    created = client.post("/v1/generations", json={"model": "chorale", "params": {"bars": 1}, "seed": 1},
                          headers=alice).json()
    links = created["links"]
    assert links["spectrogram"] == f"/v1/generations/{created['id']}/spectrogram"
    assert links["pianoroll"] == f"/v1/generations/{created['id']}/pianoroll"
    job = wait_until_finished(client, created["id"], alice)
    assert set(job["result"]) >= {"key", "bars"} and job["status"] == "succeeded"
    midi = mido.MidiFile(file=io.BytesIO(client.get(links["midi"], headers=alice).content))
    assert midi.tracks[0].name == f"Tunesmith chorale in {job['result']['key']}"  # no server path in the file
    for kind in ("spectrogram", "pianoroll"):
        pixels = png_of(client.get(links[kind], headers=alice))
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 600 and pixels.std() > 10  # a picture, not a blank
    cancelled = client.post("/v1/generations", json={"model": "chorale", "params": {"bars": 4}}, headers=alice).json()
    client.delete(f"/v1/generations/{cancelled['id']}", headers=alice)
    for kind in ("spectrogram", "pianoroll"):
        response = client.get(cancelled["links"][kind], headers=alice)
        assert response.status_code == 409 and error_of(response)["code"] == "conflict"


def test_deleting_a_work_removes_its_images(client, server, alice):
    job_id = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 1}, "seed": 77},
                         headers=alice).json()["id"]
    assert wait_until_finished(client, job_id, alice)["status"] == "succeeded"
    store = server[1].data_dir / "artifacts"
    before = len(list(store.rglob("*.png")))
    assert client.delete(f"/v1/generations/{job_id}", headers=alice).status_code == 204
    assert len(list(store.rglob("*.png"))) == before - 2


def test_a_work_without_images_gets_them_drawn_on_request(client, server, alice):
    """Works made before the worker drew pictures: the routes draw them from the stored WAV and MIDI."""
    from tunesmith.service import crud
    from tunesmith.service.db import Database

    job_id = client.post("/v1/generations", json={"model": "folk", "params": {"bars": 1}, "seed": 78},
                         headers=alice).json()["id"]
    job = wait_until_finished(client, job_id, alice)
    assert job["status"] == "succeeded"
    db = Database(server[1].database_url)
    try:
        with db.session() as session:
            record = crud.get_generation(session, job_id, key_id=None)
            drawn = {kind: record.artifacts.pop(kind) for kind in ("spectrogram", "pianoroll")}
            record.artifacts = dict(record.artifacts)  # an older work: audio and MIDI only
        for kind in drawn:
            pixels = png_of(client.get(job["links"][kind], headers=alice))
            assert pixels.std() > 10
        with db.session() as session:
            artifacts = crud.get_generation(session, job_id, key_id=None).artifacts
        assert {kind: artifacts[kind]["sha256"] for kind in drawn} == {k: v["sha256"] for k, v in drawn.items()}
    finally:
        db.close()
