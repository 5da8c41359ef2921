"""/v1/generations/{id}/stems: a work's tracks as separate WAV files (one, or all in a zip)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from tunesmith.service.deps import CurrentKey, ServicesDep
from tunesmith.service.errors import ERROR_RESPONSES, ErrorBody
from tunesmith.service.generations import stems
from tunesmith.service.routes.files import stored_response
from tunesmith.service.routes.generations import PREFIX, RANGE_ERRORS, RangeHeader

router = APIRouter(prefix=PREFIX, tags=["generations"], responses=ERROR_RESPONSES)
NOT_READY = {"model": ErrorBody, "description": "the job has not succeeded (yet)"}


@router.get("/{generation_id}/stems.zip", response_class=FileResponse, summary="every stem in one zip",
            responses={200: {"content": {"application/zip": {}}}, 409: NOT_READY})
def get_stems_zip(generation_id: str, services: ServicesDep, key: CurrentKey) -> Response:
    """All the tracks of a finished work, one WAV each (``drums.wav``, ``bass.wav`` ...), as they sit in the mix."""
    stored = stems.stems_zip(services, key, generation_id)
    return stored_response(services.store, stored, None, filename=f"tunesmith-{generation_id[:8]}-stems.zip",
                           missing=f"the stems of generation {generation_id} are missing from the store")


@router.get("/{generation_id}/stems/{track}", response_class=FileResponse, summary="one stem (WAV)",
            responses={200: {"content": {"audio/wav": {}}}, **RANGE_ERRORS, 409: NOT_READY})
def get_stem(generation_id: str, track: str, services: ServicesDep, key: CurrentKey,
             range_header: RangeHeader = None) -> Response:
    """One track of a finished work (its result's ``stems`` names them), as it sits in the mix."""
    stored = stems.stem(services, key, generation_id, track)
    return stored_response(services.store, stored, range_header, filename=f"tunesmith-{generation_id[:8]}-{track}.wav",
                           field="track", missing=f"the stem {track!r} of generation {generation_id} is missing from "
                           "the store")
