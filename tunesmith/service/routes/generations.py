"""/v1/generations: create, list, show, follow (server-sent events), download, pictures, cancel or delete."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.engine import Row

from tunesmith.generation.catalog import AUDIO_FORMATS
from tunesmith.service.db import Generation
from tunesmith.service.deps import CurrentKey, JsonBody, ServicesDep
from tunesmith.service.errors import ERROR_RESPONSES, WRONG_MEDIA_TYPE, ErrorBody
from tunesmith.service.generations import jobs
from tunesmith.service.routes.common import job_events
from tunesmith.service.routes.files import stored_response
from tunesmith.service.schemas import AudioFormat, GenerationCreate, GenerationLinks, GenerationList, GenerationPublic

router = APIRouter(prefix="/v1/generations", tags=["generations"], responses=ERROR_RESPONSES)
PREFIX = "/v1/generations"
MAX_OFFSET = 2**31 - 1  # the databases' integers: a larger offset overflowed SQLite (a 500)
NOT_READY = {"model": ErrorBody, "description": "the job has not succeeded (yet)"}
RangeHeader = Annotated[str | None, Header(alias="Range", description="byte range, e.g. bytes=0-1023 or bytes=-500; "
                                           "a unit other than bytes is ignored (RFC 9110 14.2)")]
RANGE_ERRORS: dict[int | str, dict] = {
    206: {"description": "partial content (Range)"},
    400: {"model": ErrorBody, "description": "malformed bytes range (field Range)"},
    416: {"model": ErrorBody, "description": "the range lies outside the file (Content-Range: bytes */size)",
          "headers": {"Content-Range": {"required": True, "schema": {"type": "string", "pattern": r"^bytes \*/\d+$"},
                                        "description": "the file's size"}}},
}
GENERATION_422 = ("invalid parameter (field names it). Besides what this schema says, the chosen model checks its "
                  "own params (GET /v1/models: a param another family takes, a key that does not parse, a piece "
                  "over the server's length limit, `mid` from an audio-only model), an upload id in params.input "
                  "must be one of this key's, and a prompt must be about music and agree with itself")
LOCATION = {"Location": {"description": "the new job", "required": True, "schema": {"type": "string"}}}


def public(generation: Generation | Row | SimpleNamespace) -> GenerationPublic:
    """The API's view of a job, from its ORM record, a row of its table or the values just inserted."""
    base = f"{PREFIX}/{generation.id}"
    tracks = (generation.result or {}).get("stems") or []
    links = GenerationLinks(self=base, events=f"{base}/events", midi=f"{base}/midi",
                            audio={fmt: f"{base}/audio?format={fmt}" for fmt in AUDIO_FORMATS},
                            spectrogram=f"{base}/spectrogram", pianoroll=f"{base}/pianoroll",
                            stems={t: f"{base}/stems/{t}" for t in tracks} if tracks else None,
                            stems_zip=f"{base}/stems.zip" if tracks else None)
    return GenerationPublic(
        id=generation.id, model=generation.model, status=generation.status,  # type: ignore[arg-type]
        progress=round(generation.progress, 3), prompt=generation.prompt, params=generation.params,
        interpretation=generation.interpretation, formats=generation.formats, result=generation.result,
        error=generation.error, audio_seconds=generation.audio_seconds, created=generation.created,
        started=generation.started, finished=generation.finished, interruptions=generation.interruptions or 0,
        links=links, provenance=generation.provenance,
        originality=generation.originality)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=GenerationPublic,
             summary="queue a generation", dependencies=[JsonBody],
             responses={202: {"headers": LOCATION},
                        400: {"model": ErrorBody, "description": "the body is not valid JSON (field body)"},
                        413: {"model": ErrorBody, "description": "request body over the size limit"},
                        415: WRONG_MEDIA_TYPE,
                        422: {"model": ErrorBody, "description": GENERATION_422}})
async def create_generation(body: GenerationCreate, services: ServicesDep, key: CurrentKey,
                            response: Response) -> GenerationPublic:
    """Queue a piece: a model (or a prompt naming one), params, a seed and the formats wanted.

    Explicit params win over what the prompt says; the job's `interpretation` tells how the prompt was read."""
    submission = await services.run(jobs.prepare, services, key, body)
    generation = await services.submits.submit(submission)
    response.headers["Location"] = f"{PREFIX}/{generation.id}"
    return public(generation)


