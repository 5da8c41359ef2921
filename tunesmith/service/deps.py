"""Dependencies of the routes: the process's services and the calling API key (auth + rate limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from tunesmith.service.db import ApiKey
from tunesmith.service.errors import Unauthorized, UnsupportedMediaType
from tunesmith.service.state import Services


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


class ApiKeyAuth(HTTPBearer):
    """The API key of the request (401 if missing or unknown), counted against its rate limit (429).

    One dependency that reads the header itself (FastAPI still documents it as the HTTP bearer scheme): every
    authenticated request resolves it, and each dependency FastAPI resolves costs tens of microseconds.
    Async, so that a known key costs no hop to a worker thread: the key comes from a short-lived cache and a local
    limiter (this process's or the shared table) takes microseconds; a Redis limiter is asked from the thread pool."""

    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        scheme, _, secret = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
        services: Services = request.app.state.services
        secret = secret.strip()
        if services.revocations_due():  # a key revoked by any process is refused within a second
            await services.run(services.check_revocations)
        key = services.cached_key(secret) or await services.run(services.find_key, secret)
        if key is None:
            raise Unauthorized("unknown API key")
        if key.revoked is not None:
            raise Unauthorized(f"this API key was revoked on {key.revoked:%Y-%m-%d %H:%M} UTC")
        if services.limiter.local:
            services.limiter.check(key.id)
        else:
            await run_in_threadpool(services.limiter.check, key.id)
        return key


current_key = ApiKeyAuth(auto_error=False, scheme_name="HTTPBearer",
                         description="an API key from `tunesmith keys create`")
CurrentKey = Annotated[ApiKey, Depends(current_key)]


def _media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").partition(";")[0].strip().lower()


async def json_body(request: Request) -> None:
    """415 unless the body is JSON (``application/json`` or ``+json``; without a Content-Type it is read as JSON)."""
    media = _media_type(request)
    if media and not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        raise UnsupportedMediaType(f"the body must be JSON (Content-Type: application/json), not {media}",
                                   field="Content-Type")


async def multipart_body(request: Request) -> None:
    """415 unless the body is ``multipart/form-data`` (a form with the file)."""
    media = _media_type(request)
    if media != "multipart/form-data":
        raise UnsupportedMediaType(f"send the file as multipart/form-data (field 'file'), not {media or 'no type'}",
                                   field="Content-Type")


JsonBody = Depends(json_body)
MultipartBody = Depends(multipart_body)
