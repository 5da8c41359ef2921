"""Provenance of what `tunesmith generate` writes locally: the server's watermark and signed manifest, here.

    work = LocalWork.new()                       # an id, and its first four hex digits as the watermark payload
    audio = work.mark(audio, sr)                 # before the audio is encoded
    save(path, audio, sr)
    work.sign(path, model_id="chorale", card=composer.card, params=result.params)

The signing key is the local data directory's (``Settings().data_dir``, default ./data-dir, or
``TUNESMITH_DATA_DIR``; made on first use with mode 0600): the key `tunesmith serve` there signs with, and the
one `tunesmith verify` trusts by default.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LocalWork:
    """One locally generated output: its id and watermark payload."""

    id: str
    payload: int

    @classmethod
    def new(cls) -> LocalWork:
        work_id = str(uuid.uuid4())
        return cls(id=work_id, payload=int(work_id[:4], 16))

    def mark(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """The audio with the inaudible watermark carrying this work's payload."""
        from tunesmith.provenance.watermark import watermark_audio

        return watermark_audio(audio, sr, self.payload)

    def sign(self, path: Path, *, model_id: str, card: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """Embed the signed manifest in the file at ``path``; returns what was signed (for --json reports)."""
        from tunesmith.config import load_settings
        from tunesmith.provenance.embed import embed_manifest
        from tunesmith.provenance.manifest import Manifest
        from tunesmith.provenance.signing import key_id, load_or_create_signing_key

        key = load_or_create_signing_key(load_settings().data_dir)
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        manifest = Manifest.for_model({**card, "id": model_id, "version": str(card.get("version") or "0.0.0+local")},
                                      params=plain, seed=plain.get("seed"), watermark_payload=self.payload)
        signed = embed_manifest(path, manifest, key)
        return {"work_id": self.id, "key_id": key_id(key), "watermark_payload": f"0x{self.payload:04x}",
                "content_sha256": signed.content_sha256}
