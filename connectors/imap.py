"""The IMAP connector: the messages of some folders of one mailbox, incrementally.

Why UIDs and not a full scan: an IMAP message never changes once stored, and each folder
numbers its messages with ascending UIDs that are never reused while its UIDVALIDITY
stays the same. So the checkpoint keeps, per folder, the UIDVALIDITY, the highest UID
seen and the set of UIDs known (as compact ranges, ``1:500,502``): a sync fetches only
UIDs above the last one, and one ``UID SEARCH ALL`` tells which known messages were
expunged. When nothing was added or removed (same UIDNEXT, same message count) even that
search is skipped. A new UIDVALIDITY means the server renumbered the folder: every old
message is reported deleted and the folder is fetched again; ids carry the UIDVALIDITY,
so old and new never collide.

Errors, decided once: a refused login, an untrusted certificate and a missing STARTTLS
raise ``ImapError`` (the sync stops; only a person can fix them, and the message says
what to fix, never echoing the password). A dropped connection or a timeout is retried
with exponential backoff, resuming where it stopped; when the retries run out the sync
yields one ``Failure`` and ends, and the next sync resumes from the last checkpoint.
A folder that does not exist is a ``Failure`` and the other folders go on.

Messages are read with ``BODY.PEEK[]`` and folders opened read-only, so syncing never
marks mail as read.
"""

from __future__ import annotations

import imaplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from imapclient import IMAPClient

from connectors.checkpoints import StoredCheckpoint
from connectors.imap_login import DEFAULT_PORTS, close, connect
from connectors.imap_login import ImapAuthError as ImapAuthError  # re-exported: the public API
from connectors.imap_login import ImapError as ImapError
from connectors.imap_login import ImapSource as ImapSource
from connectors.imap_login import Security as Security
from connectors.imap_login import check_security as check_security
from connectors.imap_login import password_from as password_from
from connectors.imap_state import FolderState, folders_checkpoint, load_folders
from connectors.imap_state import compact_uids as compact_uids  # re-exported: the UID-set form
from connectors.imap_state import expand_uids as expand_uids
from connectors.types import Checkpoint, Content, Deleted, Failure, Item

BATCH = 50
FETCH_BYTES = 16 * 1024 * 1024  # message bodies asked for in one FETCH, at most (but 1)
HEADER_BYTES = 256 * 1024
RETRYABLE = (OSError, imaplib.IMAP4.abort)  # imaplib's abort: the connection is unusable
Event = Item | Failure | Deleted | Checkpoint


