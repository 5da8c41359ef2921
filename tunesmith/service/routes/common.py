"""Pieces the routes share: reading an upload up to the size limit, and following a job as server-sent events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from tunesmith.service.db import FINISHED
from tunesmith.service.errors import NotFound

READ_CHUNK = 1 << 16
EVENT_POLL_SECONDS = 0.2
EVENT_KEEPALIVE_SECONDS = 15.0
EVENT_MAX_SECONDS = 3600.0  # a stream ends by itself after an hour (reconnect to go on)


async def read_limited(file: UploadFile, limit: int) -> bytes:
    """The upload's bytes, reading at most one chunk past ``limit`` (the caller answers 413 when longer)."""
    data = bytearray()
    while chunk := await file.read(READ_CHUNK):
        data += chunk
        if len(data) > limit:
            break
    return bytes(data)


async def job_events(fetch: Callable[[], Any], done: Callable[[Any], dict], job_id: str,
                     request: Request) -> AsyncIterator[str]:
    """`progress` events while a job (any record with ``status`` and ``progress``) changes, then one `done`
    event with ``done(record)``; keep-alives between; ends when the client goes or after an hour."""
    started = last_sent = time.monotonic()
    last: tuple[str, float] | None = None
    yield "retry: 2000\n\n"
    while time.monotonic() - started < EVENT_MAX_SECONDS:
        try:
            record = await run_in_threadpool(fetch)
        except NotFound:  # deleted meanwhile
            yield sse_event("done", {"id": job_id, "status": "deleted"})
            return
        state = (record.status, round(record.progress, 3))
        if state != last:
            last, last_sent = state, time.monotonic()
            yield sse_event("progress", {"id": record.id, "status": state[0], "progress": state[1]})
        if record.status in FINISHED:
            yield sse_event("done", done(record))
            return
        if time.monotonic() - last_sent > EVENT_KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_SECONDS)
    yield sse_event("timeout", {"id": job_id, "message": "stream limit reached; reconnect to follow on"})


def sse_event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
