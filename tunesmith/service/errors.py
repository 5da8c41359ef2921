"""Errors of the service layer and their HTTP mapping; every error answers ``{"error": {code, message, field}}``.

The data and job layers raise `TunesmithError` subclasses and know nothing of HTTP; :data:`STATUS` maps each
class to its status code in this one place, and :func:`install_error_handlers` wires the JSON answers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunesmith.errors import (
    AudioDecodeError,
    DependencyError,
    InputFileError,
    MidiDecodeError,
    ParameterError,
    TunesmithError,
)
from tunesmith.service.contract import allowed_methods

log = logging.getLogger("tunesmith.service")


class Unauthorized(TunesmithError):
    code = "unauthorized"


class NotFound(TunesmithError):
    code = "not_found"


class Conflict(TunesmithError):
    """The resource is not in a state that allows the request (e.g. audio of a job still running)."""

    code = "conflict"


class PayloadTooLarge(TunesmithError):
    code = "payload_too_large"


class UnsupportedMediaType(TunesmithError):
    """A body of a type the operation does not read (its Content-Type)."""

    code = "unsupported_media_type"


class BadRange(TunesmithError):
    code = "bad_range"


class RangeNotSatisfiable(TunesmithError):
    """A Range request outside the file (416; Content-Range tells the size)."""

    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, field="Range")
        self.size = size


class TooManyRequests(TunesmithError):
    """Rate limit or quota exceeded; ``retry_after`` seconds until a retry can succeed."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        if code:
            self.code = code


STATUS: tuple[tuple[type[TunesmithError], int], ...] = (  # first match wins: subclasses first
    (Unauthorized, 401),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (RangeNotSatisfiable, 416),
    (TooManyRequests, 429),
    (ParameterError, 422),
    (AudioDecodeError, 400),
    (MidiDecodeError, 400),
    (InputFileError, 400),
    (DependencyError, 503),
    (TunesmithError, 400),
)
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
              415: "unsupported_media_type", 416: "range_not_satisfiable", 422: "invalid_parameter",
              429: "rate_limited"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: ErrorDetail


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: TunesmithError) -> int:
    return next(status for cls, status in STATUS if isinstance(exc, cls))


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "params", "bars") -> "params.bars"; ("query", "format") -> "format"."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _tunesmith_error(_request: Request, exc: TunesmithError) -> JSONResponse:
    status = status_of(exc)
    headers = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if status >= 500:
        log.error("dependency missing: %s", exc)
    return error_response(status, exc.code, exc.message, exc.field, headers)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    if first.get("type") == "json_invalid":  # malformed syntax: 400 (a well-formed body that is wrong is a 422)
        position = first.get("loc", ("body", "?"))[-1]
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        return error_response(400, "invalid_json", f"the body is not valid JSON: {reason} (character {position})",
                              "body")
    field = field_path(first.get("loc", ()))
    message = "; ".join(f"{field_path(e.get('loc', ()))}: {_clean(e.get('msg', 'invalid'))}" for e in errors[:5])
    return error_response(422, "invalid_parameter", message, field)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Allow lists every method of the path (the router names only one route's)
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope["path"]))
        if request.method == "OPTIONS":  # no route takes OPTIONS: answer it as RFC 9110 9.3.7 says
            return Response(status_code=204, headers=headers)
    code = HTTP_CODES.get(exc.status_code, "error")
    message = f"{request.method} is not allowed here; allowed: {headers['Allow']}" if exc.status_code == 405 \
        else str(exc.detail)
    return error_response(exc.status_code, code, message, "body" if exc.status_code == 413 else None, headers)


async def _bug(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error (a bug)", exc_info=exc)
    return error_response(500, "internal_error", "internal error; this is a bug of Tunesmith, please report it")


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TunesmithError, _tunesmith_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _bug)


RETRY_AFTER = {"Retry-After": {"description": "seconds until a retry can succeed", "required": True,
                               "schema": {"type": "integer", "minimum": 1}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "the scheme to authenticate with", "required": True,
                                         "schema": {"type": "string", "const": "Bearer"}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, unknown or revoked API key", "headers": WWW_AUTHENTICATE},
    404: {"model": ErrorBody, "description": "no such resource for this key (another key's ids do not exist for it)"},
    422: {"model": ErrorBody, "description": "invalid parameter (field names it)"},
    429: {"model": ErrorBody, "description": "rate limit or daily quota exceeded", "headers": RETRY_AFTER},
    503: {"model": ErrorBody, "description": "a service the server needs is unavailable (e.g. the rate limiter's "
                                            "Redis)"},
}
WRONG_MEDIA_TYPE = {"model": ErrorBody, "description": "a Content-Type this operation does not read (field "
                                                      "Content-Type)"}
