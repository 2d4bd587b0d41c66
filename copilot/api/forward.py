"""An API worker hands the routes it cannot serve to the service's first process.

With ``copilot serve --workers N`` every process accepts connections on the service's port,
so any request may land on a worker. Runs, searches, skills, run history and the pages need only
the state store, the model and index reads, which a worker has (``copilot.index.remote``).
What writes the index or lives in the first process's memory does not: sync jobs and their
events, fine-tuning jobs, the CLI's routes (its sync, its view of the service), dev mode's
user list, the Teams bot's conversations and the index routes themselves (a worker's own
index is the owner's). ``ForwardToOwner`` passes those requests on,
streamed both ways (a sync's event stream stays live), to the owner's loopback address.

The owner must still see who really called: the admin token and dev mode are honoured
only from this machine, judged by the client's address. The worker therefore sends the
client's address in ``X-Copilot-Client`` with proof that it is a worker (the service's
local admin token in ``X-Copilot-Worker``), and ``ClientFromWorker`` on the owner puts that
address back in the request's scope; both headers are removed from every other request,
so nobody else can claim an address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Any]
OWNER_ONLY = ("/v1/sync", "/v1/admin/finetune", "/v1/cli", "/v1/dev", "/api/messages",
              "/internal")  # fmt: skip
CLIENT_HEADER = b"x-copilot-client"
WORKER_HEADER = b"x-copilot-worker"
# Hop-by-hop headers (RFC 9110 7.6.1): never passed on. ``Host`` is (dev mode and the admin
# token check it), and so is ``Content-Length`` (the body is passed on unchanged).
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
        b"proxy-authorization", b"proxy-authenticate"}  # fmt: skip
TIMEOUT = httpx.Timeout(connect=5.0, read=None, write=60.0, pool=30.0)  # streams may idle


def owner_only(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in OWNER_ONLY)


class ForwardToOwner:
    """ASGI middleware of a worker: owner-only routes go to the owner at ``owner_url``."""

    def __init__(self, app: ASGIApp, owner_url: str, token: str) -> None:
        self.app = app
        self.owner_url = owner_url.rstrip("/")
        self.token = token
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing(receive), send)
            return
        if scope["type"] != "http" or not owner_only(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, trust_env=False)
        dropped = _HOP | {CLIENT_HEADER, WORKER_HEADER}  # the worker sets its own below
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in dropped]
        client = scope.get("client")
        headers += [(CLIENT_HEADER, (client[0] if client else "").encode()),
                    (WORKER_HEADER, self.token.encode())]  # fmt: skip
        query = scope.get("query_string") or b""
        url = self.owner_url + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if query:
            url += "?" + query.decode("latin-1")

        async def body() -> Any:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        request = self._client.build_request(scope["method"], url, headers=headers, content=body())
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            text = f"The service's first process did not answer ({type(exc).__name__}).\n"
            await _plain(send, 502, text)
            return
        # The request body has been sent: from now on the client can only hang up, and a
        # client that does must not leave an event stream relayed to nobody.
        relay = asyncio.ensure_future(_relay(response, send))
        gone = asyncio.ensure_future(_hung_up(receive))
        try:
            await asyncio.wait({relay, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, gone):
                task.cancel()
            await asyncio.gather(relay, gone, return_exceptions=True)
            await response.aclose()
        if relay.done() and not relay.cancelled():
            relay.result()  # the relay's own error, if it had one

    def _closing(self, receive: Any) -> Any:
        """``receive`` of the app's lifespan, closing the connections to the owner when the
        worker shuts down."""

        async def closing() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and self._client is not None:
                client, self._client = self._client, None
                await client.aclose()
            return message

        return closing


class ClientFromWorker:
    """ASGI middleware of the owner: a request a worker forwarded gets the real client's
    address back; the two headers are dropped from every request."""

    def __init__(self, app: ASGIApp, is_worker: Callable[[str], bool]) -> None:
        self.app = app
        self.is_worker = is_worker  # whether a proof is the service's local admin token

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            found = dict((k.lower(), v) for k, v in scope["headers"]
                         if k.lower() in (CLIENT_HEADER, WORKER_HEADER))  # fmt: skip
            if found:
                scope = dict(scope)
                scope["headers"] = [(k, v) for k, v in scope["headers"]
                                    if k.lower() not in (CLIENT_HEADER, WORKER_HEADER)]  # fmt: skip
                proof = found.get(WORKER_HEADER, b"").decode("latin-1")
                if proof and self.is_worker(proof):
                    port = scope["client"][1] if scope.get("client") else 0
                    scope["client"] = (found.get(CLIENT_HEADER, b"").decode("latin-1"), port)
        await self.app(scope, receive, send)


async def _relay(response: httpx.Response, send: Any) -> None:
    out = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _HOP]
    await send({"type": "http.response.start", "status": response.status_code, "headers": out})
    async for chunk in response.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _hung_up(receive: Any) -> None:
    """Returns when the client has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _plain(send: Any, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
