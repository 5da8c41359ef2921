"""Dependencies of the routes: the process's services and the calling API key (auth + rate limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from tunesmith.service.db import ApiKey
from tunesmith.service.errors import Unauthorized
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
