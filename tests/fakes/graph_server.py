"""A fake Microsoft Graph on 127.0.0.1, for the mail and drive connector tests and bench.

It serves the documented JSON shapes of the endpoints the connectors call (mail folders,
``messages/delta``, a message's ``$value`` MIME, ``drive/root/delta``, item ``content``
with a 302 to a download URL, item ``permissions``) from an in-memory mailbox and drive
the test edits between syncs. Delta rounds are keyed by a change sequence: a deltaLink
remembers the last change it covered, and a nextLink the last (sequence, id) served, so a
change made mid-round is picked up by the next round, never lost.

Fault controls, as Graph documents them: ``throttle`` (429 + Retry-After), ``gone_next_delta``
(410 on the next delta-token use), ``stall`` (a slow answer), ``expire_token`` (401
InvalidAuthenticationToken until the client fetches ``token`` again) and ``hold_after``
(requests past a count block, so a test can kill a client at a known point).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

WELL_KNOWN = {"inbox": "Inbox", "sentitems": "Sent Items", "archive": "Archive",
              "junkemail": "Junk Email", "deleteditems": "Deleted Items"}  # fmt: skip
DRIVE_ID = "b!drive-1"
SHAREPOINT = "https://contoso.sharepoint.com/personal/ann/Documents"


@dataclass
class Message:
    id: str
    folder: str
    subject: str
    body: str
    sender: str = "bob@contoso.com"
    to: tuple[str, ...] = ("ann@contoso.com",)
    cc: tuple[str, ...] = ()
    received: datetime = field(default_factory=lambda: datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    conversation: str = "conv-1"
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    attached_message: tuple[str, str] | None = None  # (subject, body)
    seq: int = 0
    change: int = 0

    def mime(self) -> bytes:
        msg = EmailMessage()
        msg["From"], msg["To"] = self.sender, ", ".join(self.to)
        if self.cc:
            msg["Cc"] = ", ".join(self.cc)
        msg["Subject"], msg["Date"] = self.subject, format_datetime(self.received)
        msg["Message-ID"] = f"<{self.id}@fake.contoso.com>"
        msg.set_content(self.body)
        for name, ctype, data in self.attachments:
            main, sub = ctype.split("/", 1)
            msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
        if self.attached_message:
            inner = EmailMessage()
            inner["From"], inner["To"] = "carol@contoso.com", self.sender
            inner["Subject"] = self.attached_message[0]
            inner["Message-ID"] = f"<inner-{self.id}@fake.contoso.com>"
            inner.set_content(self.attached_message[1])
            msg.add_attachment(inner, filename=f"{self.attached_message[0]}.eml")
        return bytes(msg)

    def json(self) -> dict[str, Any]:
        def who(address: str) -> dict[str, Any]:
            return {"emailAddress": {"name": address.split("@")[0].title(), "address": address}}

        return {
            "@odata.etag": f'W/"{self.change_key}"',
            "id": self.id,
            "changeKey": self.change_key,
            "subject": self.subject,
            "receivedDateTime": self.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastModifiedDateTime": self.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hasAttachments": bool(self.attachments or self.attached_message),
            "conversationId": self.conversation,
            "parentFolderId": self.folder,
            "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(self.id)}",
            "from": who(self.sender),
            "toRecipients": [who(a) for a in self.to],
            "ccRecipients": [who(a) for a in self.cc],
        }

    @property
    def change_key(self) -> str:
        return f"CQAAAB{self.change:04d}"


@dataclass
class DriveItem:
    id: str
    name: str
    parent: str
    data: bytes | None = None  # None: a folder
    ctag: int = 1
    etag: int = 1
    seq: int = 0
    deleted: bool = False
    shared: str | None = None  # "users" | "organization" | "anonymous"


def _token(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _untoken(value: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(value.encode()))


class FakeGraph:
    """The mailbox, drive and fault switches; ``serve()`` starts it on a free port."""

    def __init__(self, page_size: int = 10) -> None:
        self.page_size = page_size
        self.lock = threading.RLock()
        self.seq = 0
        self.ids = itertools.count(1)
        self.folders = {f"folder-{name}": name for name in WELL_KNOWN}
        self.messages: dict[str, Message] = {}
        self.removed: dict[str, tuple[str, int]] = {}  # message id -> (folder, seq)
        self.items: dict[str, DriveItem] = {"root": DriveItem("root", "root", "", None)}
        self.requests: list[tuple[str, str]] = []  # (path with query, bearer token)
        self.token, self._tokens = "token-1", 1
        self.expired: set[str] = set()
        self._throttle: list[float] = []
        self._gone = 0
        self._stall: list[float] = []
        self._hold_after: int | None = None
        self.release = threading.Event()
        self.latency = 0.0  # seconds added to every answer, to model a remote service
        self.httpd: ThreadingHTTPServer | None = None
        self.base = ""

    # -- lifecycle -----------------------------------------------------------------------
    def serve(self) -> FakeGraph:
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                graph._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"{self.base}/v1.0"

    def close(self) -> None:
        self.release.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    # -- controls ------------------------------------------------------------------------
    def throttle(self, n: int, retry_after: float) -> None:
        with self.lock:
            self._throttle += [retry_after] * n

    def gone_next_delta(self) -> None:
        with self.lock:
            self._gone += 1

    def stall(self, seconds: float, n: int = 1) -> None:
        with self.lock:
            self._stall += [seconds] * n

    def expire_token(self) -> None:
        """The current token stops working; reading ``fresh_token()`` gives a new one."""
        with self.lock:
            self.expired.add(self.token)

    def fresh_token(self) -> str:
        with self.lock:
            if self.token in self.expired:
                self._tokens += 1
                self.token = f"token-{self._tokens}"
            return self.token

    def hold_after(self, n: int | None) -> None:
        """Requests after the n-th block until ``release`` is set (at most 60 s)."""
        self.release.clear()
        self._hold_after = n

    # -- mail mutators -------------------------------------------------------------------
    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_message(self, folder: str = "inbox", **fields: Any) -> Message:
        with self.lock:
            n = next(self.ids)
            fields.setdefault("subject", f"Message {n}")
            fields.setdefault("body", f"Body of message {n} about topic-{n}.")
            msg = Message(id=f"AAMk-{n:06d}", folder=f"folder-{folder}", **fields)
            msg.seq = self._next_seq()
            self.messages[msg.id] = msg
            return msg

    def edit_message(self, message_id: str, **fields: Any) -> Message:
        with self.lock:
            msg = self.messages[message_id]
            for key, value in fields.items():
                setattr(msg, key, value)
            msg.change += 1
            msg.seq = self._next_seq()
            return msg

    def move_message(self, message_id: str, folder: str) -> Message:
        """A move gives the message a new id in the new folder, as Graph does by default."""
        with self.lock:
            old = self.messages.pop(message_id)
            self.removed[old.id] = (old.folder, self._next_seq())
            n = next(self.ids)
            old.id, old.folder, old.change = f"AAMk-{n:06d}", f"folder-{folder}", old.change + 1
            old.seq = self._next_seq()
            self.messages[old.id] = old
            return old

    def delete_message(self, message_id: str) -> None:
        with self.lock:
            msg = self.messages.pop(message_id)
            self.removed[message_id] = (msg.folder, self._next_seq())

    def folder_ids(self, folder: str) -> set[str]:
        return {m.id for m in self.messages.values() if m.folder == f"folder-{folder}"}

    # -- drive mutators ------------------------------------------------------------------
    def add_file(self, name: str, data: bytes | None, parent: str = "root", **kw: Any) -> DriveItem:
        with self.lock:
            item = DriveItem(f"01ITEM{next(self.ids):05d}", name, parent, data, **kw)
            item.seq = self._next_seq()
            self.items[item.id] = item
            return item

    def change_file(self, item_id: str, *, name: str | None = None, data: bytes | None = None,
                    parent: str | None = None) -> DriveItem:  # fmt: skip
        with self.lock:
            item = self.items[item_id]
            if data is not None:
                item.data, item.ctag = data, item.ctag + 1
            item.name, item.parent = name or item.name, parent or item.parent
            item.etag, item.seq = item.etag + 1, self._next_seq()
            return item

    def delete_file(self, item_id: str) -> None:
        with self.lock:
            item = self.items[item_id]
            item.deleted, item.seq = True, self._next_seq()

    def _path(self, item: DriveItem) -> str:
        parts = []
        while item.parent and item.parent != "root":
            item = self.items[item.parent]
            parts.append(item.name)
        return "/".join(reversed(parts))

    def drive_json(self, item: DriveItem) -> dict[str, Any]:
        body: dict[str, Any] = {"id": item.id, "name": item.name}
        ref = {"driveId": DRIVE_ID, "driveType": "business", "id": item.parent}
        if item.deleted:
            return {**body, "parentReference": ref, "deleted": {"state": "deleted"}}
        path = self._path(item)
        body.update(
            eTag=f'"{{{item.id}}},{item.etag}"',
            cTag=f'"c:{{{item.id}}},{item.ctag}"',
            size=len(item.data or b""),
            webUrl=f"{SHAREPOINT}/{quote(f'{path}/{item.name}' if path else item.name)}",
            lastModifiedDateTime="2025-03-01T09:00:00Z",
            lastModifiedBy={"user": {"displayName": "Bob", "email": "bob@contoso.com"}},
            parentReference=ref,
        )
        if item.id == "root":
            body["root"] = {}
        if item.data is None:
            body["folder"] = {"childCount": 0}
        else:
            body["file"] = {"mimeType": "application/octet-stream"}
        if item.shared:
            body["shared"] = {"scope": item.shared}
        return body

    # -- serving -------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        auth = req.headers.get("Authorization", "")
        with self.lock:
            self.requests.append((req.path, auth.removeprefix("Bearer ")))
            count = len(self.requests)
            stall = self._stall.pop(0) if self._stall else 0.0
            throttled = self._throttle.pop(0) if self._throttle else None
            hold = self._hold_after is not None and count > self._hold_after
        if hold:
            self.release.wait(60)
        if stall or self.latency:
            time.sleep(stall + self.latency)
        if path.startswith("/download/"):  # pre-authenticated: no bearer token needed
            item = self.items.get(path.rsplit("/", 1)[-1])
            if item is None or item.data is None or item.deleted:
                return self._error(req, 404, "itemNotFound", "no such item")
            return self._send(req, 200, item.data, "application/octet-stream")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or token in self.expired or token != self.token:
            code = "InvalidAuthenticationToken"
            return self._error(req, 401, code, "Access token has expired or is not yet valid.")
        if throttled is not None:
            extra = {"Retry-After": f"{throttled:g}"}
            return self._error(req, 429, "TooManyRequests", "Please retry later.", extra)
        try:
            with self.lock:
                status, body, ctype, extra = self._route(path, query, req)
        except KeyError as exc:
            return self._error(req, 404, "ErrorItemNotFound", f"not found: {exc}")
        if status >= 400:
            return self._error(req, status, body["code"], body["message"])
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        self._send(req, status, body, ctype, extra)

    def _route(self, path: str, query: dict[str, list[str]], req: Any) -> tuple:
        segments = path.removeprefix("/v1.0/").split("/")
        if segments[0] == "users":  # /users/{id}/... is /me/... for another mailbox
            segments = ["me", *segments[2:]]
        json_type = "application/json"
        match segments:
            case ["me", "mailFolders", folder]:
                fid = f"folder-{folder}" if folder in WELL_KNOWN else folder
                return 200, {"id": fid, "displayName": WELL_KNOWN[self.folders[fid]]}, json_type, {}
            case ["me", "mailFolders", folder, "messages", "delta"]:
                fid = f"folder-{folder}" if folder in WELL_KNOWN else folder
                self.folders[fid]
                return self._mail_delta(fid, query, req)
            case ["me", "messages", message_id]:
                msg = self.messages[message_id]
                body = {"contentType": "text", "content": msg.body}
                return 200, {**msg.json(), "body": body}, json_type, {}
            case ["me", "messages", message_id, "$value"]:
                return 200, self.messages[message_id].mime(), "message/rfc822", {}
            case ["me", "drive", "root", "delta"] | ["drives", _, "root", "delta"]:
                return self._drive_delta(query, req)
            case ["drives", _, "items", item_id, "content"]:
                item = self.items[item_id]
                if item.deleted or item.data is None:
                    raise KeyError(item_id)
                return 302, b"", "text/plain", {"Location": f"{self.base}/download/{item_id}"}
            case ["drives", _, "items", item_id, "permissions"]:
                item = self.items[item_id]
                value = [{"id": "p1", "roles": ["owner"],
                          "grantedToV2": {"user": {"email": "ann@contoso.com"}}}]  # fmt: skip
                if item.shared == "users":
                    carol = {"user": {"email": "carol@contoso.com"}}
                    value.append({"id": "p2", "roles": ["read"], "grantedToV2": carol})
                elif item.shared:
                    value.append({"id": "p3", "roles": ["read"], "link": {"scope": item.shared}})
                return 200, {"value": value}, json_type, {}
        raise KeyError(path)

    def _page_size(self, req: Any) -> int:
        prefer = req.headers.get("Prefer", "")
        for part in prefer.split(","):
            if part.strip().startswith("odata.maxpagesize="):
                return max(1, min(int(part.split("=")[1]), 1000))
        return self.page_size

    def _round(self, query: dict[str, list[str]]) -> dict[str, Any] | tuple:
        """Where this request is in a delta round: since, upto and the last key served."""
        if "$skiptoken" in query:
            return _untoken(query["$skiptoken"][0])
        since = 0
        if "$deltatoken" in query:
            if self._gone:
                self._gone -= 1
                return 410, {"code": "syncStateNotFound", "message": "resync required"}, "", {}
            since = _untoken(query["$deltatoken"][0])["upto"]
        return {"since": since, "upto": self.seq, "after": [0, ""]}

    def _mail_delta(self, fid: str, query: dict[str, list[str]], req: Any) -> tuple:
        where = self._round(query)
        if isinstance(where, tuple):
            return where
        since, upto, after = where["since"], where["upto"], tuple(where["after"])
        changes: list[tuple[int, str, dict[str, Any]]] = []
        for m in self.messages.values():
            if m.folder == fid and since < m.seq <= upto:
                changes.append((m.seq, m.id, m.json))  # built only if served
        if since:
            for mid, (folder, seq) in self.removed.items():
                if folder == fid and since < seq <= upto:
                    gone = {"id": mid, "@removed": {"reason": "deleted"}}
                    changes.append((seq, mid, lambda gone=gone: gone))
        base = f"{self.url}/me/mailFolders/{fid}/messages/delta"
        return self._delta_page(changes, where, after, base, req)

    def _drive_delta(self, query: dict[str, list[str]], req: Any) -> tuple:
        where = self._round(query)
        if isinstance(where, tuple):
            return 410, {"code": "resyncRequired", "message": "resync required"}, "", {}
        since, upto, after = where["since"], where["upto"], tuple(where["after"])
        changes = [
            (i.seq, i.id, lambda i=i: self.drive_json(i))
            for i in self.items.values()
            if since < i.seq <= upto and not (i.deleted and not since)
        ]
        if not since:  # a first round lists the root too
            changes.append((0, "root", lambda: self.drive_json(self.items["root"])))
        base = f"{self.url}/drives/{DRIVE_ID}/root/delta"
        return self._delta_page(changes, where, after, base, req)

    def _delta_page(self, changes: list, where: dict, after: tuple, base: str, req: Any) -> tuple:
        changes.sort(key=lambda c: (c[0], c[1]))
        rest = [c for c in changes if (c[0], c[1]) > after]
        page = rest[: self._page_size(req)]
        body: dict[str, Any] = {
            "@odata.context": f"{self.url}/$metadata",
            "value": [c[2]() for c in page],
        }
        if len(rest) > len(page):
            token = _token({**where, "after": [page[-1][0], page[-1][1]]})
            body["@odata.nextLink"] = f"{base}?$skiptoken={token}"
        else:
            body["@odata.deltaLink"] = f"{base}?$deltatoken={_token({'upto': where['upto']})}"
        return 200, body, "application/json", {}

    def _error(self, req: Any, status: int, code: str, message: str,
               extra: dict[str, str] | None = None) -> None:  # fmt: skip
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self._send(req, status, body, "application/json", extra)

    def _send(self, req: Any, status: int, body: bytes, ctype: str,
              extra: dict[str, str] | None = None) -> None:  # fmt: skip
        try:
            req.send_response(status)
            req.send_header("Content-Type", ctype)
            req.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                req.send_header(key, value)
            req.end_headers()
            req.wfile.write(body)
        except OSError:
            pass  # the client went away (a killed sync): nothing to answer


def mailbox(graph: FakeGraph, n: int = 25, start: datetime | None = None) -> list[Message]:
    """``n`` messages in the inbox and sent items; every 5th has two files and a message."""
    start = start or datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    made = []
    for i in range(n):
        fields: dict[str, Any] = {
            "subject": f"Project update {i}: topic-{i}",
            "body": "\n\n".join(
                f"Paragraph {p} of mail {i} covers item-{i}-{p}." for p in range(3)
            ),
            "received": start + timedelta(minutes=i),
            "conversation": f"conv-{i // 3}",
            "cc": ("dave@contoso.com",) if i % 2 else (),
        }
        if i % 5 == 0:
            fields["attachments"] = [
                (f"notes-{i}.txt", "text/plain", f"Attached notes {i} on budget-{i}.".encode()),
                (
                    f"table-{i}.csv",
                    "text/csv",
                    f"region,amount\nnorth,{i}\nsouth,{i * 2}\n".encode(),
                ),
                (f"photo-{i}.bin", "application/octet-stream", b"\x00\x01" * 20),
            ]
            fields["attached_message"] = (f"Forwarded {i}", f"Forwarded body {i} about relay-{i}.")
        made.append(graph.add_message("sentitems" if i % 4 == 3 else "inbox", **fields))
    return made
