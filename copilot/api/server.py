"""How the API is served: uvicorn with bounded header size and header, body and idle times.

Why a protocol subclass: uvicorn closes idle keep-alive connections (``timeout_keep_alive``)
and caps the header size (``h11_max_incomplete_event_size``), but it has no deadline for a
request's headers, so a client sending one header byte a minute held a connection (and its
memory) for ever. ``HeaderDeadline`` closes a connection whose request headers are not
complete ``header_timeout_s`` after it opened or after its previous response. The body's
deadline is the ASGI ``BodyLimits`` middleware's (copilot/api/limits.py), which can answer
408 with a problem body; a connection without complete headers gets no answer, only closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from copilot.config import Settings

KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 64 * 1024  # an Entra token may be 16 KB; uvicorn's default is 16 KB in all


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's headers."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    # uvicorn's own signature (it narrows asyncio's BaseTransport the same way).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

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
        if self.conn.their_state is h11.IDLE and not busy and not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(
    app: Any, settings: Settings, host: str, port: int, **extra: Any
) -> uvicorn.Config:
    """The uvicorn configuration every server of the API uses (``copilot serve``, tests)."""
    protocol = type(
        "HeaderDeadlineH11",
        (HeaderDeadline,),
        {"header_timeout_s": settings.request_header_timeout_s},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        **extra,
    )
