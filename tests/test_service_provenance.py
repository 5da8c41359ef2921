"""Provenance of the service's works over HTTP (a real app on SQLite and PostgreSQL, the shipped chorale model,
FluidSynth, a Huey consumer thread): signed manifests in every file, the watermark, POST /v1/verifications,
the public key, and the originality gate with a planted copy of a training chorale.

Files are re-encoded and tampered with here with soundfile and plain byte edits, not with tunesmith's writers.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from tests.service_fixtures import client_and_keys, served
from tests.test_service_support import make_key, wait_until_finished
from tunesmith.config import Settings
from tunesmith.service import create_app

PLANTED = "bach-bwv36.8-2"  # 8 bars, in the training split of datasets/chorales
CORPUS = Path(__file__).resolve().parents[1] / "datasets" / "chorales"


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    settings = Settings(data_dir=tmp_path_factory.mktemp("provenance"), database_url=database_url, workers=1,
                        poll_seconds=0.1, requests_per_minute=10_000, preload=["chorale"], originality_tries=2)
    yield from served(settings)


client_fixture, alice_fixture, bob_fixture = client_and_keys()


@pytest.fixture(scope="module")
def work(client, alice):
    body = {"model": "chorale", "params": {"bars": 2, "key": "G major"}, "seed": 7, "formats": ["wav", "mid", "flac"]}
    response = client.post("/v1/generations", json=body, headers=alice)
    assert response.status_code == 202, response.text
    record = wait_until_finished(client, response.json()["id"], alice, timeout=120)
    assert record["status"] == "succeeded", record
    return record


def download(client, headers, work, fmt: str) -> bytes:
    link = f"/v1/generations/{work['id']}/midi" if fmt == "mid" else \
        f"/v1/generations/{work['id']}/audio?format={fmt}"
    response = client.get(link, headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def verify(client, headers, name: str, data: bytes):
    return client.post("/v1/verifications", files={"file": (name, data, "application/octet-stream")},
                       headers=headers)


def assert_payload(verdict: dict, work: dict, *, exact: bool) -> None:
    """The watermark carries the work id's first four hex digits. A read whose CRC checks out must be exactly
    that; in a piece as short as this one (about 7 s of organ) a bit or two may be misread (the CRC then says
    so), but a payload that was not embedded would differ in about 8 of 16 bits."""
    expected = int(work["id"][:4], 16)
    found = verdict["watermark_payload"]
    if verdict["watermark_payload_valid"]:
        assert found == expected, verdict
    assert bin(found ^ expected).count("1") <= (2 if exact else 3), (hex(found), hex(expected))


def wav_chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    """RIFF chunk id -> (offset of its payload, size)."""
    chunks, at = {}, 12
    while at + 8 <= len(data):
        cid, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        chunks[cid] = (at + 8, size)
        at += 8 + size + (size & 1)
    return chunks


def test_public_key_needs_no_api_key(client, work):
    response = client.get("/v1/provenance/public-key")
    assert response.status_code == 200
    key = response.json()
    public = serialization.load_pem_public_key(key["pem"].encode())
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key["raw_base64"] and hashlib.sha256(raw).hexdigest()[:16] == key["key_id"]
    assert work["provenance"]["key_id"] == key["key_id"]


def test_the_record_carries_provenance_and_originality(server, work):
    manifest = work["provenance"]["manifest"]
    card = json.loads((Path(__file__).resolve().parents[1] / "weights" / "chorale.json").read_text())
    assert (manifest["model_id"], manifest["model_version"]) == ("chorale", card["version"])
    assert manifest["weights_sha256"] == card["weights_sha256"]
    assert manifest["training_data_sha256"] == card["data"]["manifest_sha256"]
    assert manifest["seed"] == 7 and manifest["params"]["key"] == "G major" and manifest["params"]["bars"] == 2
    assert len(manifest["requester_key_sha256"]) == 64
    assert manifest["watermark_payload"] == int(work["id"][:4], 16)
    assert set(work["provenance"]["content_sha256"]) == {"wav", "mid", "flac"}
    originality = work["originality"]
    if CORPUS.is_dir():
        assert originality["status"] == "checked" and originality["closest_piece"]
        assert 0 <= originality["longest_shared_run"] <= originality["threshold"] and not originality["flagged"]
    else:
        assert originality["status"] == "unchecked" and "chorales" in originality["reason"]


@pytest.mark.parametrize("fmt", ["wav", "mid", "flac", "mp3", "ogg"])  # mp3, ogg: made (and signed) on demand
def test_every_file_of_a_work_verifies_as_valid(client, alice, work, fmt):
    data = download(client, alice, work, fmt)
    response = verify(client, alice, f"work.{fmt}", data)
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["signature"] == "valid" and verdict["key_trusted"] is True, verdict
    assert verdict["manifest"]["model_id"] == "chorale" and verdict["manifest"]["seed"] == 7
    if fmt == "mid":
        assert verdict["watermark"] == "n/a"
    else:
        assert verdict["watermark"] == "detected"
        assert_payload(verdict, work, exact=fmt in ("wav", "flac"))
    assert verdict["summary"].startswith("valid signature")
    record = client.get(f"/v1/generations/{work['id']}", headers=alice).json()
    assert record["provenance"]["content_sha256"][fmt] == verdict["manifest"]["content_sha256"]


def test_a_reencoded_file_keeps_the_watermark_but_not_the_signature(client, alice, work):
    audio, sr = sf.read(io.BytesIO(download(client, alice, work, "wav")), dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, audio, sr, format="MP3")
    verdict = verify(client, alice, "reencoded.mp3", buffer.getvalue()).json()
    assert verdict["signature"] == "unsigned", verdict
    assert verdict["watermark"] == "detected"
    assert_payload(verdict, work, exact=False)
    assert "watermark survived" in verdict["summary"]


def test_tampered_samples_or_manifest_are_tampered(client, alice, work):
    original = download(client, alice, work, "wav")
    chunks = wav_chunks(original)
    start, size = chunks[b"data"]
    samples = bytearray(original)
    middle = start + size // 2
    samples[middle:middle + 64] = bytes(64)  # silence 16 stereo frames
    verdict = verify(client, alice, "edited.wav", bytes(samples)).json()
    assert verdict["signature"] == "tampered" and "content changed" in verdict["signature_reason"]
    assert verdict["summary"].startswith("TAMPERED")
    seed = b'"seed":7'
    assert original.count(seed) >= 1
    forged = original.replace(seed, b'"seed":8')  # same length: the file stays well formed
    verdict = verify(client, alice, "forged.wav", forged).json()
    assert verdict["signature"] == "tampered" and verdict["manifest"]["seed"] == 8


def test_files_that_are_not_audio_or_midi_are_400(client, alice):
    for name, data in (("notes.txt", b"just some words"), ("empty.wav", b"")):
        response = verify(client, alice, name, data)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["field"] == "file" and name in error["message"] and "/tmp" not in error["message"]
    unsigned = io.BytesIO()
    sf.write(unsigned, np.zeros(8000, dtype=np.float32), 8000, format="WAV")
    verdict = verify(client, alice, "silence.wav", unsigned.getvalue()).json()
    assert verdict["signature"] == "unsigned" and verdict["watermark"] == "not_detected"
    assert client.post("/v1/verifications", files={"file": ("a.wav", b"x")}).status_code == 401


def planted_upload(client, headers) -> dict:
    """A training chorale, uploaded as the melody to harmonize: its soprano comes back unchanged."""
    music21 = pytest.importorskip("music21")
    source = Path(music21.__file__).parent / "corpus" / "bach" / "bwv36.8-2.mxl"
    response = client.post("/v1/uploads", files={"file": ("bwv36.8-2.mxl", source.read_bytes())}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_planted_training_chorale_is_flagged_with_its_source(client, alice):
    upload = planted_upload(client, alice)
    body = {"model": "chorale", "params": {"input": upload["id"], "harmonize": True}, "seed": 1}
    report = client.post("/v1/generations", json=body, headers=alice).json()
    record = wait_until_finished(client, report["id"], alice, timeout=120)
    assert record["status"] == "succeeded", record
    originality = record["originality"]
    if not CORPUS.is_dir():
        assert originality["status"] == "unchecked" and not originality["flagged"]
        return
    assert originality["flagged"] and originality["closest_piece"] == PLANTED
    assert originality["longest_shared_run"] > originality["threshold"]
    rejected = client.post("/v1/generations", json=body | {"originality": "reject"}, headers=alice).json()
    assert rejected["params"]["originality"] == "reject"
    record = wait_until_finished(client, rejected["id"], alice, timeout=120)
    assert record["status"] == "failed" and record["error"]["code"] == "originality_rejected"
    assert PLANTED in record["error"]["message"] and "2 tries" in record["error"]["message"]


def test_tunesmith_verify_with_server_and_locally_with_its_public_key(shipped_server, tmp_path, capsys,
                                                                      monkeypatch):
    import tunesmith.cli as cli
    from tunesmith.client import Client

    monkeypatch.delenv("TUNESMITH_SERVER", raising=False)
    live, settings = shipped_server
    key = make_key(settings, "verify-cli")["Authorization"].removeprefix("Bearer ")
    with Client(live.url, key) as sdk:
        work = sdk.generate("chorale", bars=2, seed=3)
        midi = sdk.download(work, tmp_path / "work.mid")
        assert sdk.verify(midi)["signature"] == "valid"
    with urllib.request.urlopen(f"{live.url}/v1/provenance/public-key", timeout=30) as answer:  # no API key
        pem = json.loads(answer.read())["pem"]
    assert cli.main(["verify", str(midi), "--server", live.url, "--api-key", key, "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["signature"] == "valid" and verdict["key_trusted"] is True and verdict["server"] == live.url
    assert verdict["manifest"]["seed"] == 3
    (tmp_path / "server.pem").write_text(pem)
    assert cli.main(["verify", str(midi), "--public-key", str(tmp_path / "server.pem")]) == 0
    out = capsys.readouterr().out
    assert "valid signature by a trusted key" in out and "signature: valid" in out
    assert cli.main(["verify", str(midi), "--server", live.url]) == 2  # no key
    assert "--api-key" in capsys.readouterr().err


def test_local_generate_signs_and_marks_its_outputs(tmp_path, capsys, monkeypatch):
    import tunesmith.cli as cli
    from tunesmith.provenance.signing import key_path, load_or_create_signing_key
    from tunesmith.provenance.verify import verify_file

    monkeypatch.delenv("TUNESMITH_SERVER", raising=False)
    monkeypatch.setenv("TUNESMITH_DATA_DIR", str(tmp_path / "data"))
    for name in ("local.wav", "local.mid"):
        assert cli.main(["generate", "chorale", "--bars", "2", "--seed", "5", "--json", "-o",
                         str(tmp_path / name)]) == 0
        report = json.loads(capsys.readouterr().out)
        verdict = verify_file(tmp_path / name, load_or_create_signing_key(tmp_path / "data").public_key())
        assert verdict.signature == "valid" and verdict.key_trusted, verdict.summary
        assert verdict.manifest["model_id"] == "chorale" and verdict.manifest["seed"] == 5
        assert verdict.manifest["watermark_payload"] == int(report["provenance"]["work_id"][:4], 16)
        assert verdict.watermark == ("n/a" if name.endswith(".mid") else "detected")
    assert key_path(tmp_path / "data").stat().st_mode & 0o777 == 0o600


def test_a_corpus_that_is_not_here_leaves_originality_unchecked(tmp_path):
    from tunesmith.generation.originality import OriginalityGate
    from tunesmith.symbolic.score import Note, Part, Score

    gate = OriginalityGate(tmp_path / "cache", threshold=12, tries=3)
    score = Score(parts=[Part("S", [Note(60 + i, float(i), 1.0) for i in range(8)])])
    missing = gate.check("mine", {"data": {"path": str(tmp_path / "no-such-dataset")}}, score)
    assert missing["status"] == "unchecked" and not missing["flagged"] and "no-such-dataset" in missing["reason"]
    nameless = gate.check("other", {}, score)
    assert nameless["status"] == "unchecked" and "names no training dataset" in nameless["reason"]


# ------------------------------------------------------------------ the audio gate on `notes` and `perform` works


class CopyingInstrument:
    """The neural instrument gone wrong, for the planted case: its notes are its training recordings (the one of
    the instrument, pitch and velocity asked for). Everything else is the real instrument's."""

    def __init__(self, synth, dataset) -> None:
        self.synth, self.dataset = synth, dataset
        self.copies = {(r.labels["instrument"], r.labels["pitch"], r.labels["velocity"]): r
                       for r in dataset.split("train")}

    def note(self, instrument, pitch, velocity=100, **_) -> np.ndarray:
        record = self.copies[(instrument, pitch, velocity)]
        return np.asarray(self.dataset.array("audio", record), dtype=np.float32)

    def __getattr__(self, name):
        return getattr(self.synth, name)


