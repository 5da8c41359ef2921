"""Check a file's provenance: the signed manifest (exact bytes) and the audio watermark (survives re-encoding).

``verify_file(path, public_key)`` answers with a `Verdict`: the signature is ``valid`` (manifest returned),
``tampered`` (the manifest, the signed content or the signature does not check out; ``signature_reason``
says which) or ``unsigned``; the watermark is ``detected`` (with its payload), ``not_detected``, or ``n/a``
(MIDI, or audio that cannot be decoded). ``summary`` says in one line which of the two survived.

Without a trusted public key the signature is checked against the public key the file itself carries, which
proves integrity but not authorship; ``key_trusted`` tells the two cases apart.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tunesmith.errors import AudioDecodeError, InputFileError, ParameterError
from tunesmith.provenance.embed import content_sha256, detect_format, parse_envelope, read_envelope
from tunesmith.provenance.manifest import Manifest
from tunesmith.provenance.signing import key_id, load_public_key, verify
from tunesmith.provenance.watermark import DEFAULT_KEY, detect_watermark

WATERMARK_SECONDS = 120.0  # the detector reads at most this much audio from the start of a file


@dataclass(frozen=True)
class Verdict:
    """What `verify_file` found (see the module docstring)."""

    path: str
    format: str
    signature: str
    signature_reason: str | None
    key_id: str | None
    key_trusted: bool | None
    manifest: dict[str, Any] | None
    watermark: str
    watermark_score: float | None
    watermark_payload: int | None
    watermark_payload_valid: bool | None
    watermark_reason: str | None
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_signature(path: Path, fmt: str, raw: bytes | None, trusted: Ed25519PublicKey | None) -> dict[str, Any]:
    out: dict[str, Any] = {"signature": "unsigned", "signature_reason": None, "key_id": None, "key_trusted": None,
                           "manifest": None}
    if raw is None:
        out["signature_reason"] = "the file carries no Tunesmith manifest"
        return out
    out["signature"] = "tampered"
    try:
        envelope = parse_envelope(raw)
        manifest = Manifest.from_dict(envelope.manifest)
    except ParameterError as exc:
        out["signature_reason"] = f"the embedded manifest is damaged ({exc})"
        return out
    out["manifest"] = envelope.manifest
    if trusted is not None:
        public, out["key_trusted"] = trusted, True
    else:
        try:
            public = load_public_key(envelope.public_key)
        except ParameterError:
            out["signature_reason"] = "the embedded public key is damaged"
            return out
        out["key_trusted"] = False
    out["key_id"] = key_id(public)
    if not verify(public, envelope.signature, envelope.signed_message()):
        out["signature_reason"] = ("the signature does not match the manifest: the manifest was edited or signed "
                                   "with another key" if trusted is not None else
                                   "the signature does not match the manifest: the manifest was edited")
        return out
    if manifest.content_sha256 != content_sha256(path, fmt):
        out["signature_reason"] = "the audio or MIDI content changed after signing"
        return out
    out["signature"], out["signature_reason"] = "valid", None
    return out


def _check_watermark(path: Path, fmt: str, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"watermark": "n/a", "watermark_score": None, "watermark_payload": None,
                           "watermark_payload_valid": None, "watermark_reason": None}
    if fmt == "midi":
        out["watermark_reason"] = "MIDI files carry no audio watermark"
        return out
    from tunesmith.audio.io import info, load

    try:
        duration = min(info(path).duration, WATERMARK_SECONDS)
        y, sr = load(path, mono=True, duration=duration)
    except (AudioDecodeError, InputFileError, ParameterError) as exc:
        out["watermark_reason"] = f"the audio could not be decoded ({exc})"
        return out
    found = detect_watermark(y, sr, key=key)
    out["watermark_score"] = found.score
    if found.detected:
        out.update(watermark="detected", watermark_payload=found.payload, watermark_payload_valid=found.payload_valid)
    else:
        out["watermark"] = "not_detected"
    return out


def _summary(sig: dict[str, Any], mark: dict[str, Any], fmt: str) -> str:
    manifest = sig["manifest"] or {}
    made = (f"{manifest.get('model_id')} {manifest.get('model_version')}, made {manifest.get('created')}"
            if manifest else "")
    payload = mark["watermark_payload"]
    if mark["watermark"] == "detected":
        damaged = "" if mark["watermark_payload_valid"] else ", damaged"
        mark_text = f"watermark present (payload 0x{payload:04x}{damaged})"
    elif mark["watermark"] == "not_detected":
        mark_text = "no watermark found"
    else:
        mark_text = f"watermark n/a ({mark['watermark_reason']})"
    if sig["signature"] == "valid":
        who = "a trusted key" if sig["key_trusted"] else f"key {sig['key_id']} (not checked against a trusted key)"
        text = f"valid signature by {who}: {made}; {mark_text}"
        wanted = manifest.get("watermark_payload")
        if mark["watermark"] == "detected" and wanted is not None and wanted != payload:
            text += f" - but the manifest names payload 0x{wanted:04x}"
        return text
    if sig["signature"] == "tampered":
        return f"TAMPERED: {sig['signature_reason']}; {mark_text}"
    if mark["watermark"] == "detected":
        return (f"no signed manifest, but the watermark survived (payload 0x{payload:04x}): the file was probably "
                "re-encoded or its metadata stripped, which drops the signature but keeps the watermark")
    if fmt == "midi":
        return "unsigned: no Tunesmith manifest in this MIDI file"
    return f"no Tunesmith provenance: no signed manifest and {mark_text}"


def verify_file(path: str | os.PathLike[str], public_key: Ed25519PublicKey | str | None = None, *,
                watermark_key: str = DEFAULT_KEY) -> Verdict:
    """Verify the signed manifest and look for the watermark; InputFileError for files that are neither
    audio nor MIDI. `public_key` (an Ed25519 key, PEM text or raw base64) is the signer to trust."""
    trusted = load_public_key(public_key) if isinstance(public_key, str) else public_key
    p = Path(path)
    fmt = detect_format(p)  # InputFileError for anything that is not audio or MIDI
    try:
        _, raw = read_envelope(p)
        sig = _check_signature(p, fmt, raw, trusted)
    except InputFileError as exc:  # damaged metadata or MIDI events: no manifest can be read
        sig = {"signature": "unsigned", "signature_reason": f"the file is damaged ({exc})", "key_id": None,
               "key_trusted": None, "manifest": None}
    mark = _check_watermark(p, fmt, watermark_key)
    return Verdict(path=str(path), format=fmt, **sig, **mark, summary=_summary(sig, mark, fmt))
