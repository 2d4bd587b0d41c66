"""A stand-in Bot Connector service for bot tests: real HTTP on 127.0.0.1.

    with BotConnector() as connector:               # connector.url == "http://127.0.0.1:PORT/"
        connector.files["report.docx"] = data        # served at connector.file_url("report.docx")
        post an activity with serviceUrl=connector.url to the bot...
        connector.sent                               # every activity the bot POSTed, in order
        connector.created                            # conversations the bot opened (1:1 chats)

It answers what the Agents SDK's connector client calls: send and reply
(``POST /v3/conversations/{id}/activities[/{activityId}]``), update (``PUT``), and create a
conversation (``POST /v3/conversations``); ``refuse_create`` makes the last one answer 403
as Teams does when the app is not installed for the user.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Sent:
    conversation_id: str
    reply_to: str | None
    activity: dict[str, Any]
    authorization: str | None

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for a in self.activity.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


class BotConnector:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.created: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []
        self.refuse_create = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> BotConnector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def file_url(self, name: str) -> str:
        return f"{self.url}files/{name}"

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()
            self.created.clear()
            self.downloads.clear()
        self.refuse_create = False

    def in_conversation(self, conversation_id: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.conversation_id == conversation_id]

    def wait_for(self, predicate: Callable[[list[Sent]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if predicate(list(self.sent)):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not send what was expected: {self.sent!r}")
            time.sleep(0.02)

    # -- what the handler calls

    def _record(self, conversation_id: str, reply_to: str | None, body: Any, auth: str | None):
        with self._lock:
            self.sent.append(Sent(conversation_id, reply_to, body, auth))
            return {"id": f"activity-{len(self.sent)}"}

    def _create(self, body: Any) -> tuple[int, Any]:
        if self.refuse_create:
            return 403, {"error": {"code": "Forbidden", "message": "app not installed"}}
        with self._lock:
            self.created.append(body)
            return 201, {"id": f"a:private-{len(self.created)}", "activityId": "first"}


def _handler_for(connector: BotConnector) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.connector = connector  # type: ignore[attr-defined]
    return Handler


class _Handler(BaseHTTPRequestHandler):
    connector: BotConnector
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/files/"):
            name = unquote(self.path.removeprefix("/files/"))
            self.connector.downloads.append(name)
            data = self.connector.files.get(name)
            if data is None:
                return self._send(404, {"error": "no such file"})
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        self._activity()

    def do_PUT(self) -> None:
        self._activity()

    def _activity(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._send(413, {"error": "too large"})
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._send(400, {"error": "not JSON"})
        parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]
        auth = self.headers.get("Authorization")
        if parts == ["v3", "conversations"] and self.command == "POST":
            return self._send(*self.connector._create(body))
        if (
            len(parts) in (4, 5)
            and parts[:2] == ["v3", "conversations"]
            and parts[3] == ("activities")
        ):
            reply_to = parts[4] if len(parts) == 5 else None
            return self._send(200, self.connector._record(parts[2], reply_to, body, auth))
        self._send(404, {"error": f"no route {self.path}"})

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
