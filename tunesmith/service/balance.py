"""Keep the API processes of one `serve` evenly loaded: one holding more than its share of the keep-alive
connections closes one of them after answering, and the client's next connection may land anywhere.

SO_REUSEPORT hands each *new* connection to a process by a hash of its addresses, so 32 clients on two processes
split 13 / 19 as often as 16 / 16. Each process answers as many requests per second as its core allows, so the
clients of the fuller one wait longer in proportion (measured: 67 ms against 100 ms on average per request, with
the p99 set by the fuller process). Each process writes its connection count into a shared table
(``<data dir>/run/connections``, one slot per API process); after a request, a process with more than
``share + 1`` connections answers with ``Connection: close`` (HTTP/1.1's way to say "reconnect"), at most once
every :data:`MIN_GAP_SECONDS`.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunesmith.service.shared_files import mapped_table

MIN_GAP_SECONDS = 0.02
SLOT = struct.Struct("<q")


class ConnectionBalance:
    """Process ``index`` of ``processes`` sharing the table at ``path``; ``count()`` is its open connections."""

    def __init__(self, path: Path, index: int, processes: int, count: Callable[[], int] = lambda: 0) -> None:
        self.index = index
        self.processes = processes
        self.count = count
        self._table = mapped_table(path, processes * SLOT.size)
        SLOT.pack_into(self._table, index * SLOT.size, 0)  # not the count of a process this one replaces
        self._last = 0.0

    def over_share(self) -> bool:
        """Publish this process's count; True (at most every MIN_GAP_SECONDS) when it holds more than its share
        of all the server's connections by two or more."""
        mine = self.count()
        SLOT.pack_into(self._table, self.index * SLOT.size, mine)
        if self.processes < 2:
            return False
        total = sum(SLOT.unpack_from(self._table, i * SLOT.size)[0] for i in range(self.processes))
        now = time.monotonic()
        if mine * self.processes > total + self.processes and now - self._last > MIN_GAP_SECONDS:
            self._last = now
            return True
        return False

    def close(self) -> None:
        self._table.close()


class BalanceMiddleware:
    """Adds ``Connection: close`` to the answer when :meth:`ConnectionBalance.over_share` says so."""

    def __init__(self, app: ASGIApp, balance: ConnectionBalance) -> None:
        self.app = app
        self.balance = balance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.balance.over_share():
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
