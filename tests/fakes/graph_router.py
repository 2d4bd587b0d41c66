"""One fake Graph address in front of one fake mailbox per person, for the sign-in tests.

Tokens from tests/entra_fake.py name their owner: ``graph-token.<oid>.<n>`` (delegated:
device code, on-behalf-of) and ``app-token.<tenant>.<n>`` (app-only, which says whose
mailbox in the path: ``/users/<upn>/…``). The router picks the mailbox (a ``FakeGraph``
from tests/graph_server.py that is not served itself) by that owner, hands it the request
with the mailbox's own token, and records what the caller really sent in ``requests``.
An unknown or ``revoked`` token gets Graph's 401. Links in answers (and the pre-authenticated
download URLs of drive items) point back at the router.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes.graph_server import FakeGraph


class GraphRouter:
    def __init__(self) -> None:
        self.boxes: dict[str, FakeGraph] = {}  # an oid (delegated) or a UPN (app-only)
        self.requests: list[tuple[str, str]] = []  # (path, bearer token as sent)
        self.revoked: set[str] = set()  # tokens Graph refuses from now on (expired, revoked)
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self.base = ""

    def box(self, owner: str) -> FakeGraph:
        """The mailbox (and drive) of ``owner``, made on first use."""
        if owner not in self.boxes:
            self.boxes[owner] = FakeGraph(page_size=10)
            self.boxes[owner].base = self.base
        return self.boxes[owner]

    @property
    def url(self) -> str:
        return f"{self.base}/v1.0"

    def serve(self) -> GraphRouter:
        router = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                router._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        for box in self.boxes.values():
            box.base = self.base
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    def tokens(self) -> set[str]:
        with self.lock:
            return {token for _, token in self.requests}

    def _owner(self, token: str, path: str) -> str | None:
        kind, _, rest = token.partition(".")
        if kind == "graph-token":
            return rest.split(".")[0]
        if kind == "app-token":
            parts = unquote(urlsplit(path).path).split("/")
            return parts[3] if len(parts) > 3 and parts[2] == "users" else None
        return None

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        token = req.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            self.requests.append((req.path, token))
        if req.path.startswith("/download/"):  # no token: the URL itself is the permission
            item = req.path.rsplit("/", 1)[-1]
            box = next((b for b in self.boxes.values() if item in b.items), None)
            return (box or FakeGraph())._handle(req)
        owner = self._owner(token, req.path)
        box = self.boxes.get(owner or "")
        if box is None or token in self.revoked:
            body = {"error": {"code": "InvalidAuthenticationToken", "message": "Unknown token."}}
            data = json.dumps(body).encode()
            req.send_response(401)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
            return
        req.headers.replace_header("Authorization", f"Bearer {box.token}")
        box._handle(req)
