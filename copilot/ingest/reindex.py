"""Items the sync state calls indexed whose chunks are not in the index: redo them.

Why this can happen: the index keeps one folder (or server collection) per embedding model
(``Workspace.store``), while the sync state that says what is indexed is one database.
Changing the embedding model or its backend (``COPILOT_EMBED_BACKEND``: the int8 default
has vectors of its own) points search at another, empty index while every item still
counts as indexed and unchanged, so a sync would skip them all and searches would find
nothing, without a word. The same goes for an index folder deleted or restored from an
older backup. So the sync checks, and ``copilot status`` warns before anyone syncs.

The check costs one count in the usual case: the index holds at least as many of the
owner's chunks as the state says were stored. Only when it holds fewer is each item of
the scope looked up, and only the missing ones (with the messages their attachments
belong to) are redone, so a re-index that was stopped half-way resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

from copilot.config import Settings
from copilot.db.state import ItemState, StateStore
from copilot.index.base import IndexStore
from copilot.index.embed import model_id_of

MAX_DEPTH = 8  # attachment nesting followed up to the top-level item


def lost_items(
    store: IndexStore, state: StateStore, owner: str, known: dict[str, ItemState]
) -> set[str]:
    """Ids of ``known`` items (one scope of ``owner``) recorded as indexed with chunks that
    the index does not have, each with its parents: an attachment is found again only by
    parsing the message it came with."""
    expected = int(state.summary(owner)["chunks"])
    if not expected or store.count(owner) >= expected:
        return set()
    lost: set[str] = set()
    for item_id, item in known.items():
        if item.status != "indexed" or item.chunks <= 0 or item_id in lost:
            continue
        if store.item_chunk_ids(owner, item_id):
            continue
        lost.add(item_id)
        parent = item.parent_id
        for _ in range(MAX_DEPTH):
            if not parent or parent not in known:
                break
            lost.add(parent)
            parent = known[parent].parent_id
    return lost


def lost_note(count: int, model_id: str) -> str:
    return (
        f"{count:,} items recorded as indexed were not in the index of {model_id} (the "
        "embedding model or backend changed, or the index was removed): indexed again"
    )


def index_notice(settings: Settings, chunks: int) -> str | None:
    """What ``copilot status`` says when the state has chunks but the embedded index of the
    configured model does not exist yet; None when all is well (or the index is on a
    Qdrant server, which the sync's own check covers)."""
    if not chunks or settings.qdrant_url:
        return None
    model_id = model_id_of(settings)
    folder = settings.index_dir
    if (folder / model_id).exists():
        return None
    others = sorted(p.name for p in _dirs(folder))
    made = f" (the index holds vectors of {', '.join(others)})" if others else ""
    return (
        f"{chunks:,} chunks are recorded as indexed, but there is no index for the embedding "
        f"model {model_id} yet{made}: searches find nothing until `copilot sync` indexes "
        "every source again, which it does by itself. To keep the old index, set "
        "COPILOT_EMBED_BACKEND to the backend that made it (onnx for all-minilm-l6-v2)."
    )


def _dirs(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