def _human(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def _header(headers: Any, name: str) -> str:
    """A header as text; hostile or broken headers give "" rather than an exception."""
    try:
        value = headers.get(name)
        return " ".join(str(value).split())[:1000] if value is not None else ""
    except Exception:  # the email package raises many kinds on bad input
        return ""


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ImapConnector:
    """Items for the messages of ``source.folders``, owned by ``owner``.

    ``max_bytes`` skips larger messages with a Failure (pass ``settings.max_file_mb``);
    ``retries`` and ``backoff_s`` bound the reconnect attempts per folder.
    """

    def __init__(
        self,
        source: ImapSource,
        owner: str,
        *,
        max_bytes: int = 50 * 1024 * 1024,
        batch: int = BATCH,
        retries: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        check_security(source.host, source.security)
        self.source, self.owner = source, owner
        self.port = source.port or DEFAULT_PORTS[source.security]
        self.max_bytes, self.batch = max_bytes, batch
        self.retries, self.backoff_s = retries, backoff_s
        self.scope = f"imap:{source.username}@{source.host}"

    def item_id(self, folder: str, uidvalidity: int, uid: int) -> str:
        return f"{self.scope}/{folder}/{uidvalidity}/{uid}"

    def url(self, folder: str, uidvalidity: int, uid: int) -> str:
        """An RFC 5092 IMAP URL: ``imap://user@host:port/INBOX;UIDVALIDITY=7/;UID=42``."""
        s = self.source
        port = "" if self.port == 143 else f":{self.port}"
        host = f"[{s.host}]" if ":" in s.host else s.host  # an IPv6 address
        box, user = quote(folder, safe="/"), quote(s.username, safe="")
        return f"imap://{user}@{host}{port}/{box};UIDVALIDITY={uidvalidity}/;UID={uid}"

    def list_ids(self) -> None:
        return None  # expunged messages are reported as Deleted by load()

    def load(self, checkpoint: StoredCheckpoint | None = None) -> Iterator[Event]:
        # An unreadable entry is left out: that folder is fetched again, unchanged items skip.
        folders = load_folders(checkpoint)
        for name in [n for n in folders if n not in self.source.folders]:
            yield from self._forget(name, folders.pop(name))  # no longer configured
            yield folders_checkpoint(folders)
        client: IMAPClient | None = None
        try:
            for name in self.source.folders:
                for attempt in range(self.retries + 1):
                    try:
                        if client is None:
                            client = connect(self.source, self.port)
                        yield from self._folder(client, name, folders)
                        break
                    except RETRYABLE as exc:
                        close(client)
                        client = None
                        if attempt == self.retries:
                            yield Failure(
                                self.scope,
                                "fetch",
                                f"cannot reach the IMAP server {self.source.host}:{self.port} "
                                f"({exc or type(exc).__name__}) after {attempt + 1} attempts; "
                                "the next sync resumes where this one stopped",
                            )
                            return
                        time.sleep(self.backoff_s * 2**attempt)
        finally:
            if client is not None:
                try:
                    client.logout()
                except Exception:  # leaving anyway
                    close(client)

    # -- one folder ------------------------------------------------------------------
    def _folder(
        self, client: IMAPClient, name: str, folders: dict[str, FolderState]
    ) -> Iterator[Event]:
        try:
            info = client.select_folder(name, readonly=True)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            yield from self._missing(client, name, folders, exc)
            return
        uidvalidity, uidnext = int(info[b"UIDVALIDITY"]), int(info.get(b"UIDNEXT") or 0)
        state = folders.get(name)
        if state is not None and state.uidvalidity != uidvalidity:
            yield from self._forget(name, state)  # the server renumbered the folder
            state = None
            folders.pop(name)
            yield folders_checkpoint(folders)
        if state is None:
            state = folders[name] = FolderState(uidvalidity)
        if uidnext and state.uidnext == uidnext and int(info[b"EXISTS"]) == len(state.uids):
            return  # nothing appended (same UIDNEXT) and nothing expunged (same count)
        on_server = set(client.search("ALL"))
        gone = state.uids - on_server
        for uid in sorted(gone):
            yield Deleted(self.item_id(name, uidvalidity, uid))
        state.uids -= gone
        if gone:
            yield folders_checkpoint(folders)
        new = sorted(uid for uid in on_server if uid > state.last_uid)
        for start in range(0, len(new), self.batch):
            batch = new[start : start + self.batch]
            handled: set[int] = set()
            yield from self._fetch(client, name, uidvalidity, batch, handled)
            state.uids |= handled
            state.last_uid = max(batch)
            yield folders_checkpoint(folders)
        state.uidnext = uidnext
        yield folders_checkpoint(folders)

    def _missing(
        self, client: IMAPClient, name: str, folders: dict[str, FolderState], exc: Exception
    ) -> Iterator[Event]:
        folder_id = f"{self.scope}/{name}"
        if client.folder_exists(name):  # it exists but cannot be opened: keep what we have
            yield Failure(folder_id, "fetch", f"cannot open folder {name!r}: {exc}")
            return
        state = folders.pop(name, None)
        if state is None:
            yield Failure(
                folder_id, "fetch", f"folder {name!r} does not exist on {self.source.host}"
            )
            return
        yield from self._forget(name, state)
        yield folders_checkpoint(folders)
        yield Failure(
            folder_id,
            "fetch",
            f"folder {name!r} no longer exists on {self.source.host}; its "
            f"{len(state.uids)} messages were removed from the index",
        )

    def _forget(self, name: str, state: FolderState) -> Iterator[Deleted]:
        for uid in sorted(state.uids):
            yield Deleted(self.item_id(name, state.uidvalidity, uid))

    def _fetch(
        self, client: IMAPClient, name: str, uidvalidity: int, uids: list[int], handled: set[int]
    ) -> Iterator[Item | Failure]:
        """Items for ``uids``, bodies fetched in groups of at most FETCH_BYTES."""
        info = client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"])
        groups: list[list[int]] = [[]]
        group_bytes = 0
        for uid in (u for u in uids if u in info):  # one expunged meanwhile is simply absent
            size = int(info[uid].get(b"RFC822.SIZE") or 0)
            if size > self.max_bytes:
                handled.add(uid)
                yield Failure(
                    self.item_id(name, uidvalidity, uid),
                    "fetch",
                    f"message {uid} in {name} is {_human(size)}, over the "
                    f"{_human(self.max_bytes)} size cap; skipped",
                )
                continue
            if groups[-1] and group_bytes + size > FETCH_BYTES:
                groups.append([])
                group_bytes = 0
            groups[-1].append(uid)
            group_bytes += size
        for group in filter(None, groups):
            try:
                bodies = client.fetch(group, ["BODY.PEEK[]"])
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error:  # one bad message: find it, keep the others
                bodies = {}
                for uid in group:
                    try:
                        bodies.update(client.fetch([uid], ["BODY.PEEK[]"]))
                    except imaplib.IMAP4.abort:
                        raise
                    except imaplib.IMAP4.error as exc:
                        handled.add(uid)
                        item_id = self.item_id(name, uidvalidity, uid)
                        yield Failure(item_id, "fetch", f"the server did not send it: {exc}")
            for uid in group:
                raw = bodies.get(uid, {}).get(b"BODY[]")
                if raw is not None:
                    handled.add(uid)
                    received = info[uid].get(b"INTERNALDATE")
                    yield self._item(name, uidvalidity, uid, bytes(raw), received)

    def _item(
        self, folder: str, uidvalidity: int, uid: int, raw: bytes, received: datetime | None
    ) -> Item:
        # Only the head: a message without a blank line would otherwise be all "headers".
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw[:HEADER_BYTES])
        date = _header(headers, "date")
        try:
            sent = _aware(parsedate_to_datetime(date)) if date else None
        except (TypeError, ValueError, IndexError, OverflowError):
            sent = None
        modified = (_aware(received) or sent or datetime.now(UTC)).astimezone(UTC)
        subject = _header(headers, "subject")
        return Item(
            id=self.item_id(folder, uidvalidity, uid),
            owner=self.owner,
            kind="mail",
            title=subject or "(no subject)",
            url=self.url(folder, uidvalidity, uid),
            modified=modified,
            version=f"{uidvalidity}:{uid}",  # IMAP messages never change under one UID
            content=Content.of(raw, "message/rfc822"),
            meta={
                "from": _header(headers, "from"),
                "to": _header(headers, "to"),
                "cc": _header(headers, "cc"),
                "date": sent.isoformat() if sent else None,
                "subject": subject,
                "message_id": _header(headers, "message-id"),
                "folder": folder,
                "uid": uid,
                "size": len(raw),
            },
        )
