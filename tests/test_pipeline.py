"""The generation pipeline for every family of the registry, on tiny debug models (seconds, no shipped weights):
each served model resolves its defaults, generates, renders, is marked and signed, and verifies; the CLI and a
server run the same requests."""

from __future__ import annotations

import json

import pytest

from tests.tiny import tiny_weights
from tunesmith.families import Resolving
from tunesmith.generation.catalog import load_catalog
from tunesmith.generation.pipeline import SAMPLE_RATE, deliver, make_work
from tunesmith.generation.signing import Stamper, new_work_id, work_payload
from tunesmith.provenance.verify import verify_file
from tunesmith.symbolic.io import write_midi
from tunesmith.symbolic.score import Note, Part, Score


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_weights(tmp_path_factory.mktemp("tiny-weights"))


@pytest.fixture(scope="module")
def melody():
    return Score(parts=[Part("m", [Note(60 + (i % 5), i * 1.0, 1.0, 90) for i in range(8)], program=73)])


def resolved(entry, melody, **explicit):
    from tunesmith.families import InputFacts

    upload = InputFacts(id="melody", filename="m.mid", meter="4/4", tempo=120.0, bars=2) \
        if entry.family.input_needed else None
    return entry.family.resolve(Resolving(model_id=entry.id, card=entry.card, explicit=explicit, from_prompt={},
                                          notes=[], seed=5, upload=upload, max_bars=16))


def test_every_served_model_makes_a_signed_marked_work(weights, melody, tmp_path):
    catalog = load_catalog(weights)
    assert set(catalog.models) == {"chorale", "folk", "notes", "perform"} and catalog.analyzer is not None
    stamper = Stamper(tmp_path / "key")
    explicit = {"notes": {"instrument": "violin", "pitch": 64, "duration": 0.3}, "chorale": {"bars": 2},
                "folk": {"bars": 2}, "perform": {"instrument": "flute"}}
    for model_id, entry in catalog.models.items():
        params = resolved(entry, melody, **explicit[model_id])
        made = make_work(entry, params, source=melody if entry.family.input_needed else None)
        assert made.audio is not None and made.audio.shape[0] in (1, 2) and made.audio.shape[1] > SAMPLE_RATE // 4
        formats = ["wav"] + ([] if entry.family.audio_only else ["mid"])
        files = {fmt: tmp_path / f"{model_id}.{fmt}" for fmt in formats}
        work_id = new_work_id()
        record = deliver(made, entry, files, payload=work_payload(work_id), stamper=stamper)
        assert set(record["content_sha256"]) == set(formats)
        for fmt, path in files.items():
            verdict = verify_file(path, stamper.key.public_key())
            assert verdict.signature == "valid" and verdict.manifest["model_id"] == model_id, (model_id, fmt)
            assert verdict.manifest["seed"] == 5
            if fmt == "wav":
                assert verdict.watermark == "detected", (model_id, verdict.summary)


def test_the_cli_and_a_server_run_the_tiny_models(weights, melody, tmp_path, monkeypatch, capsys):
    import httpx2 as httpx

    from tests.service_fixtures import live_server
    from tests.test_service_support import make_key, wait_until_finished
    from tunesmith.cli import main
    from tunesmith.config import Settings

    monkeypatch.setenv("TUNESMITH_DATA_DIR", str(tmp_path / "local"))
    midi = write_midi(melody, tmp_path / "melody.mid")
    runs = {"chorale": ["--bars", "2"], "folk": ["--bars", "2", "--key", "G major"],
            "notes": ["--instrument", "violin", "--pitch", "64", "--duration", "0.3"],
            "perform": ["--instrument", "flute", "--input", str(midi)]}
    for model_id, options in runs.items():
        out = tmp_path / f"{model_id}.wav"
        card = weights / f"{'notes' if model_id == 'perform' else model_id}.json"
        assert main(["generate", model_id, "--checkpoint", str(card), *options, "--seed", "2", "--json",
                     "-o", str(out)]) == 0, model_id
        report = json.loads(capsys.readouterr().out)
        assert report["model"] == model_id and report["seconds_of_audio"] > 0.2 and out.stat().st_size > 10_000

    settings = Settings(data_dir=tmp_path / "server", weights_dir=weights, workers=1, poll_seconds=0.05,
                        requests_per_minute=10_000)
    headers = make_key(settings, "tiny")
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        cards = {c["id"]: c for c in http.get("/v1/models").json()["models"]}
        assert set(cards) == set(runs) and cards["notes"]["params"]["pitch"]["maximum"] == 127
        upload = http.post("/v1/uploads", headers=headers, files={"file": ("m.mid", midi.read_bytes())}).json()
        bodies = {"chorale": {"bars": 2}, "folk": {"bars": 2}, "notes": {"instrument": "violin", "pitch": 64},
                  "perform": {"instrument": "flute", "input": upload["id"]}}
        jobs = {m: http.post("/v1/generations", headers=headers, json={"model": m, "params": p, "seed": 2}).json()
                for m, p in bodies.items()}
        for model_id, job in jobs.items():
            record = wait_until_finished(http, job["id"], headers)
            assert record["status"] == "succeeded", (model_id, record)
            assert record["provenance"]["manifest"]["model_id"] == model_id


