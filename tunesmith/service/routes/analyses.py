"""/v1/analyses: what the analyzer hears in a recording (tags, key, tempo, loudness, melody).

A short recording is answered at once (200 with the analysis in ``result``); a longer one becomes a job
(202 with ``status`` queued and ``links.self`` to poll, or ``links.events`` to follow).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from tunesmith.service import analyses
from tunesmith.service.db import FINISHED, ApiKey
from tunesmith.service.deps import CurrentKey, ServicesDep
from tunesmith.service.errors import ERROR_RESPONSES, ErrorBody, NotFound
from tunesmith.service.state import Services

router = APIRouter(prefix=analyses.PREFIX, tags=["analyses"], responses=ERROR_RESPONSES)
READ_CHUNK = 1 << 16
EVENT_POLL_SECONDS = 0.25
EVENT_KEEPALIVE_SECONDS = 15.0
EVENT_MAX_SECONDS = 3600.0


class AnalysisLinks(BaseModel):
    self: str
    events: str


class AnalysisPublic(BaseModel):
    """An analysis: at once for a short recording, else a job whose ``result`` appears when it succeeded."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(description="0..1")
    filename: str
    format: Literal["wav", "flac", "mp3", "ogg"]
    bytes: int
    duration: float = Field(description="seconds, from the file's header")
    result: dict[str, Any] | None = Field(description="the analysis: duration, loudness_lufs, tempo, key, tags, "
                                          "family, instrument, melody (notes), model")
    error: dict[str, Any] | None
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None
    links: AnalysisLinks


@router.post("", response_model=AnalysisPublic, summary="analyze a recording",
             responses={202: {"model": AnalysisPublic, "description": "a long recording: queued as a job"},
                        400: {"model": ErrorBody, "description": "not audio, or unreadable (field file)"},
                        413: {"model": ErrorBody, "description": "file over the upload size or audio length limit"},
                        503: {"model": ErrorBody, "description": "this server has no analyzer model"}})
async def create_analysis(file: Annotated[UploadFile, File(description=f"audio: {analyses.ACCEPTED}")],
                          services: ServicesDep, key: CurrentKey, response: Response) -> AnalysisPublic:
    """Tags, instrument, key, tempo, loudness and melody of a recording.

    Up to the server's `analysis_sync_seconds` (default 30 s) the answer is the finished analysis (200);
    a longer recording is queued (202): poll `links.self` or follow `links.events`."""
    limit = services.settings.max_upload_bytes
    data = bytearray()
    while chunk := await file.read(READ_CHUNK):
        data += chunk
        if len(data) > limit:
            break
    record, finished = await run_in_threadpool(analyses.submit, services, key, file.filename or "", bytes(data))
    response.headers["Location"] = f"{analyses.PREFIX}/{record.id}"
    if not finished:
        response.status_code = 202
    return AnalysisPublic(**analyses.public(record))


@router.get("/{analysis_id}", response_model=AnalysisPublic, summary="an analysis and its status")
def get_analysis(analysis_id: str, services: ServicesDep, key: CurrentKey) -> AnalysisPublic:
    return AnalysisPublic(**analyses.public(analyses.get(services, key, analysis_id)))


@router.get("/{analysis_id}/events", summary="progress and completion as server-sent events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`progress` events, then one `done` event with the record"}})
def follow_analysis(analysis_id: str, services: ServicesDep, key: CurrentKey, request: Request) -> StreamingResponse:
    analyses.get(services, key, analysis_id)  # 404 before the stream starts
    return StreamingResponse(_events(services, key, analysis_id, request), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(services: Services, key: ApiKey, analysis_id: str, request: Request) -> AsyncIterator[str]:
    started = last_sent = time.monotonic()
    last: tuple[str, float] | None = None
    yield "retry: 2000\n\n"
    while time.monotonic() - started < EVENT_MAX_SECONDS:
        try:
            record = await run_in_threadpool(analyses.get, services, key, analysis_id)
        except NotFound:
            yield _event("done", {"id": analysis_id, "status": "deleted"})
            return
        state = (record.status, round(record.progress, 3))
        if state != last:
            last, last_sent = state, time.monotonic()
            yield _event("progress", {"id": record.id, "status": state[0], "progress": state[1]})
        if record.status in FINISHED:
            yield _event("done", AnalysisPublic(**analyses.public(record)).model_dump(mode="json"))
            return
        if time.monotonic() - last_sent > EVENT_KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_SECONDS)
    yield _event("timeout", {"id": analysis_id, "message": "stream limit reached; reconnect to follow on"})


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
