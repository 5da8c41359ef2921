"""Per-key request rate limit (a sliding window) and the daily audio-seconds quota.

The rate limit is counted in this process (:class:`SlidingWindowLimiter`) or, when the service has a Redis
(``rate_limit_url``, else a ``redis://`` queue URL), in Redis (:class:`RedisSlidingWindowLimiter`), so that
every API process behind a load balancer shares one budget per key. :func:`make_limiter` picks one from the
settings. The daily quota needs nothing of the kind: usage lives in the database every process shares.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import uuid
from collections import deque
from typing import Any, Protocol

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunesmith.config import Settings
from tunesmith.errors import DependencyError
from tunesmith.service.errors import TooManyRequests, error_response


class Limiter(Protocol):
    """What the routes need of a rate limiter: count a request of a key, or raise TooManyRequests."""

    def check(self, key_id: int) -> None: ...

    def close(self) -> None: ...


def _too_many(limit: int, window: float, retry: float) -> TooManyRequests:
    retry_after = max(1, math.ceil(retry))
    return TooManyRequests(f"rate limit of {limit} requests per {window:g} s exceeded; retry in {retry_after} s",
                           retry_after=retry_after)


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
                raise _too_many(self.limit, self.window, hits[0] + self.window - now)
            hits.append(now)

    def close(self) -> None:
        pass


class RedisSlidingWindowLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds, counted in Redis for every process.

    Each key has a sorted set of its requests' times (Redis server time, so the clocks of the API machines do
    not matter); one Lua script drops the old entries, counts, and adds the new one atomically."""

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


def make_limiter(settings: Settings) -> Limiter:
    """The rate limiter ``settings`` ask for: in Redis when a Redis URL is configured, else in this process."""
    url = settings.rate_limit_url
    if url is None and (settings.queue_url or "").startswith(("redis://", "rediss://")):
        url = settings.queue_url
    if url is None:
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
