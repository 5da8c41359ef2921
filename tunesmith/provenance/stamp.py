"""Stamp the files of one work: watermark the audio and sign every file (the CLI and the service call this).

Intended call order, for one generated work::

    from tunesmith.provenance.stamp import Manifest, payload_for, stamp_outputs, watermark_audio
    from tunesmith.provenance.signing import load_or_create_signing_key

    key = load_or_create_signing_key(settings.data_dir)            # once per process
    payload = payload_for(work_id)                                  # 16 bits naming the work
    audio = watermark_audio(audio, sr, payload)                     # 1. mark the float audio, before encoding
    save(wav, audio, sr); save(mp3, audio, sr); write_midi(score, mid)   # 2. write every format from it
    manifest = Manifest.for_model(card, params=params, seed=seed, key_id=api_key_id)
    stamp_outputs([wav, mp3, mid], manifest, key, payload=payload)  # 3. embed the signed manifest in each file

Step 3 checks each audio file for the watermark first; if step 1 was skipped it decodes the file, marks it
and writes it again in the same format (for MP3/OGG that is a second lossy generation, so prefer step 1).
Signing must be the last change to a file: any later edit to its samples or events shows as ``tampered``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tunesmith.provenance.embed import detect_format, embed_manifest
from tunesmith.provenance.manifest import Manifest
from tunesmith.provenance.watermark import DEFAULT_KEY, check_payload, detect_watermark, watermark_audio

__all__ = ["Manifest", "payload_for", "stamp_outputs", "watermark_audio", "watermark_file"]
CHECK_SECONDS = 30.0


def payload_for(work_id: str) -> int:
    """A 16-bit watermark payload derived from a work's id (the first 16 bits of its sha256)."""
    return int.from_bytes(hashlib.sha256(work_id.encode("utf-8")).digest()[:2], "big")


def watermark_file(path: str | os.PathLike[str], payload: int, *, key: str = DEFAULT_KEY) -> bool:
    """Make sure the audio file carries the watermark with `payload`; returns True if it had to be added."""
    from tunesmith.audio.io import info, load, save

    meta = info(path)
    head, sr = load(path, mono=True, duration=min(meta.duration, CHECK_SECONDS))
    found = detect_watermark(head, sr, key=key)
    if found.detected and found.payload == payload and found.payload_valid:
        return False
    y, sr = load(path, mono=False)
    subtype = meta.subtype if meta.format in ("wav", "flac") else None
    save(path, watermark_audio(y, sr, payload, key=key), sr, format=meta.format, subtype=subtype)
    return True


def stamp_outputs(paths: Sequence[str | os.PathLike[str]], manifest: Manifest, key: Ed25519PrivateKey, *,
                  payload: int, watermark_key: str = DEFAULT_KEY) -> list[Manifest]:
    """Watermark (where still needed) and sign every file of one work; returns the manifests as signed.

    Audio files (WAV, FLAC, OGG, MP3) get the watermark with `payload` and the manifest; MIDI files get the
    manifest. The manifest records the payload. Raises InputFileError for a file that is neither.
    """
    payload = check_payload(payload)
    stamped = Manifest.from_dict({**manifest.to_dict(), "watermark_payload": payload})
    signed = []
    for path in map(Path, paths):
        if detect_format(path) != "midi":
            watermark_file(path, payload, key=watermark_key)
        signed.append(embed_manifest(path, stamped, key))
    return signed