@router.get("", response_model=GenerationList, summary="the caller's generations, newest first")
async def list_generations(services: ServicesDep, key: CurrentKey,
                           limit: Annotated[int, Query(ge=1, le=100)] = 20,
                           offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> GenerationList:
    items, total = await services.run(jobs.list_page, services, key, limit, offset)
    following = f"{PREFIX}?limit={limit}&offset={offset + limit}" if offset + limit < total else None
    return GenerationList(items=[public(g) for g in items], total=total, limit=limit, offset=offset, next=following)


@router.get("/{generation_id}", response_model=GenerationPublic, summary="status, progress and result links")
async def get_generation(generation_id: str, services: ServicesDep, key: CurrentKey) -> GenerationPublic:
    return public(await services.run(jobs.status, services, key, generation_id))


@router.get("/{generation_id}/events", summary="progress and completion as server-sent events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`progress` events, then one `done` event with the record"}})
def follow_generation(generation_id: str, services: ServicesDep, key: CurrentKey,
                      request: Request) -> StreamingResponse:
    jobs.get(services, key, generation_id)  # 404 before the stream starts
    events = job_events(lambda: jobs.get(services, key, generation_id),
                        lambda generation: public(generation).model_dump(mode="json"), generation_id, request)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{generation_id}/audio", response_class=FileResponse, summary="the audio (Range requests supported)",
            responses={200: {"content": {t: {} for t in ("audio/wav", "audio/flac", "audio/mpeg", "audio/ogg")}},
                       **RANGE_ERRORS, 409: NOT_READY})
def get_audio(generation_id: str, services: ServicesDep, key: CurrentKey,
              format: Annotated[AudioFormat, Query(description="audio format")] = "wav",
              range_header: RangeHeader = None) -> Response:
    stored = jobs.artifact(services, key, generation_id, format)
    return stored_response(services.store, stored, range_header, filename=f"tunesmith-{generation_id[:8]}.{format}",
                           inline=True, field="format",
                           missing=f"the {format} file of generation {generation_id} is missing from the store")


@router.get("/{generation_id}/midi", response_class=FileResponse, summary="the MIDI file",
            responses={200: {"content": {"audio/midi": {}}}, **RANGE_ERRORS, 409: NOT_READY})
def get_midi(generation_id: str, services: ServicesDep, key: CurrentKey,
             range_header: RangeHeader = None) -> Response:
    stored = jobs.artifact(services, key, generation_id, "mid")
    return stored_response(services.store, stored, range_header, filename=f"tunesmith-{generation_id[:8]}.mid",
                           field="format", missing=f"the mid file of generation {generation_id} is missing from the "
                           "store")


@router.get("/{generation_id}/spectrogram", response_class=FileResponse, summary="log-mel spectrogram (PNG)",
            responses={200: {"content": {"image/png": {}}}, 409: NOT_READY})
def get_spectrogram(generation_id: str, services: ServicesDep, key: CurrentKey) -> Response:
    stored = jobs.image(services, key, generation_id, "spectrogram")
    return stored_response(services.store, stored, None, inline=True,
                           filename=f"tunesmith-{generation_id[:8]}-spectrogram.png",
                           missing=f"the spectrogram of generation {generation_id} is missing from the store")


@router.get("/{generation_id}/pianoroll", response_class=FileResponse, summary="piano roll of the score (PNG)",
            responses={200: {"content": {"image/png": {}}}, 409: NOT_READY})
def get_pianoroll(generation_id: str, services: ServicesDep, key: CurrentKey) -> Response:
    stored = jobs.image(services, key, generation_id, "pianoroll")
    return stored_response(services.store, stored, None, inline=True,
                           filename=f"tunesmith-{generation_id[:8]}-pianoroll.png",
                           missing=f"the pianoroll of generation {generation_id} is missing from the store")


@router.delete("/{generation_id}", status_code=status.HTTP_204_NO_CONTENT, summary="cancel or delete",
               responses={202: {"model": GenerationPublic, "description": "the job was cancelled"},
                          204: {"description": "the finished work was deleted"}})
def delete_generation(generation_id: str, services: ServicesDep, key: CurrentKey) -> Response:
    """Cancel a queued or running job (202 with the record), or delete a finished one and its files (204)."""
    cancelled = jobs.cancel_or_delete(services, key, generation_id)
    if cancelled is not None:
        return Response(public(cancelled).model_dump_json(), status_code=202, media_type="application/json")
    return Response(status_code=204)
