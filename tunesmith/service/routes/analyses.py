"""/v1/analyses: what the analyzer hears in a recording (tags, key, tempo, loudness, melody).

A short recording is answered at once (200 with the analysis in ``result``); a longer one becomes a job
(202 with ``status`` queued and ``links.self`` to poll, or ``links.events`` to follow).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from tunesmith.service import analyses, analysis_requests
from tunesmith.service.deps import CurrentKey, MultipartBody, ServicesDep
from tunesmith.service.errors import ERROR_RESPONSES, WRONG_MEDIA_TYPE, ErrorBody
from tunesmith.service.routes.common import job_events, read_limited

router = APIRouter(prefix=analyses.PREFIX, tags=["analyses"], responses=ERROR_RESPONSES)
LOCATION = {"Location": {"description": "the analysis", "required": True, "schema": {"type": "string"}}}


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
                                          "family, instrument, instruments (families heard and their "
                                          "segments, with a mixture tagger), melody (notes), model")
    error: dict[str, Any] | None
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None
    interruptions: int = Field(0, description="server stops (kill -9, power loss) this job was running through; "
                               "it is retried once, then fails with code `interrupted`")
    links: AnalysisLinks


@router.post("", response_model=AnalysisPublic, summary="analyze a recording",
             dependencies=[MultipartBody],
             responses={415: WRONG_MEDIA_TYPE, 200: {"headers": LOCATION},
                        202: {"model": AnalysisPublic, "description": "a long recording: queued as a job",
                              "headers": LOCATION},
                        400: {"model": ErrorBody, "description": "not audio, or unreadable (field file)"},
                        413: {"model": ErrorBody, "description": "file over the upload size or audio length limit"},
                        503: {"model": ErrorBody, "description": "this server has no analyzer model"}})
async def create_analysis(file: Annotated[UploadFile, File(description=f"audio: {analyses.ACCEPTED}")],
                          services: ServicesDep, key: CurrentKey, response: Response) -> AnalysisPublic:
    """Tags, instrument, key, tempo, loudness and melody of a recording.

    Up to the server's `analysis_sync_seconds` (default 30 s) the answer is the finished analysis (200);
    a longer recording is queued (202): poll `links.self` or follow `links.events`."""
    limit = services.settings.max_upload_bytes
    data = await read_limited(file, limit)
    record, finished = await run_in_threadpool(analysis_requests.submit, services, key, file.filename or "", data)
    response.headers["Location"] = f"{analyses.PREFIX}/{record.id}"
    if not finished:
        response.status_code = 202
    return AnalysisPublic(**analyses.public(record))


@router.get("/{analysis_id}", response_model=AnalysisPublic, summary="an analysis and its status")
def get_analysis(analysis_id: str, services: ServicesDep, key: CurrentKey) -> AnalysisPublic:
    return AnalysisPublic(**analyses.public(analysis_requests.get(services, key, analysis_id)))


@router.get("/{analysis_id}/events", summary="progress and completion as server-sent events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`progress` events, then one `done` event with the record"}})
def follow_analysis(analysis_id: str, services: ServicesDep, key: CurrentKey, request: Request) -> StreamingResponse:
    analysis_requests.get(services, key, analysis_id)  # 404 before the stream starts
    events = job_events(lambda: analysis_requests.get(services, key, analysis_id),
                        lambda record: AnalysisPublic(**analyses.public(record)).model_dump(mode="json"),
                        analysis_id, request)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