@pytest.fixture(scope="module")
def audio_server(tmp_path_factory):
    """A server (SQLite) whose `notes` model learned from a small notes dataset (48 notes of three instruments),
    plus `copycat`: the same model wrapped in a CopyingInstrument."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from tunesmith.data.corpora.notes import build_notes
    from tunesmith.data.dataset import Dataset

    shipped = Path(__file__).resolve().parents[1] / "weights"
    data = tmp_path_factory.mktemp("notes-data") / "notes"
    build_notes(data, instruments=["violin", "flute", "piano"], velocities=(60, 110), limit=48)
    weights = tmp_path_factory.mktemp("weights")
    card = json.loads((shipped / "notes.json").read_text())
    card["data"] = {**card["data"], "path": str(data)}
    for name in ("notes", "copycat"):
        (weights / f"{name}.json").write_text(json.dumps(card))
        (weights / f"{name}.safetensors").symlink_to(shipped / "notes.safetensors")
    for suffix in (".json", ".safetensors"):
        (weights / f"analyzer{suffix}").symlink_to(shipped / f"analyzer{suffix}")
    settings = Settings(data_dir=tmp_path_factory.mktemp("audio-gate"), workers=1, poll_seconds=0.1,
                        requests_per_minute=10_000, weights_dir=weights, preload=["notes"], originality_tries=2,
                        models={"copycat": weights / "copycat.json"})
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services
        from tunesmith.compose.notesynth import NoteSynth
        from tunesmith.generation.models import load_once

        copycat = services.catalog.get("copycat")
        load_once(copycat.card_path, lambda path: CopyingInstrument(NoteSynth.load(path), Dataset(data)), "copier")
        gate = services.queue.runner.gate.audio
        analyzer = services.catalog.analyzer.card_path
        for model in ("notes", "copycat"):  # the index is built in the background: wait (bounded) until it is ready
            assert not isinstance(gate.index(model, services.catalog.get(model).card, analyzer, wait=180), str)
        yield client, services, Dataset(data), make_key(settings, "audio")


def note_job(client, headers, model: str, *, originality: str = "report", **params) -> dict:
    body = {"model": model, "params": {"instrument": "violin", "pitch": 64, "velocity": 110, **params}, "seed": 3,
            "originality": originality}
    response = client.post("/v1/generations", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return wait_until_finished(client, response.json()["id"], headers, timeout=120)


def test_a_note_carries_its_audio_originality_report(audio_server):
    client, _, dataset, headers = audio_server
    record = note_job(client, headers, "notes")
    assert record["status"] == "succeeded", record
    report = record["originality"]
    assert report["status"] == "checked" and report["corpus"] == str(dataset.root), report
    assert report["nearest_item"] in {r.id for r in dataset.split("train")}
    assert 0.0 <= report["distance"] <= 2.0 and report["flagged"] == (report["distance"] < report["threshold"])
    assert (report["tries"], report["seeds"], report["mode"]) == (1, [3], "report")


def test_a_training_note_fed_back_is_flagged_with_its_source(audio_server):
    client, _, dataset, headers = audio_server
    source = next(r for r in dataset.split("train") if r.labels["instrument"] == "violin")
    params = {"pitch": source.labels["pitch"], "velocity": source.labels["velocity"]}
    record = note_job(client, headers, "copycat", **params)
    assert record["status"] == "succeeded", record  # "report" mode: delivered, and flagged
    report = record["originality"]
    assert report["status"] == "checked" and report["flagged"], report
    assert report["nearest_item"] == source.id and report["distance"] < 1e-3
    # the same request asking to reject: every draw is the same copy, so the job fails naming the source
    rejected = note_job(client, headers, "copycat", originality="reject", **params)
    assert rejected["params"]["originality"] == "reject"
    assert rejected["status"] == "failed" and rejected["error"]["code"] == "originality_rejected", rejected
    assert source.id in rejected["error"]["message"] and "2 tries" in rejected["error"]["message"]


def test_a_performance_says_why_it_is_not_checked(audio_server):
    from tunesmith.symbolic.io import write_midi
    from tunesmith.symbolic.score import Note, Part, Score

    client, _, _, headers = audio_server
    midi = Path(client.app.state.services.settings.data_dir) / "three.mid"
    write_midi(Score(parts=[Part("melody", [Note(60 + 2 * i, float(i), 1.0) for i in range(3)])]), midi)
    upload = client.post("/v1/uploads", files={"file": ("three.mid", midi.read_bytes())}, headers=headers)
    assert upload.status_code == 201, upload.text
    body = {"model": "perform", "params": {"input": upload.json()["id"], "instrument": "violin"}, "seed": 1}
    response = client.post("/v1/generations", json=body, headers=headers)
    assert response.status_code == 202, response.text
    record = wait_until_finished(client, response.json()["id"], headers, timeout=120)
    assert record["status"] == "succeeded", record
    report = record["originality"]
    assert report["status"] == "not_applicable" and not report["flagged"] and "uploaded score" in report["reason"]


def test_an_audio_index_that_cannot_be_built_or_is_not_ready_leaves_the_note_unchecked(audio_server, tmp_path):
    from tunesmith.generation.originality import AudioOriginalityGate

    _, services, dataset, _ = audio_server
    analyzer = services.catalog.analyzer.card_path
    note = np.zeros(16000, dtype=np.float32)
    gate = AudioOriginalityGate(tmp_path / "cache")
    missing = gate.check("mine", {"data": {"path": str(tmp_path / "no-such-notes")}}, analyzer, note, 16000)
    if missing["reason"].startswith("the index of the training notes is still being built"):  # the thread is slow
        missing = gate.check("mine", {"data": {"path": str(tmp_path / "no-such-notes")}}, analyzer, note, 16000,
                             wait=30)
    assert missing["status"] == "unchecked" and not missing["flagged"] and "no-such-notes" in missing["reason"]
    no_analyzer = gate.check("other", {"data": {"path": str(dataset.root)}}, None, note, 16000, wait=30)
    assert no_analyzer["status"] == "unchecked" and "no analyzer" in no_analyzer["reason"]
    building = gate.check("fresh", {"data": {"path": str(dataset.root)}}, analyzer, note, 16000)  # new cache dir
    assert building["status"] == "unchecked" and "still being built" in building["reason"]
    assert gate.check("fresh", {"data": {"path": str(dataset.root)}}, analyzer, note, 16000, wait=120)["status"] \
        == "checked"
