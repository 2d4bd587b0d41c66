"""OneDrive and SharePoint document libraries through Microsoft Graph's drive delta.

One ``root/delta`` round per run lists what changed in the whole drive; the deltaLink
(and the nextLink of a round in progress) is the checkpoint, handed back after every page.

Why ``cTag`` is the version: it changes only when the file's content changes, so a
rename or a move re-yields the item with the same version, and the pipeline updates its
title and url in place without reading or embedding the file again. The ``eTag`` would
change on every metadata edit.

Paths: Graph leaves ``parentReference.path`` out of delta answers (a folder rename does
not re-report its descendants), so the path in ``meta`` is built from the folders seen in
the same run; it is exact after a first sync and may be stale for files in a folder renamed
later (the item id, title and url, which are what search shows, are always right).

Access lists: the ``shared`` facet in the delta answer says whether anyone but the owner
can read a file. Only for shared files (at most ``max_permission_lookups`` per run) are
the permissions fetched, and users and sharing links become ``acl`` entries
(``user:<email>``, ``link:organization``, ``link:anonymous``); past that bound the acl
says ``shared:<scope>``. Group and SharePoint-site membership is not expanded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from connectors.checkpoints import GraphDriveCheckpoint, StoredCheckpoint, read_graph_drive
from connectors.graph.client import (
    BudgetExceeded,
    GraphClient,
    GraphError,
    ResyncRequired,
    budget_stop,
    graph_time,
)
from connectors.local import _human
from connectors.parsers import MAIL_TYPES, media_type_for
from connectors.types import Checkpoint, Content, Deleted, Failure, Item

SELECT = (
    "id,name,size,cTag,eTag,webUrl,lastModifiedDateTime,lastModifiedBy,parentReference,"
    "file,folder,deleted,shared,root,package"
)
PAGE_SIZE = 200
MAX_RESYNCS = 2


@dataclass
class GraphDrive:
    """Files of one drive: ``"me"`` (the user's OneDrive) or a drive id (a SharePoint library)."""

    client: GraphClient
    owner: str
    drive: str = "me"
    max_bytes: int = 50 * 1024 * 1024
    max_permission_lookups: int = 100
    page_size: int = PAGE_SIZE
    scope: str = field(init=False)
    notes: list[str] = field(default_factory=list, init=False)
    _folders: dict[str, tuple[str, str]] = field(default_factory=dict, init=False, repr=False)
    _lookups: int = field(default=0, init=False, repr=False)
    _listing: bool = field(default=False, init=False, repr=False)
    _drive_id: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.scope = f"graph-drive:{self.drive}"

    @property
    def root(self) -> str:
        return "me/drive" if self.drive == "me" else f"drives/{quote(self.drive)}"

    def load(
        self, checkpoint: StoredCheckpoint | None = None
    ) -> Iterator[Item | Failure | Deleted | Checkpoint]:
        state = read_graph_drive(checkpoint)
        # A deleted entry may come without its drive id: remember the one the drive reported.
        self._drive_id = state["drive_id"]
        self.client.start_run()
        self._folders, self._lookups, self._listing, self.notes = {}, 0, False, []
        resyncs = 0
        url = state["next"] or state["delta"] or f"{self.root}/root/delta?$select={SELECT}"
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        while True:
            try:
                page = self.client.get_json(url, headers)
            except ResyncRequired as exc:
                resyncs += 1
                if resyncs > MAX_RESYNCS:
                    yield Failure(self.scope, "fetch", f"delta keeps being reset: {exc}")
                    return
                state = GraphDriveCheckpoint(
                    delta=None, next=None, resync=True, drive_id=self._drive_id
                )
                url = f"{self.root}/root/delta?$select={SELECT}"
                yield Checkpoint(state.copy())
                continue
            except BudgetExceeded as exc:
                yield budget_stop(self.client, self.scope, self.notes, str(exc))
                return
            except GraphError as exc:
                yield Failure(self.scope, "fetch", f"drive {self.drive}: {exc}")
                return
            for entry in page.get("value") or []:
                if isinstance(entry, dict) and entry.get("id"):
                    self._drive_id = (entry.get("parentReference") or {}).get("driveId") or (
                        self._drive_id
                    )
                    state["drive_id"] = self._drive_id
                    event = self._event(entry)
                    if event is not None:
                        yield event
            if page.get("@odata.nextLink"):
                url = state["next"] = str(page["@odata.nextLink"])
                yield Checkpoint(state.copy())
                if self.client.over_budget():
                    yield budget_stop(self.client, self.scope, self.notes, "mid-round")
                    return
                continue
            self._listing = state["resync"]
            delta = page.get("@odata.deltaLink")
            state = GraphDriveCheckpoint(
                delta=str(delta) if delta else None,
                next=None,
                resync=False,
                drive_id=self._drive_id,
            )
            yield Checkpoint(state)
            return

    def item_id(self, entry: dict[str, Any]) -> str:
        parent = entry.get("parentReference") or {}
        drive_id = parent.get("driveId") or self._drive_id or self.drive
        return f"graph-drive:{drive_id}:{entry['id']}"

    def _path(self, entry: dict[str, Any]) -> str:
        parent = entry.get("parentReference") or {}
        if parent.get("path"):  # present outside delta answers, and on some drives
            base = str(parent["path"]).split(":", 1)[-1]
            return f"{base.rstrip('/')}/{entry.get('name', '')}"
        parts, current, hops = [str(entry.get("name", ""))], parent.get("id"), 0
        while current in self._folders and hops < 64:
            name, current = self._folders[current]
            parts.append(name)
            hops += 1
        return "/" + "/".join(reversed(parts))

    def _event(self, entry: dict[str, Any]) -> Item | Failure | Deleted | None:
        item_id = self.item_id(entry)
        if "deleted" in entry:
            return Deleted(item_id)  # a deleted folder's files are reported one by one too
        if "root" in entry:
            return None
        if "folder" in entry or "package" in entry:  # OneNote notebooks are packages
            parent = (entry.get("parentReference") or {}).get("id", "")
            self._folders[str(entry["id"])] = (str(entry.get("name", "")), parent)
            return None
        name = str(entry.get("name") or "")
        media_type = media_type_for(name)
        if "file" not in entry or media_type is None:
            return None  # not a kind of file we index: not a failure either
        size = int(entry.get("size") or 0)
        if size > self.max_bytes:
            return Failure(
                item_id,
                "fetch",
                f"{name} is {_human(size)}, over the {_human(self.max_bytes)} size cap; skipped",
            )
        drive_id = item_id.split(":")[1]
        who = (entry.get("lastModifiedBy") or {}).get("user") or {}
        return Item(
            id=item_id,
            owner=self.owner,
            kind="mail" if media_type in MAIL_TYPES else "file",
            title=name,
            url=str(entry.get("webUrl") or ""),
            modified=graph_time(entry.get("lastModifiedDateTime")),
            version=str(entry.get("cTag") or entry.get("eTag") or ""),
            content=Content(media_type, size, self._reader(drive_id, str(entry["id"]))),
            acl=self._acl(drive_id, entry),
            meta={
                "path": self._path(entry),
                "size": size,
                "modified_by": who.get("email") or who.get("displayName"),
            },
        )

    def _reader(self, drive_id: str, raw_id: str) -> Any:
        def read() -> bytes:
            url = f"drives/{quote(drive_id)}/items/{quote(raw_id)}/content"
            try:
                return self.client.get_bytes(url, self.max_bytes)
            except (GraphError, BudgetExceeded) as exc:
                raise OSError(str(exc)) from exc  # the pipeline records a fetch failure

        return read

    def _acl(self, drive_id: str, entry: dict[str, Any]) -> tuple[str, ...]:
        shared = entry.get("shared")
        if not isinstance(shared, dict):
            return ()  # owner only
        scope = str(shared.get("scope") or "users")
        if self._lookups >= self.max_permission_lookups:
            return (f"shared:{scope}",)
        self._lookups += 1
        url = f"drives/{quote(drive_id)}/items/{quote(str(entry['id']))}/permissions"
        try:
            permissions = self.client.get_json(url).get("value") or []
        except (GraphError, BudgetExceeded):
            return (f"shared:{scope}",)
        acl: set[str] = set()
        for permission in permissions:
            if not isinstance(permission, dict):
                continue
            link = permission.get("link") or {}
            if link.get("scope"):
                acl.add(f"link:{link['scope']}")
            granted = [
                permission.get("grantedToV2"),
                *(permission.get("grantedToIdentitiesV2") or []),
            ]
            for grant in granted:
                user = (grant or {}).get("user") or {}
                if user.get("email"):
                    acl.add(f"user:{str(user['email']).lower()}")
        return tuple(sorted(acl)) or (f"shared:{scope}",)

    def list_ids(self) -> Iterable[str] | None:
        """None (deletions come as ``Deleted``), except after a resync: then every file id."""
        if not self._listing:
            return None
        ids: set[str] = set()
        url = f"{self.root}/root/delta?$select=id,file,deleted,parentReference"
        try:
            for page in self.client.pages(url, {"Prefer": "odata.maxpagesize=1000"}):
                for entry in page.get("value") or []:
                    if isinstance(entry, dict) and entry.get("id") and "deleted" not in entry:
                        ids.add(self.item_id(entry))
        except (GraphError, BudgetExceeded) as exc:
            self.notes.append(f"could not list files after a resync: {exc}")
            return None  # better to keep a deleted file than drop a live one
        return ids
