"""Request size and time limits, and per-user rate limits.

The body limits are pure ASGI so they work for every route, uploads included, and count
the bytes actually received: a client that lies in Content-Length (or sends chunked
bodies with none) is stopped at the limit, not after the whole body is buffered, and a
client that sends its body a byte at a time is stopped at a deadline, not held open for as
long as it likes. Both answers close the connection: the rest of the body is not read. So
does any answer given before the body was read to its end (a 401, a 404): uvicorn would
otherwise keep discarding whatever body bytes still come, with no deadline.

Why the refusal is sent from inside ``receive``: FastAPI turns any exception raised while
it reads a body into a 400 ("error parsing the body"), so raising alone gave oversized
chunked bodies a 400. The limit answers 413 itself first and drops whatever the route sends
after that.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from copilot.api.problems import Problem
from copilot.errors import CopilotError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
CLOSE = {"Connection": "close"}


class BodyRefused(Exception):
    """The body broke a limit; the refusal has been sent (or the response had started)."""


class BodyLimits:
    """Refuse request bodies over ``max_bytes`` (413) or slower than ``timeout_s`` in all
    (408) before a route sees them."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 60.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._too_large().response()(scope, receive, send)
                return
        received = 0
        body_done = declared in (None, b"0") and b"transfer-encoding" not in headers
        started = refused = False
        deadline = time.monotonic() + self.timeout_s

        async def refuse(problem: Problem) -> None:
            nonlocal refused
            if not started and not refused:
                refused = True
                await problem.response()(scope, receive, send)
            raise BodyRefused

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done or refused:  # after the body: disconnect watching, unbounded
                return await receive()
            message: Message | None = None
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                message = await receive()
            if message is None:
                await refuse(self._too_slow())
                raise AssertionError("unreachable")  # refuse always raises
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    await refuse(self._too_large())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the route's own answer to the cut-off body: already answered
            if message["type"] == "http.response.start":
                started = True
                if not body_done:  # answered without reading the whole body (a 401, a 404)
                    close = [(b"connection", b"close")]  # else the rest could trickle in for ever
                    message = {**message, "headers": [*message.get("headers", []), *close]}
            await send(message)

        with contextlib.suppress(BodyRefused):
            await self.app(scope, limited_receive, tracking_send)

    def _too_large(self) -> Problem:
        mb = self.max_bytes / (1024 * 1024)
        return Problem(413, f"The request is larger than the {mb:g} MB limit.", headers=CLOSE)

    def _too_slow(self) -> Problem:
        return Problem(
            408, f"The request body took longer than {self.timeout_s:g} s to arrive.",
            headers=CLOSE,
        )  # fmt: skip


class RateLimited(CopilotError):
    """A person used up their requests for the minute; ``Retry-After`` says when to retry."""

    kind = "rate_limited"
    status = 429
    title = "Slow down a little"

    def __init__(self, wait_s: int) -> None:
        super().__init__(
            f"Too many requests: wait {wait_s} s and try again (the limit is per person, "
            "per minute)."
        )
        self.headers = {"Retry-After": str(wait_s)}


class RateLimiter:
    """A token bucket per user: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, last time)
        self.lock = threading.Lock()

    def check(self, user: str) -> None:
        """Take one token for ``user`` or raise ``RateLimited`` (429 with Retry-After)."""
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.get(user, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = math.ceil((1.0 - tokens) / self.rate)
                self.buckets[user] = (tokens, now)
                raise RateLimited(wait)
            self.buckets[user] = (tokens - 1.0, now)
            if len(self.buckets) > 100_000:  # forget idle users rather than grow forever
                cutoff = now - 3600
                self.buckets = {u: v for u, v in self.buckets.items() if v[1] > cutoff}
