"""Outlook mail through Microsoft Graph: one delta query per mail folder.

Why delta: after the first sync, a run asks each folder only for what changed since its
``@odata.deltaLink``, so an unchanged mailbox costs one request per folder. The checkpoint
keeps, per folder, the deltaLink of the last finished round and the nextLink of a round in
progress, and is handed back after every page: a sync killed mid-folder resumes at the
page it was on.

Why MIME: a message's ``$value`` is its full RFC 822 text, which the existing mail parser
already turns into a header, a cleaned body and attachments (files and attached messages
become their own items through the pipeline). It is fetched lazily, only for messages whose
change key is new. Messages whose MIME passes the size cap (``settings.max_file_mb``) are
indexed from their JSON body alone, with a note saying the attachments were left out.

Moves: by default Graph gives a moved message a new id, and the old folder's delta reports
the old id as ``@removed``: a move is a delete plus an add (the moved message is embedded
again). Immutable ids would avoid that, but then the order in which folders are read
decides whether a move ends as an add or a delete; new ids are always right.

Resync: when Graph says a delta token is no longer valid (410, ``syncStateNotFound``)
every folder of this scope starts a fresh round. Unchanged messages cost nothing (the
pipeline compares change keys), and deletions that happened while the token was invalid
are found by ``list_ids``: once a resync has finished, it lists every message id of the
synced folders, and the pipeline removes what is no longer there.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from connectors.checkpoints import GraphMailCheckpoint, StoredCheckpoint, read_graph_mail
from connectors.graph.client import (
    BudgetExceeded,
    GraphClient,
    GraphError,
    ResyncRequired,
    TooLarge,
    budget_stop,
    graph_time,
)
from connectors.parsers import EML
from connectors.types import Checkpoint, Content, Deleted, Failure, Item

SELECT = (
    "id,changeKey,subject,from,toRecipients,ccRecipients,receivedDateTime,conversationId,"
    "webLink,hasAttachments,parentFolderId"
)
PAGE_SIZE = 50
MAX_RESYNCS = 2  # per run: a server that keeps saying "gone" is an error, not a loop
Event = Item | Failure | Deleted | Checkpoint


def _addresses(entries: Any) -> list[str]:
    found = []
    for entry in entries if isinstance(entries, list) else []:
        address = (entry or {}).get("emailAddress", {}).get("address")
        if address:
            found.append(str(address).lower())
    return found


@dataclass
class GraphMail:
    """Mail of one mailbox (``"me"`` with a delegated token, a user id or UPN app-only)."""

    client: GraphClient
    owner: str
    mailbox: str = "me"
    folders: Sequence[str] = ("inbox", "sentitems", "archive")
    max_mime_bytes: int = 50 * 1024 * 1024
    page_size: int = PAGE_SIZE
    scope: str = field(init=False)
    notes: list[str] = field(default_factory=list, init=False)
    _listing: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.scope = f"graph-mail:{self.mailbox}"
        self.folders = [f for f in self.folders if f]

    @property
    def root(self) -> str:
        return "me" if self.mailbox == "me" else f"users/{quote(self.mailbox)}"

    def load(self, checkpoint: StoredCheckpoint | None = None) -> Iterator[Event]:
        state = read_graph_mail(checkpoint)
        self.client.start_run()
        self._listing, self.notes = False, []
        names = yield from self._folder_names()
        resyncs = 0
        while True:
            try:
                for folder, name in names.items():
                    yield from self._folder(folder, name, state)
            except ResyncRequired as exc:
                resyncs += 1
                if resyncs > MAX_RESYNCS:
                    yield Failure(self.scope, "fetch", f"delta keeps being reset: {exc}")
                    return
                state = GraphMailCheckpoint(deltas={}, next={}, resync=True)
                yield _snapshot(state)
                continue
            except BudgetExceeded as exc:
                yield budget_stop(self.client, self.scope, self.notes, str(exc))
                return
            except _Stop:
                return  # the note is yielded; the checkpoint of the last page is stored
            break
        self._listing = state["resync"]  # a resync finished: list_ids reconciles deletions
        state["resync"] = False
        yield _snapshot(state)

    def _folder_names(self) -> Generator[Failure, None, dict[str, str]]:
        """Display names ("Sent Items") of the configured folders, fetched once per run."""
        names: dict[str, str] = {}
        for folder in self.folders:
            try:
                body = self.client.get_json(
                    f"{self.root}/mailFolders/{quote(folder)}?$select=id,displayName"
                )
                names[folder] = str(body.get("displayName") or folder)
            except GraphError as exc:
                if exc.status == 404:
                    continue  # a well-known folder this mailbox does not have (archive)
                yield Failure(f"{self.scope}/{folder}", "fetch", f"folder {folder}: {exc}")
        return names

    def _folder(self, folder: str, name: str, state: GraphMailCheckpoint) -> Iterator[Event]:
        url = state["next"].get(folder) or state["deltas"].get(folder)
        url = url or f"{self.root}/mailFolders/{quote(folder)}/messages/delta?$select={SELECT}"
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        while True:
            try:
                page = self.client.get_json(url, headers)
            except (ResyncRequired, BudgetExceeded):
                raise
            except GraphError as exc:
                yield Failure(f"{self.scope}/{folder}", "fetch", f"folder {name}: {exc}")
                return  # this folder keeps its old checkpoint; the others go on
            for entry in page.get("value") or []:
                if not isinstance(entry, dict) or not entry.get("id"):
                    continue
                if "@removed" in entry:
                    yield Deleted(f"graph-mail:{entry['id']}")
                else:
                    yield self._item(entry, name)
            if page.get("@odata.nextLink"):
                url = page["@odata.nextLink"]
                state["next"][folder] = url
                yield _snapshot(state)
                if self.client.over_budget():
                    yield budget_stop(
                        self.client, self.scope, self.notes, f"stopped in folder {name}"
                    )
                    raise _Stop
                continue
            if page.get("@odata.deltaLink"):
                state["deltas"][folder] = str(page["@odata.deltaLink"])
            state["next"].pop(folder, None)
            yield _snapshot(state)
            return

    def _item(self, entry: dict[str, Any], folder_name: str) -> Item:
        message_id = str(entry["id"])
        sender = _addresses([entry.get("from")])
        return Item(
            id=f"graph-mail:{message_id}",
            owner=self.owner,
            kind="mail",
            title=str(entry.get("subject") or "(no subject)"),
            url=str(entry.get("webLink") or ""),
            modified=graph_time(entry.get("receivedDateTime")),
            version=str(entry.get("changeKey") or entry.get("@odata.etag") or ""),
            content=Content(EML, 0, lambda: self._mime(message_id, entry)),
            meta={
                "from": sender[0] if sender else None,
                "to": _addresses(entry.get("toRecipients")),
                "cc": _addresses(entry.get("ccRecipients")),
                "date": entry.get("receivedDateTime"),
                "subject": entry.get("subject"),
                "thread": entry.get("conversationId"),
                "folder": folder_name,
                "has_attachments": bool(entry.get("hasAttachments")),
            },
        )

    def _mime(self, message_id: str, entry: dict[str, Any]) -> bytes:
        """The message's MIME; for one over the cap, its body alone (no attachments)."""
        try:
            return self.client.get_bytes(
                f"{self.root}/messages/{quote(message_id)}/$value", self.max_mime_bytes
            )
        except TooLarge:
            return self._body_only(message_id, entry)
        except (GraphError, BudgetExceeded) as exc:
            raise OSError(str(exc)) from exc  # the pipeline records a fetch failure

    def _body_only(self, message_id: str, entry: dict[str, Any]) -> bytes:
        try:
            body = self.client.get_json(
                f"{self.root}/messages/{quote(message_id)}?$select=body",
                {"Prefer": 'outlook.body-content-type="text"'},
            )
        except (GraphError, BudgetExceeded) as exc:
            raise OSError(str(exc)) from exc
        msg = EmailMessage()
        msg["Subject"] = str(entry.get("subject") or "")
        msg["From"] = (_addresses([entry.get("from")]) or [""])[0]
        msg["To"] = ", ".join(_addresses(entry.get("toRecipients")))
        msg["Date"] = graph_time(entry.get("receivedDateTime")).strftime(
            "%a, %d %b %Y %H:%M:%S +0000"
        )
        text = str((body.get("body") or {}).get("content") or "")[:2_000_000]
        cap = self.max_mime_bytes >> 20
        msg.set_content(f"{text}\n\n[Attachments not indexed: the message is over {cap} MB.]")
        return bytes(msg)

    def list_ids(self) -> Iterable[str] | None:
        """None (deletions come as ``Deleted``), except after a resync: then every id."""
        if not self._listing:
            return None
        ids: set[str] = set()
        for folder in self.folders:
            url = f"{self.root}/mailFolders/{quote(folder)}/messages/delta?$select=id"
            try:
                for page in self.client.pages(url, {"Prefer": "odata.maxpagesize=1000"}):
                    values = page.get("value") or []
                    ids.update(f"graph-mail:{e['id']}" for e in values if e.get("id"))
            except GraphError as exc:
                if exc.status == 404:
                    continue  # a well-known folder this mailbox does not have
                self.notes.append(f"could not list messages after a resync: {exc}")
                return None  # better to keep a deleted message than drop a live one
            except BudgetExceeded as exc:
                self.notes.append(f"could not list messages after a resync: {exc}")
                return None
        return ids


def _snapshot(state: GraphMailCheckpoint) -> Checkpoint:
    """A copy: the pipeline may hold a checkpoint while this run goes on changing ``state``
    (a shared ``deltas`` dict would store a later folder's link before its items)."""
    return Checkpoint(
        GraphMailCheckpoint(
            deltas=dict(state["deltas"]), next=dict(state["next"]), resync=state["resync"]
        )
    )


class _Stop(Exception):
    """Raised inside a folder when the budget is spent; caught by ``load``."""
