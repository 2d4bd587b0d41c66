"""How the API is served: uvicorn with bounded header size and header, body and idle times.

Why a protocol subclass: uvicorn closes idle keep-alive connections (``timeout_keep_alive``),
but it has no deadline for a request's headers, so a client sending one header byte a
minute held a connection (and its memory) for ever; and its httptools protocol has no cap
on their size. ``HeaderDeadline`` closes a connection whose request headers are not
complete ``header_timeout_s`` after it opened or after its previous response, and answers
431 to headers over ``MAX_HEADER_BYTES``. The body's deadline is the ASGI ``BodyLimits``
middleware's (copilot/api/limits.py), which can answer 408 with a problem body; a
connection without complete headers gets no answer, only closed.

Why httptools rather than h11: under 20 streaming runs, h11's pure-Python parsing and
writing was 17 % of the API process's interpreter time (py-spy, ``--gil``); with uvicorn's
httptools protocol the first-byte overhead fell 6–12 % at p95 in the same load, interleaved
runs (docs/benchmarks.md, "API under load").
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from copilot.config import Settings

KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 64 * 1024  # an Entra token may be 16 KB; uvicorn's h11 default is 16 KB
_TOO_LARGE_TEXT = b"Request headers are over 64 KB.\n"
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8"
    b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
    % (len(_TOO_LARGE_TEXT), _TOO_LARGE_TEXT)
)


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a deadline and a size cap for each request's
    headers."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes = 0  # received since the request began, until its headers are complete
    _in_headers = True
    _refused = False  # answered 431: nothing more is read

    # uvicorn's own signature (it narrows asyncio's BaseTransport the same way).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_headers and not self._refused:  # all of it was (unfinished) headers
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers, self._header_bytes = False, 0
        self._disarm()
        if sum(len(k) + len(v) + 4 for k, v in self.headers) > MAX_HEADER_BYTES:
            self._refuse()  # came in one piece with the end of the headers
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._in_headers, self._header_bytes = True, 0
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _refuse(self) -> None:
        self._refused = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(TOO_LARGE)
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if self._in_headers and not busy and not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(
    app: Any, settings: Settings, host: str, port: int, **extra: Any
) -> uvicorn.Config:
    """The uvicorn configuration every server of the API uses (``copilot serve``, tests)."""
    protocol = type(
        "HeaderDeadlineHttp",
        (HeaderDeadline,),
        {"header_timeout_s": settings.request_header_timeout_s},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=KEEP_ALIVE_S,
        **extra,
    )


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[None]:
    """Let ``finally`` blocks run when uvicorn stops on SIGTERM.

    uvicorn shuts down gracefully on SIGTERM and then raises the signal again under the
    handler that was there before it started; with the default one the process ended right
    there, so the code after ``server.run()`` (removing the discovery file, stopping the
    model process and the API workers this service started) never ran. Under this handler
    the signal becomes ``SystemExit(0)``, which unwinds through them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (uvicorn then installs none either)
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
