"""Dependencies of the routes: the process's services and the calling API key (auth + rate limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tunesmith.service.db import ApiKey
from tunesmith.service.errors import Unauthorized
from tunesmith.service.state import Services

bearer = HTTPBearer(auto_error=False, description="an API key from `tunesmith keys create`")


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_key(services: ServicesDep,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
    """The API key of the request (401 if missing or unknown), counted against its rate limit (429)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    key = services.find_key(credentials.credentials)
    if key is None:
        raise Unauthorized("unknown API key")
    services.limiter.check(key.id)
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]
