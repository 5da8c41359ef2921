"""Answering with a stored artifact: whole, or the byte range a request asks for (RFC 9110 14).

From the data directory the file is answered by Starlette's ``FileResponse`` (ranges, multipart ranges,
``ETag``/``If-Range``). From an object store the bytes are streamed through this server with the request's
single range passed on to the store (``GET`` with ``Range``), so the first byte leaves as soon as the store
sends it and a seek in a player fetches only what it plays; a request for several ranges (rare) is answered
from a local copy of the object, the same way as from the data directory. Streaming, not a redirect to a
presigned URL: a client then needs to reach only the API (not the object store's internal address), and the
statuses and headers stay the ones the OpenAPI document declares.
"""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.responses import MalformedRangeHeader
from starlette.responses import RangeNotSatisfiable as StarletteRangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from tunesmith.service.errors import BadRange, NotFound, RangeNotSatisfiable
from tunesmith.service.storage import ArtifactStore, StoredFile


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges (start, stop) a Range header asks for; None when it must be ignored (no header, or a unit
    other than bytes: RFC 9110 14.2 says a server MUST ignore a range unit it does not understand). A malformed
    or unsatisfiable bytes range is a JSON error (400 or 416)."""
    if header is None or header.partition("=")[0].strip().lower() != "bytes":
        return None
    try:
        return FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as exc:
        raise BadRange(f"malformed Range header {header!r}: {exc.content}", field="Range") from None
    except StarletteRangeNotSatisfiable:
        raise RangeNotSatisfiable(f"Range {header!r} is outside the file of {size} bytes", size=size) from None


class WholeFile(FileResponse):
    """A file answered whole: the request's Range header (of a unit this server ignores) is not looked at."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name.lower() != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)


def stored_response(store: ArtifactStore, stored: StoredFile, range_header: str | None, *, filename: str,
                    inline: bool = False, missing: str, field: str = "id") -> Response:
    """The answer with ``stored``'s bytes (all, or the range asked for); 404 with ``missing`` as the message
    (naming ``field``) when the store has no such object."""
    disposition = "inline" if inline else "attachment"
    size = store.size(stored.sha256, stored.ext)
    if size is None:
        raise NotFound(missing, field=field)
    ranges = parse_range(range_header, size)
    if not store.shared or (ranges is not None and len(ranges) > 1):
        path = store.local(stored.sha256, stored.ext)
        if path is None:
            raise NotFound(missing, field=field)
        answer = FileResponse if ranges is not None else WholeFile
        return answer(path, media_type=stored.content_type, filename=filename, content_disposition_type=disposition)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{stored.sha256}"',
               "Content-Disposition": f'{disposition}; filename="{filename}"'}
    start, stop = ranges[0] if ranges else (0, size)
    headers["Content-Length"] = str(stop - start)
    status = 200
    if ranges:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    body = store.read(stored.sha256, stored.ext, start, stop)
    return StreamingResponse(body, status_code=status, media_type=stored.content_type, headers=headers)
