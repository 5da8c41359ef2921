"""Dependencies of the routes: the process's services and the calling API key (auth + rate limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tunesmith.service.db import ApiKey
from tunesmith.service.errors import Unauthorized
from tunesmith.service.limits import SlidingWindowLimiter
from tunesmith.service.state import Services

bearer = HTTPBearer(auto_error=False, description="an API key from `tunesmith keys create`")


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_key(services: ServicesDep,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
    """The API key of the request (401 if missing or unknown), counted against its rate limit (429).

    Async, so that a known key costs no hop to a worker thread: the key comes from a short-lived cache and the
    in-process limiter is a few dictionary operations; a Redis limiter is asked from the thread pool."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    secret = credentials.credentials
    key = services.cached_key(secret) or await services.run(services.find_key, secret)
    if key is None:
        raise Unauthorized("unknown API key")
    if isinstance(services.limiter, SlidingWindowLimiter):
        services.limiter.check(key.id)
    else:
        await run_in_threadpool(services.limiter.check, key.id)
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]
