"""Each connector's checkpoint, typed: what it hands back after a batch and reads next run.

The pipeline stores a checkpoint as a JSON object and hands it back to the same scope's
connector without looking inside, so the stored form is these ``TypedDict`` s exactly (the
keys are the ones checkpoints have always had: stored checkpoints load as they are).

What comes back from the database is only *meant* to be such a dict: it may come from an
older version or be damaged. So a connector never trusts it as typed; its ``read_*``
function takes the stored JSON and keeps what is well-formed. Anything else is dropped and
that part starts afresh: a source re-lists it, and the pipeline skips every unchanged item
by its version, so a lost checkpoint costs requests, never a wrong index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NotRequired, TypedDict

__all__ = [
    "GraphDriveCheckpoint",
    "GraphMailCheckpoint",
    "ImapCheckpoint",
    "ImapFolderCheckpoint",
    "LocalCheckpoint",
    "StoredCheckpoint",
    "read_graph_drive",
    "read_graph_mail",
]

StoredCheckpoint = Mapping[str, object]
"""A checkpoint as the state store hands it back: a JSON object, of unchecked shape."""


class LocalCheckpoint(TypedDict):
    """A local folder is scanned whole every run; this only records how far a scan got."""

    root: str
    scanned: int
    complete: NotRequired[bool]


class GraphMailCheckpoint(TypedDict):
    """Per mail folder, the delta round it is in."""

    deltas: dict[str, str]  # folder -> deltaLink of its last finished round
    next: dict[str, str]  # folder -> nextLink of the round in progress
    resync: bool  # a resync is under way: when it ends, list_ids reconciles deletions


class GraphDriveCheckpoint(TypedDict):
    """The drive's one delta round."""

    delta: str | None  # deltaLink of the last finished round
    next: str | None  # nextLink of the round in progress
    resync: bool
    drive_id: str | None  # the id the drive reported (deleted entries may lack it)


class ImapFolderCheckpoint(TypedDict):
    """One IMAP folder (see ``connectors.imap_state.FolderState``)."""

    uidvalidity: int
    last_uid: int
    uidnext: NotRequired[int]  # absent in checkpoints from before it was kept
    uids: NotRequired[str]  # UIDs known, as IMAP sequence-set ranges ("1:500,502")


class ImapCheckpoint(TypedDict):
    folders: dict[str, ImapFolderCheckpoint]


def read_graph_mail(stored: StoredCheckpoint | None) -> GraphMailCheckpoint:
    """The mail checkpoint in ``stored``; a damaged link is dropped (that folder restarts)."""
    value = _object(stored)
    return GraphMailCheckpoint(
        deltas=_links(value.get("deltas")),
        next=_links(value.get("next")),
        resync=value.get("resync") is True,
    )


def read_graph_drive(stored: StoredCheckpoint | None) -> GraphDriveCheckpoint:
    """The drive checkpoint in ``stored``; a damaged field reads as unset."""
    value = _object(stored)
    return GraphDriveCheckpoint(
        delta=_text(value.get("delta")),
        next=_text(value.get("next")),
        resync=value.get("resync") is True,
        drive_id=_text(value.get("drive_id")),
    )


def _object(stored: object) -> Mapping[str, object]:
    return stored if isinstance(stored, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _links(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str) and v}
