"""Provenance of generated works: the signing key of a data directory, the watermark and signed manifest of every file.

One :class:`Stamper` per process: it loads the data directory's Ed25519 key (made on first start, mode 0600, by
`tunesmith.provenance.signing`). A work's audio is marked with :func:`tunesmith.provenance.stamp.watermark_audio`
(payload: :func:`work_payload`, the work id's first four hex digits, so a detected payload points at the work)
before any format is encoded; then :meth:`Stamper.stamp` embeds the signed manifest (model, version, weights and
training-data hashes from the card, params, seed, time, sha256 of the requesting key's id) in every file.
A service keeps :meth:`Stamper.record` with the work: the manifest, the signer's key id and each file's content hash.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunesmith.errors import InputFileError, TunesmithError
from tunesmith.provenance.embed import embed_manifest
from tunesmith.provenance.manifest import Manifest
from tunesmith.provenance.signing import key_id, load_or_create_signing_key, public_key_b64, public_key_pem
from tunesmith.provenance.stamp import payload_for, stamp_outputs, watermark_audio
from tunesmith.provenance.verify import verify_file
from tunesmith.provenance.watermark import check_payload

__all__ = ["Stamper", "watermark_audio", "work_payload"]
log = logging.getLogger("tunesmith.worker")


def work_payload(work_id: str) -> int:
    """The 16-bit watermark payload of a work: the first four hex digits of its id (a UUID), e.g. 0x87b9 for
    87b9...; an id that does not start with hex digits gets the first 16 bits of its sha256."""
    head = work_id[:4]
    return int(head, 16) if len(head) == 4 and all(c in "0123456789abcdefABCDEF" for c in head) \
        else payload_for(work_id)


class Stamper:
    """The server's signing key and the stamping of a work's files with it."""

    def __init__(self, data_dir: Path) -> None:
        self.key = load_or_create_signing_key(data_dir)
        self.key_id = key_id(self.key)

    def public_key(self) -> dict[str, str]:
        """What GET /v1/provenance/public-key serves."""
        return {"algorithm": "Ed25519", "key_id": self.key_id, "pem": public_key_pem(self.key),
                "raw_base64": public_key_b64(self.key)}

    @staticmethod
    def manifest(model_id: str, version: str, card: Mapping[str, Any], params: Mapping[str, Any], *,
                 requester: int | str | None) -> Manifest:
        """The manifest of a work of model ``model_id`` (as served) made with ``params`` for API key ``requester``."""
        return Manifest.for_model({**card, "id": model_id, "version": version}, params=dict(params),
                                  seed=params.get("seed"), key_id=None if requester is None else str(requester))

    def stamp(self, files: Mapping[str, Path], manifest: Manifest, payload: int, *,
              marked: bool = True) -> dict[str, str]:
        """Sign every file (fmt -> path) in place; returns fmt -> signed content sha256.

        ``marked``: the audio was watermarked before it was encoded (what the worker does), so the manifest is
        embedded at once. Otherwise each audio file is first checked for the mark and marked if needed
        (`stamp_outputs`), which decodes it and, for MP3/OGG, would encode it a second time."""
        formats = list(files)
        if marked:
            stamped = Manifest.from_dict({**manifest.to_dict(), "watermark_payload": check_payload(payload)})
            signed = [embed_manifest(files[f], stamped, self.key) for f in formats]
        else:
            signed = stamp_outputs([files[f] for f in formats], manifest, self.key, payload=payload)
        return {fmt: str(m.content_sha256) for fmt, m in zip(formats, signed, strict=True)}

    def record(self, manifest: Manifest, payload: int, contents: Mapping[str, str]) -> dict[str, Any]:
        """The work's ``provenance``: the manifest as signed (without the per-file content hash), the signer's
        key id and each file's signed content hash."""
        signed = {k: v for k, v in manifest.to_dict().items() if k != "content_sha256"}
        return {"manifest": signed | {"watermark_payload": payload}, "key_id": self.key_id,
                "watermark_payload": f"0x{payload:04x}", "content_sha256": dict(contents)}

    @staticmethod
    def manifest_of(record: Mapping[str, Any]) -> Manifest:
        """The manifest a work's record keeps (to sign a format made later, e.g. an MP3 asked for afterwards)."""
        return Manifest.from_dict(dict(record["manifest"]))

    def verify(self, path: Path, filename: str) -> dict[str, Any]:
        """The verdict on a file: signature (valid, tampered, unsigned), manifest, watermark, one-line summary.

        The signature is checked against this server's key first (``key_trusted``: true); a file whose content
        is intact but which another key signed (another Tunesmith server) is ``valid`` with ``key_trusted``
        false. InputFileError (naming ``filename``, not the server's path) for files that are not audio or MIDI.
        """
        try:
            verdict = verify_file(path, self.key.public_key())
            if verdict.signature == "tampered":
                other = verify_file(path, None)
                verdict = other if other.signature == "valid" else verdict
        except TunesmithError as exc:
            raise InputFileError(exc.message.replace(str(path), filename), field="file") from exc
        return {"file": filename, **{k: v for k, v in verdict.to_dict().items() if k != "path"},
                "server_key_id": self.key_id}


def new_work_id() -> str:
    """A new work's id (a UUID; its first four hex digits are the work's watermark payload)."""
    return str(uuid.uuid4())
