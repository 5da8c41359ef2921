"""Per-key request rate limit (a sliding window) and the daily audio-seconds quota.

The rate limit is counted in Redis (:class:`RedisSlidingWindowLimiter`) when the service has one
(``rate_limit_url``, else a ``redis://`` queue URL), so that every API process behind a load balancer shares
one budget per key; else in a table in shared memory (:class:`SharedWindowLimiter`) that the API processes of
one `tunesmith serve` share; an app on its own counts in its process (:class:`SlidingWindowLimiter`).
:func:`make_limiter` picks one. The daily quota needs nothing of the kind: usage lives in the database every
process shares.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import struct
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Protocol

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunesmith.config import Settings
from tunesmith.errors import DependencyError
from tunesmith.service.errors import TooManyRequests, error_response
from tunesmith.service.shared_files import FileLock, mapped_table

log = logging.getLogger("tunesmith.service")


class Limiter(Protocol):
    """What the routes need of a rate limiter: count a request of a key, or raise TooManyRequests. ``local``:
    it answers in microseconds without a network round trip (the routes call it on the event loop)."""

    local: bool

    def check(self, key_id: int) -> None: ...

    def close(self) -> None: ...


def _too_many(limit: int, window: float, retry: float) -> TooManyRequests:
    retry_after = max(1, math.ceil(retry))
    return TooManyRequests(f"rate limit of {limit} requests per {window:g} s exceeded; retry in {retry_after} s",
                           retry_after=retry_after)


class SlidingWindowLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds (counted per process)."""

    local = True

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
                raise _too_many(self.limit, self.window, hits[0] + self.window - now)
            hits.append(now)

    def close(self) -> None:
        pass


class SharedWindowLimiter:
    """At most about ``limit`` requests per key in any ``window`` seconds, counted for every process that opens
    the same ``path`` (the API processes of one `tunesmith serve`).

    A sliding-window counter, the approximation large rate limiters use: each key keeps the count of the
    current fixed window and of the one before, and a request is allowed while ``before x (share of the
    window still to come) + now`` stays under the limit (exact for evenly spread requests, never more than
    the limit within one fixed window). The counters live in a memory-mapped table of :data:`SLOTS` keys
    (open addressing on the key id; a slot idle for two windows is reused), guarded by an exclusive
    ``flock`` of the file and a thread lock (:class:`~tunesmith.service.shared_files.FileLock`); the clock is
    the machine's monotonic clock, which all processes share. A table so full that a key finds no slot
    within :data:`PROBES` lets the request through and says so in the log, rather than refusing a key for
    others' traffic."""

    local = True
    SLOTS = 16_384
    PROBES = 64
    RECORD = struct.Struct("<qqii")  # key id (0: never used), window number, count before, count now

    def __init__(self, path: Path, limit: int, window: float = 60.0) -> None:
        self.path = Path(path)
        self.limit = limit
        self.window = window
        self._table = mapped_table(self.path, self.SLOTS * self.RECORD.size)  # zeros: every slot unused
        self._lock = FileLock(self.path)

    def check(self, key_id: int, now: float | None = None) -> None:
        """Count one request of ``key_id``; TooManyRequests (with Retry-After) when over the limit."""
        now = time.monotonic() if now is None else now
        current = int(now // self.window)
        elapsed = now / self.window - current  # share of the current window gone by
        with self._lock:
            slot = self._slot(key_id, current)
            if slot is None:
                log.warning("rate-limit table %s is full: key %d not counted", self.path, key_id)
                return
            offset = slot * self.RECORD.size
            stored_key, stored_window, before, now_count = self.RECORD.unpack_from(self._table, offset)
            if stored_key != key_id or stored_window < current - 1:
                before, now_count = 0, 0
            elif stored_window == current - 1:
                before, now_count = now_count, 0
            if before * (1.0 - elapsed) + now_count + 1 > self.limit:
                raise _too_many(self.limit, self.window, self._wait(before, now_count, elapsed))
            self.RECORD.pack_into(self._table, offset, key_id, current, before, now_count + 1)

    def _slot(self, key_id: int, current: int) -> int | None:
        """The slot of ``key_id``, else the first free one on its probe path (unused, or idle two windows)."""
        free = None
        start = (key_id * 2654435761) % self.SLOTS
        for step in range(self.PROBES):
            slot = (start + step) % self.SLOTS
            stored_key, stored_window, _, _ = self.RECORD.unpack_from(self._table, slot * self.RECORD.size)
            if stored_key == key_id:
                return slot
            if free is None and (stored_key == 0 or stored_window < current - 1):
                free = slot
            if stored_key == 0:
                break
        return free

    def _wait(self, before: int, now_count: int, elapsed: float) -> float:
        """Seconds until one more request fits: while the window before still counts, or in the next one."""
        if now_count + 1 <= self.limit and before > 0:
            return self.window * (1.0 - elapsed - (self.limit - 1 - now_count) / before)
        return self.window * (1.0 - elapsed + max(0.0, 1.0 - (self.limit - 1) / now_count))

    def close(self) -> None:
        self._table.close()
        self._lock.close()


class RedisSlidingWindowLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds, counted in Redis for every process.

    Each key has a sorted set of its requests' times (Redis server time, so the clocks of the API machines do
    not matter); one Lua script drops the old entries, counts, and adds the new one atomically."""

    local = False
    PREFIX = "tunesmith:ratelimit:"
    SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return '0'
"""

    def __init__(self, url: str, limit: int, window: float = 60.0) -> None:
        import redis

        self.url = url
        self.limit = limit
        self.window = window
        self._client: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._client.register_script(self.SCRIPT)

    def check(self, key_id: int) -> None:
        """Count one request of ``key_id``; TooManyRequests (with Retry-After) when over the limit."""
        import redis

        try:
            wait_us = float(self._script(keys=[f"{self.PREFIX}{key_id}"],
                                         args=[self.limit, round(self.window * 1e6), uuid.uuid4().hex]))
        except redis.RedisError as exc:
            raise DependencyError(f"the rate limiter's Redis at {_safe(self.url)} is not answering: {exc}") from exc
        if wait_us > 0:
            raise _too_many(self.limit, self.window, wait_us / 1e6)

    def close(self) -> None:
        self._client.close()


def _safe(url: str) -> str:
    """A URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    return f"{head.split('://')[0]}://***@{tail}" if at else url


def make_limiter(settings: Settings, shared: Path | None = None) -> Limiter:
    """The rate limiter ``settings`` ask for: in Redis when a Redis URL is configured, else in the shared table
    ``shared`` (the API processes of one `serve`), else in this process."""
    url = settings.rate_limit_url
    if url is None and (settings.queue_url or "").startswith(("redis://", "rediss://")):
        url = settings.queue_url
    if url is None:
        if shared is not None:
            return SharedWindowLimiter(shared, settings.requests_per_minute)
        return SlidingWindowLimiter(settings.requests_per_minute)
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise DependencyError("a Redis rate limit needs the redis package: pip install redis") from exc
    return RedisSlidingWindowLimiter(url, settings.requests_per_minute)


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
            response = error_response(413, "payload_too_large", self._message(int(declared)), "body")
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
