"""Request size limits and per-user rate limits.

The size limit is pure ASGI so it works for every route, uploads included, and counts
the bytes actually received: a client that lies in Content-Length (or sends chunked
bodies with none) is stopped at the limit, not after the whole body is buffered.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from copilot.api.problems import Problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before a route sees them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(scope, receive, send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        mb = self.max_bytes / (1024 * 1024)
        response = Problem(413, f"The request is larger than the {mb:g} MB limit.").response()
        await response(scope, receive, send)


class RateLimiter:
    """A token bucket per user: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, last time)
        self.lock = threading.Lock()

    def check(self, user: str) -> None:
        """Take one token for ``user`` or raise a 429 problem with Retry-After."""
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.get(user, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = math.ceil((1.0 - tokens) / self.rate)
                self.buckets[user] = (tokens, now)
                raise Problem(
                    429,
                    f"Too many requests: wait {wait} s and try again.",
                    headers={"Retry-After": str(wait)},
                )
            self.buckets[user] = (tokens - 1.0, now)
            if len(self.buckets) > 100_000:  # forget idle users rather than grow forever
                cutoff = now - 3600
                self.buckets = {u: v for u, v in self.buckets.items() if v[1] > cutoff}
