"""Which items a sync removes, and removing them: the index first, then the state.

Why apart from the pipeline: which ids are gone is a rule about the source's listing and
about attachments, easiest to read (and test) as a pure function of three sets; the
removal is the one order that keeps a crash harmless (an item still in the state but no
longer in the index is simply removed again by the next sync).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from copilot.db.state import ItemState, StateStore
from copilot.index.base import IndexStore
from copilot.ingest.attachments import MAX_DEPTH
from copilot.ingest.reuse import Kept

__all__ = ["missing", "remove"]


def missing(
    known: Mapping[str, ItemState], listed: Collection[str], seen: Collection[str]
) -> list[str]:
    """The ids of ``known`` (what the state holds) that the source no longer has.

    ``listed``: every id the source lists now; ``seen``: what this run visited. An
    attachment is kept while its top-level message or file is listed, unless this run
    visited that parent (then it yielded the attachments it still has): a delta source
    lists every id after a resync without visiting each."""
    listed, seen = set(listed), set(seen)
    present = listed | seen

    def root(item_id: str) -> str:  # an attachment's top-level message or file
        for _ in range(MAX_DEPTH + 1):
            parent = known[item_id].parent_id if item_id in known else None
            if not parent:
                break
            item_id = parent
        return item_id

    return [
        i for i in known if i not in present and not (root(i) in listed and root(i) not in seen)
    ]


def remove(
    store: IndexStore, state: StateStore, owner: str, item_ids: list[str], keep: Kept | None = None
) -> list[str]:
    """Remove items and their attachments (children, at any depth) from the index, then
    from the state; every id removed. ``keep``: first keep their vectors (``reuse.py``)."""
    gone, known = list(item_ids), set(item_ids)  # a list, in order; a set, to look up
    for item_id in gone:  # grows as it goes: attachments of attachments too
        for child in state.children(owner, item_id):
            if child not in known:
                known.add(child)
                gone.append(child)
    for item_id in gone:
        if keep is not None:
            keep.add(store.item_vectors_by_key(owner, item_id))
        store.delete_item(owner, item_id)
    if gone:
        store.flush()
        state.forget_items(owner, gone)
    return gone
