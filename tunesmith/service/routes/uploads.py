"""/v1/uploads: a score (MIDI, MusicXML, ABC) to continue or harmonize in a generation."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, File, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from tunesmith.service import uploads
from tunesmith.service.deps import CurrentKey, MultipartBody, ServicesDep
from tunesmith.service.errors import ERROR_RESPONSES, WRONG_MEDIA_TYPE, ErrorBody
from tunesmith.service.routes.common import read_limited
from tunesmith.service.sandbox import Limits

router = APIRouter(prefix="/v1/uploads", tags=["uploads"], responses=ERROR_RESPONSES)


class UploadPublic(BaseModel):
    """An uploaded score: give its id as ``params.input`` of a generation (with ``params.harmonize`` if wanted)."""

    id: str
    filename: str
    format: Literal["midi", "musicxml", "abc"]
    parts: int = Field(description="parts (voices or instruments) in the file")
    notes: int
    bars: int
    key: str | None = Field(description="the key the file declares, if any")
    created: dt.datetime


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadPublic, summary="upload a score",
             dependencies=[MultipartBody],
             responses={201: {"headers": {"Location": {"description": "the new upload", "required": True,
                                                       "schema": {"type": "string"}}}},
                        415: WRONG_MEDIA_TYPE,
                        400: {"model": ErrorBody, "description": "not a readable score, or no notes (field file)"},
                        413: {"model": ErrorBody, "description": "file over the upload size limit, or it takes more "
                                                                 "than the server's time or memory to read"}})
async def create_upload(file: Annotated[UploadFile, File(description=f"MIDI, MusicXML or ABC ({uploads.ACCEPTED})")],
                        services: ServicesDep, key: CurrentKey, response: Response) -> UploadPublic:
    """Upload a melody or piece; the answer tells what was read (parts, notes, bars, key)."""
    limit = services.settings.max_upload_bytes
    data = await read_limited(file, limit)
    upload = await run_in_threadpool(uploads.save_upload, services.db, uploads.upload_store(services.store), key,
                                     file.filename or "", data, max_bytes=limit, limits=Limits.of(services.settings))
    response.headers["Location"] = f"/v1/uploads/{upload.id}"
    return UploadPublic(**uploads.public(upload))


@router.get("/{upload_id}", response_model=UploadPublic, summary="what an upload holds")
def get_upload(upload_id: str, services: ServicesDep, key: CurrentKey) -> UploadPublic:
    return UploadPublic(**uploads.public(uploads.find_upload(services.db, key, upload_id)))
