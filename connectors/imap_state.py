"""What the IMAP connector remembers of each folder between syncs, and its checkpoint form.

Per folder: the UIDVALIDITY, the UIDNEXT and highest UID seen, and the set of UIDs known,
kept as IMAP sequence-set ranges (``1:500,502``) so a checkpoint of a large folder stays
small. A checkpoint read back is checked: a damaged entry drops that folder only (it is
fetched again and its unchanged items are skipped), and no entry may claim more than
``MAX_UIDS`` messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from connectors.checkpoints import ImapCheckpoint, ImapFolderCheckpoint, StoredCheckpoint
from connectors.types import Checkpoint

MAX_UIDS = 10_000_000  # per folder; a checkpoint claiming more is damaged


def compact_uids(uids: Iterable[int]) -> str:
    """``{1, 2, 3, 5}`` → ``"1:3,5"``: IMAP's own sequence-set form, small for real folders."""
    parts: list[str] = []
    ordered = sorted(set(uids))
    start = prev = None
    for uid in [*ordered, None]:
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    return ",".join(parts)


def expand_uids(text: str, limit: int = MAX_UIDS) -> set[int]:
    """``"1:3,5"`` → ``{1, 2, 3, 5}``; ValueError for a damaged or absurdly large set."""
    uids: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition(":")
        first, last = int(low), int(high or low)
        if not 0 < first <= last < 2**32 or len(uids) + last - first >= limit:
            raise ValueError(f"bad UID range {part!r}")
        uids.update(range(first, last + 1))
    return uids


@dataclass
class FolderState:
    """One folder as of the last checkpoint."""

    uidvalidity: int
    uidnext: int = 0
    last_uid: int = 0
    uids: set[int] = field(default_factory=set)

    def dump(self) -> ImapFolderCheckpoint:
        return ImapFolderCheckpoint(
            uidvalidity=self.uidvalidity,
            uidnext=self.uidnext,
            last_uid=self.last_uid,
            uids=compact_uids(self.uids),
        )

    @classmethod
    def load(cls, value: object) -> FolderState:
        """One stored folder entry; ValueError (or KeyError, TypeError) if it is damaged."""
        if not isinstance(value, Mapping):
            raise TypeError(f"a folder entry is a JSON object, not {type(value).__name__}")
        return cls(
            _number(value["uidvalidity"]),
            _number(value.get("uidnext", 0)),
            _number(value["last_uid"]),
            expand_uids(str(value.get("uids", ""))),
        )


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected a whole number, got {value!r}")
    return int(value)


def load_folders(checkpoint: StoredCheckpoint | None) -> dict[str, FolderState]:
    """The folders of a stored checkpoint; unreadable entries are left out."""
    stored = (checkpoint or {}).get("folders") if isinstance(checkpoint, Mapping) else None
    folders: dict[str, FolderState] = {}
    for name, value in stored.items() if isinstance(stored, Mapping) else ():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            folders[str(name)] = FolderState.load(value)
    return folders


def folders_checkpoint(folders: dict[str, FolderState]) -> Checkpoint:
    """A snapshot: the pipeline stores it later, after the items before it are durable."""
    return Checkpoint(ImapCheckpoint(folders={name: f.dump() for name, f in folders.items()}))
