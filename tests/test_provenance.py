"""Signed provenance manifests in every output format, tamper detection, keys, and the originality gate."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import mido
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tunesmith.audio.io import save
from tunesmith.bench.data import make_signal
from tunesmith.cli import main
from tunesmith.errors import InputFileError, ParameterError
from tunesmith.provenance.embed import (
    content_sha256,
    detect_format,
    make_envelope,
    parse_envelope,
    read_envelope,
    write_envelope,
)
from tunesmith.provenance.manifest import Manifest, canonical_json, hash_key_id
from tunesmith.provenance.signing import (
    key_id,
    key_path,
    load_or_create_signing_key,
    load_public_key,
    public_key_b64,
    public_key_pem,
)
from tunesmith.provenance.stamp import payload_for, stamp_outputs, watermark_audio
from tunesmith.provenance.verify import verify_file
from tunesmith.symbolic.io import write_midi
from tunesmith.symbolic.score import Note, Part, Score

SR = 44_100
AUDIO_FORMATS = ("wav", "flac", "ogg", "mp3")
CARD = {"id": "chorale", "version": "1.0.0", "weights_sha256": "a" * 64, "data": {"manifest_sha256": "b" * 64}}


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> Ed25519PrivateKey:
    return load_or_create_signing_key(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return make_signal(4.0, sr=SR, seed=3)


def _score() -> Score:
    notes = [Note(60 + (i * 7) % 12, i * 0.5, 0.5, 80) for i in range(24)]
    return Score(parts=[Part(name="Soprano", notes=notes, program=0)], tempo=100.0, key="C major", title="test")


def _manifest(**changes) -> Manifest:
    return Manifest.for_model(CARD, params={"key": "C major", "bars": 4}, seed=7, key_id="key-123", **changes)


def _write(path: Path, y: np.ndarray) -> Path:
    if path.suffix == ".mid":
        return write_midi(_score(), path)
    return save(path, y, SR)


@pytest.fixture(scope="module")
def stamped_once(tmp_path_factory, key, audio) -> dict[str, Path]:
    """Every format, watermarked and signed as the service would (watermark the array, write, stamp)."""
    payload = payload_for("work-1")
    marked = watermark_audio(audio, SR, payload)
    folder = tmp_path_factory.mktemp("stamped")
    paths = [_write(folder / f"out.{fmt}", marked) for fmt in (*AUDIO_FORMATS, "mid")]
    stamp_outputs(paths, _manifest(), key, payload=payload)
    return {p.suffix.lstrip("."): p for p in paths}


@pytest.fixture
def stamped(stamped_once, tmp_path) -> dict[str, Path]:
    """A fresh copy of the stamped files for each test (tests edit them)."""
    copies = {}
    for fmt, path in stamped_once.items():
        copies[fmt] = tmp_path / path.name
        copies[fmt].write_bytes(path.read_bytes())
    return copies


# ---------------------------------------------------------------------------------------------- keys


def test_key_is_created_once_with_private_permissions(tmp_path):
    first = load_or_create_signing_key(tmp_path / "d")
    path = key_path(tmp_path / "d")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signing_key(tmp_path / "d")
    assert public_key_b64(again) == public_key_b64(first)


def test_loose_key_permissions_are_tightened(tmp_path):
    load_or_create_signing_key(tmp_path)
    os.chmod(key_path(tmp_path), 0o644)
    load_or_create_signing_key(tmp_path)
    assert stat.S_IMODE(key_path(tmp_path).stat().st_mode) == 0o600


def test_public_key_formats_round_trip(key):
    assert public_key_b64(load_public_key(public_key_pem(key))) == public_key_b64(key)
    assert key_id(load_public_key(public_key_b64(key))) == key_id(key)
    with pytest.raises(ParameterError):
        load_public_key("not a key")


# ------------------------------------------------------------------------------------------ manifest


def test_manifest_is_canonical_and_validated():
    manifest = _manifest()
    assert manifest.requester_key_sha256 == hash_key_id("key-123") != "key-123"
    assert manifest.canonical() == canonical_json(json.loads(manifest.canonical()))
    assert Manifest.from_dict(json.loads(manifest.canonical())) == manifest
    with pytest.raises(ParameterError):
        Manifest.from_dict({**manifest.to_dict(), "extra": 1})
    with pytest.raises(ParameterError):
        Manifest.from_dict({**manifest.to_dict(), "weights_sha256": "xyz"})


# --------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", [*AUDIO_FORMATS, "mid"])
def test_every_format_verifies_valid(stamped, key, fmt):
    verdict = verify_file(stamped[fmt], public_key_pem(key))
    assert verdict.signature == "valid", verdict.summary
    assert verdict.key_trusted is True
    assert verdict.manifest["model_id"] == "chorale" and verdict.manifest["seed"] == 7
    assert verdict.manifest["watermark_payload"] == payload_for("work-1")
    if fmt == "mid":
        assert verdict.watermark == "n/a"
    else:
        assert verdict.watermark == "detected" and verdict.watermark_payload == payload_for("work-1")


def test_formats_are_sniffed_not_taken_from_the_extension(stamped, tmp_path):
    renamed = tmp_path / "really-flac.mp3"
    renamed.write_bytes(stamped["flac"].read_bytes())
    assert detect_format(renamed) == "flac"
    assert verify_file(renamed).signature == "valid"


def test_without_a_trusted_key_the_embedded_key_is_checked(stamped, key):
    verdict = verify_file(stamped["wav"])
    assert verdict.signature == "valid" and verdict.key_trusted is False and verdict.key_id == key_id(key)


def test_stamping_unmarked_files_adds_the_watermark(tmp_path, key, audio):
    path = save(tmp_path / "plain.flac", audio, SR)
    stamp_outputs([path], _manifest(), key, payload=0x1234)
    verdict = verify_file(path, public_key_pem(key))
    assert verdict.signature == "valid" and verdict.watermark_payload == 0x1234


# ------------------------------------------------------------------------------------------ tampering


def _edited_envelope(path: Path, **manifest_changes) -> bytes:
    _, raw = read_envelope(path)
    data = json.loads(raw)
    data["manifest"].update(manifest_changes)
    return canonical_json(data)


@pytest.mark.parametrize("fmt", [*AUDIO_FORMATS, "mid"])
def test_edited_manifest_is_tampered(stamped, key, fmt):
    write_envelope(stamped[fmt], _edited_envelope(stamped[fmt], seed=8))
    verdict = verify_file(stamped[fmt], public_key_pem(key))
    assert verdict.signature == "tampered" and "manifest" in verdict.signature_reason
    assert verdict.summary.startswith("TAMPERED")


def _flip_content_byte(path: Path, fmt: str) -> None:
    if fmt == "mid":
        mid = mido.MidiFile(str(path))
        for msg in mid.tracks[1]:
            if msg.type == "note_on":
                msg.note += 1
                break
        mid.save(str(path))
        return
    data = bytearray(path.read_bytes())
    position = {"wav": 200, "flac": len(data) - 10, "ogg": len(data) - 10, "mp3": len(data) - 10}[fmt]
    data[position] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", [*AUDIO_FORMATS, "mid"])
def test_edited_content_is_tampered(stamped, key, fmt):
    before = content_sha256(stamped[fmt])
    _flip_content_byte(stamped[fmt], fmt)
    assert content_sha256(stamped[fmt]) != before
    verdict = verify_file(stamped[fmt], public_key_pem(key))
    assert verdict.signature == "tampered"
    assert verdict.signature_reason == "the audio or MIDI content changed after signing"


def test_forged_signature_is_tampered(stamped, key):
    _, raw = read_envelope(stamped["wav"])
    data = json.loads(raw)
    data["signature"] = "A" * 86 + "=="
    write_envelope(stamped["wav"], canonical_json(data))
    assert verify_file(stamped["wav"], public_key_pem(key)).signature == "tampered"


def test_signature_by_another_key_is_tampered_for_the_trusted_key(stamped, key):
    intruder = Ed25519PrivateKey.generate()
    envelope = parse_envelope(read_envelope(stamped["wav"])[1])
    write_envelope(stamped["wav"], make_envelope(Manifest.from_dict(envelope.manifest), intruder))
    trusted = verify_file(stamped["wav"], public_key_pem(key))
    assert trusted.signature == "tampered" and "another key" in trusted.signature_reason
    untrusted = verify_file(stamped["wav"])
    assert untrusted.signature == "valid" and untrusted.key_trusted is False and untrusted.key_id == key_id(intruder)


def test_re_encoding_keeps_the_watermark_and_drops_the_signature(stamped, key, tmp_path):
    from tunesmith.audio.io import load

    y, sr = load(stamped["wav"], mono=False)
    copy = save(tmp_path / "reencoded.ogg", y, sr)
    verdict = verify_file(copy, public_key_pem(key))
    assert verdict.signature == "unsigned" and verdict.watermark == "detected"
    assert "watermark survived" in verdict.summary


# ------------------------------------------------------------------------------------------- bad input


def test_unsigned_unmarked_file(tmp_path, audio):
    verdict = verify_file(save(tmp_path / "plain.wav", audio, SR))
    assert verdict.signature == "unsigned" and verdict.watermark == "not_detected"
    assert verdict.manifest is None and "no Tunesmith provenance" in verdict.summary


@pytest.mark.parametrize("fmt", ["wav", "mp3", "mid"])
def test_truncated_files_give_a_verdict(stamped, key, fmt):
    data = stamped[fmt].read_bytes()
    stamped[fmt].write_bytes(data[: len(data) // 2])
    verdict = verify_file(stamped[fmt], public_key_pem(key))
    assert verdict.signature in ("tampered", "unsigned")
    assert verdict.summary


def test_not_audio_is_a_clear_error(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("just some words\n")
    with pytest.raises(InputFileError, match="not an audio"):
        verify_file(text)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        verify_file(empty)
    assert main(["verify", str(text)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not an audio" in err and len(err.splitlines()) == 1


def test_garbage_after_a_wav_header_gives_a_verdict(tmp_path):
    path = tmp_path / "junk.wav"
    path.write_bytes(b"RIFF\x24\x00\x10\x00WAVEjunk" + os.urandom(300))
    verdict = verify_file(path)
    assert verdict.signature == "unsigned" and verdict.watermark == "n/a"


def test_cli_verify_json(stamped, key, tmp_path, capsys):
    pem = tmp_path / "public.pem"
    pem.write_text(public_key_pem(key))
    assert main(["verify", str(stamped["mp3"]), "--json", "--public-key", str(pem)]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["signature"] == "valid" and verdict["key_trusted"] is True
    assert verdict["watermark"] == "detected"


# ---------------------------------------------------------------------------------- originality gate


@pytest.fixture(scope="module")
def chorale_data(tmp_path_factory) -> Path:
    from tunesmith.data.corpora.chorales import build_chorales

    out = tmp_path_factory.mktemp("chorales") / "data"
    build_chorales(out, limit=8)
    return out


def test_gate_flags_a_training_chorale_fed_back(chorale_data, tmp_path):
    from tunesmith.data.corpora.chorales import select_satb
    from tunesmith.data.dataset import Dataset
    from tunesmith.generation.originality import index_for_dataset
    from tunesmith.provenance.gate import check_symbolic
    from tunesmith.symbolic.io import read_score

    index = index_for_dataset(chorale_data, cache_dir=tmp_path)
    cached = index_for_dataset(chorale_data, cache_dir=tmp_path)  # read back from the npz cache
    assert len(list(tmp_path.glob("originality-*.npz"))) == 1
    assert cached.voices == index.voices
    record = next(r for r in Dataset(chorale_data).records if r.split == "train")
    planted = select_satb(read_score(record.source))
    report = check_symbolic(planted, cached, threshold=12)
    assert report.flagged and report.closest_piece == record.id
    assert report.longest_shared_run > 12
    fresh = Score(parts=[Part(name="S", notes=[Note(60 + (i % 3), i * 3.0, 3.0) for i in range(10)])])
    assert not check_symbolic(fresh, cached, threshold=12).flagged
    with pytest.raises(ParameterError):
        check_symbolic(planted, cached, threshold=0)