def test_stems_locally_and_from_a_server(weights, melody, tmp_path, monkeypatch, capsys):
    """A work's tracks as separate WAVs: each signed and marked, and together they make the mix."""
    import io
    import zipfile

    import httpx2 as httpx
    import numpy as np
    import soundfile as sf

    from tests.service_fixtures import live_server
    from tests.test_service_support import make_key, wait_until_finished
    from tunesmith.cli import main
    from tunesmith.config import Settings

    monkeypatch.setenv("TUNESMITH_DATA_DIR", str(tmp_path / "local"))
    out, stems, midi = tmp_path / "c.wav", tmp_path / "stems", tmp_path / "c.mid"
    assert main(["generate", "chorale", "--checkpoint", str(weights / "chorale.json"), "--bars", "2", "--seed", "1",
                 "-o", str(out), "--stems", str(stems), "--midi", str(midi)]) == 0
    tracks = sorted(p.stem for p in stems.glob("*.wav"))
    assert len(tracks) == 4 and midi.read_bytes()[:4] == b"MThd"
    mix, _ = sf.read(out)
    total = sum(sf.read(stems / f"{t}.wav")[0] for t in tracks)
    assert np.abs(mix - total).max() < 0.02 and np.abs(mix).max() > 0.01  # the stems add up to the mix
    assert verify_file(stems / f"{tracks[0]}.wav").watermark == "detected"
    assert main(["generate", "notes", "--checkpoint", str(weights / "notes.json"), "--instrument", "violin",
                 "--pitch", "64", "-o", str(tmp_path / "n.wav"), "--stems", str(tmp_path / "none")]) == 2
    capsys.readouterr()

    settings = Settings(data_dir=tmp_path / "server", weights_dir=weights, workers=1, poll_seconds=0.05,
                        requests_per_minute=10_000)
    headers = make_key(settings, "stems")
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        job = http.post("/v1/generations", headers=headers, json={"model": "chorale", "params": {"bars": 2},
                                                                   "seed": 1, "formats": ["wav", "stems"]}).json()
        plain = http.post("/v1/generations", headers=headers, json={"model": "folk", "params": {"bars": 1}}).json()
        for job_id in (job["id"], plain["id"]):
            record = wait_until_finished(http, job_id, headers)
            assert record["status"] == "succeeded", record
        record = http.get(f"/v1/generations/{job['id']}", headers=headers).json()
        names = record["result"]["stems"]
        assert len(names) == 4 and set(record["links"]["stems"]) == set(names)
        one = http.get(record["links"]["stems"][names[0]], headers=headers)
        assert one.status_code == 200 and one.content[:4] == b"RIFF"
        archive = zipfile.ZipFile(io.BytesIO(http.get(record["links"]["stems_zip"], headers=headers).content))
        assert sorted(archive.namelist()) == sorted(f"{n}.wav" for n in names)
        missing = http.get(f"/v1/generations/{job['id']}/stems/kazoo", headers=headers)
        assert missing.status_code == 404 and names[0] in missing.json()["error"]["message"]
        assert http.get(f"/v1/generations/{plain['id']}/stems.zip", headers=headers).status_code == 404
        note = http.post("/v1/generations", headers=headers, json={"model": "notes", "formats": ["wav", "stems"],
                                                                    "params": {"instrument": "violin"}})
        assert note.status_code == 422 and note.json()["error"]["field"] == "formats"
        key = headers["Authorization"].removeprefix("Bearer ")
        remote = tmp_path / "remote"
        assert main(["generate", "chorale", "--bars", "1", "--server", server.url, "--api-key", key,
                     "-o", str(remote / "c.wav"), "--stems", str(remote / "stems"),
                     "--midi", str(remote / "c.mid")]) == 0
        assert len(list((remote / "stems").glob("*.wav"))) == 4 and (remote / "c.mid").read_bytes()[:4] == b"MThd"
