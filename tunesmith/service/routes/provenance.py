"""GET /v1/provenance/public-key (no auth) and POST /v1/verifications: who signed a file, and was it changed."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from tunesmith.errors import InputFileError
from tunesmith.service.deps import CurrentKey, MultipartBody, ServicesDep
from tunesmith.service.errors import ERROR_RESPONSES, WRONG_MEDIA_TYPE, ErrorBody, PayloadTooLarge
from tunesmith.service.routes.common import read_limited
from tunesmith.service.sandbox import Limits, run_bounded, verify_as
from tunesmith.service.state import Services

router = APIRouter(tags=["provenance"])


class PublicKey(BaseModel):
    """The key this server signs every file with (Ed25519)."""

    algorithm: Literal["Ed25519"]
    key_id: str = Field(description="first 16 hex digits of sha256 of the raw key (what verdicts name)")
    pem: str = Field(description="SubjectPublicKeyInfo PEM")
    raw_base64: str = Field(description="the 32 raw key bytes in base64")


class VerdictPublic(BaseModel):
    """What a file's provenance says, and whether its signature and watermark survived."""

    file: str
    format: Literal["wav", "flac", "ogg", "mp3", "midi"]
    signature: Literal["valid", "tampered", "unsigned"]
    signature_reason: str | None
    key_id: str | None = Field(description="the key that signed the file")
    key_trusted: bool | None = Field(description="true: signed by this server's key; false: by another key "
                                     "(the content is intact, but this server did not make it)")
    server_key_id: str
    manifest: dict[str, Any] | None = Field(description="the signed manifest (model, weights and training-data "
                                            "hashes, params, seed, time, requester hash, watermark payload)")
    watermark: Literal["detected", "not_detected", "n/a"]
    watermark_score: float | None
    watermark_payload: int | None = Field(description="16 bits; on this server's works, the first four hex "
                                          "digits of the work id")
    watermark_payload_valid: bool | None
    watermark_reason: str | None
    summary: str = Field(description="one line: which of signature and watermark survived")


@router.get("/v1/provenance/public-key", response_model=PublicKey, summary="the server's signing key")
def public_key(services: ServicesDep) -> PublicKey:
    """The Ed25519 public key of every manifest this server signs (no API key needed)."""
    return PublicKey(**services.stamper.public_key())


@router.post("/v1/verifications", response_model=VerdictPublic, summary="check a file's provenance and watermark",
             dependencies=[MultipartBody],
             responses={415: WRONG_MEDIA_TYPE, **ERROR_RESPONSES,
                        400: {"model": ErrorBody, "description": "not audio or MIDI, or unreadable (field file)"},
                        413: {"model": ErrorBody, "description": "file over the upload size limit, or it takes more "
                                                                 "than the server's time or memory to read"}})
async def create_verification(file: Annotated[UploadFile, File(description="WAV, FLAC, OGG, MP3 or MIDI")],
                              services: ServicesDep, key: CurrentKey) -> VerdictPublic:
    """The signed manifest (valid, tampered or unsigned) and the watermark (detected with its payload, or not).

    Re-encoding audio keeps the watermark but drops a signature over the exact bytes; `summary` says which
    of the two survived."""
    limit = services.settings.max_upload_bytes
    data = await read_limited(file, limit)
    verdict = await run_in_threadpool(verify_upload, services, file.filename or "", data)
    return VerdictPublic(**verdict)


def verify_upload(services: Services, filename: str, data: bytes) -> dict[str, Any]:
    """Write the upload to a private scratch folder and verify it there."""
    name = re.sub(r"[^\w.\- ]+", "_", Path(filename.replace("\\", "/")).name).strip(" .")[:200] or "upload"
    if len(data) > services.settings.max_upload_bytes:
        raise PayloadTooLarge(f"{name} has {len(data)} bytes; the limit is {services.settings.max_upload_bytes} "
                              "bytes", field="file")
    if not data:
        raise InputFileError(f"{name} is empty", field="file")
    with tempfile.TemporaryDirectory(dir=services.store.scratch) as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return run_bounded(verify_as, str(services.settings.data_dir), str(path), name,
                           limits=Limits.of(services.settings), name=name)
