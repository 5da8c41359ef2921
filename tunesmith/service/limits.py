"""Per-key request rate limit (sliding window, in this process) and the daily audio-seconds quota."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import deque

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunesmith.service.errors import TooManyRequests, error_response


class SlidingWindowLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds (counted per process)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: int, now: float | None = None) -> None:
        """Count one request of ``key_id``; TooManyRequests (with Retry-After) when over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key_id, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                retry = math.ceil(hits[0] + self.window - now)
                raise TooManyRequests(f"rate limit of {self.limit} requests per {self.window:g} s exceeded; "
                                      f"retry in {retry} s", retry_after=retry)
            hits.append(now)


def seconds_to_utc_midnight(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((midnight - now).total_seconds()))


def check_quota(*, used: float, wanted: float, quota: float) -> None:
    """TooManyRequests (code ``quota_exceeded``, Retry-After until UTC midnight) if ``used + wanted > quota``."""
    if used + wanted > quota + 1e-9:
        raise TooManyRequests(
            f"daily quota of {quota:g} audio seconds exceeded: {used:.1f} s used today, this piece needs about "
            f"{wanted:.1f} s; the quota resets at 00:00 UTC", retry_after=seconds_to_utc_midnight(),
            code="quota_exceeded")


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, "payload_too_large", self._message(int(declared)))
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self._message(seen))
            return message

        await self.app(scope, counting_receive, send)

    def _message(self, size: int) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes"
