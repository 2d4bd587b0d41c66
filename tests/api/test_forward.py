"""What an API worker passes on to the service's first process (``copilot.api.forward``),
against two real HTTP servers: an "owner" with an endless event stream, and a worker in
front of it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from copilot.api.forward import ForwardToOwner
from tests.fakes.api_server import serving

TOKEN = "w" * 40


@pytest.fixture
def owner() -> Iterator[tuple[str, threading.Event, list[dict[str, str]]]]:
    """An owner whose ``/v1/sync/events`` streams for ever; the event says the stream ended."""
    ended = threading.Event()
    seen: list[dict[str, str]] = []

    async def events(request: Request) -> StreamingResponse:
        seen.append(dict(request.headers))

        async def forever() -> AsyncIterator[bytes]:
            try:
                n = 0
                while True:
                    n += 1
                    yield f"event: progress\ndata: {n}\n\n".encode()
                    await asyncio.sleep(0.02)
            finally:
                ended.set()

        return StreamingResponse(forever(), media_type="text/event-stream")

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"body": (await request.body()).decode(), "query": request.url.query})

    app = Starlette(routes=[Route("/v1/sync/events", events),
                            Route("/v1/sync/echo", echo, methods=["POST"])])  # fmt: skip
    with serving(app) as url:
        yield url, ended, seen


@pytest.fixture
def worker(owner: tuple[str, threading.Event, list[dict[str, str]]]) -> Iterator[str]:
    async def own(request: Request) -> PlainTextResponse:
        return PlainTextResponse("served by the worker")

    app = ForwardToOwner(Starlette(routes=[Route("/v1/skills", own)]), owner[0], TOKEN)
    with serving(app) as url:
        yield url


def test_owner_routes_are_passed_on_and_others_served_here(worker: str, owner) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=worker, timeout=10) as client:
        assert client.get("/v1/skills").text == "served by the worker"
        echoed = client.post("/v1/sync/echo?x=1", content=b"a" * 100_000)
        assert echoed.json() == {"body": "a" * 100_000, "query": "x=1"}


def test_a_client_that_hangs_up_ends_the_owners_stream(worker: str, owner) -> None:  # type: ignore[no-untyped-def]
    _, ended, seen = owner
    with (
        httpx.Client(base_url=worker, timeout=10) as client,
        client.stream("GET", "/v1/sync/events", headers={"X-Copilot-Client": "10.9.9.9"}) as r,
    ):
        lines = r.iter_lines()
        assert next(lines) == "event: progress"
    # The worker hung up on the owner too: its endless generator was closed.
    assert ended.wait(5.0), "the owner kept streaming to a client that had gone"
    # The owner heard who the client was, with the worker's proof (not the client's claim).
    assert seen[0]["x-copilot-client"] == "127.0.0.1"
    assert seen[0]["x-copilot-worker"] == TOKEN
