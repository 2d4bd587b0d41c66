"""What one synced item becomes: its chunk points in the index and its row in the state store.

Kept apart from the pipeline, which decides *when* things are written, so that *what* is
written — point ids, payload fields, the title a message shows under — is defined once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llama_index.core.schema import TextNode

from connectors.types import Item, Parsed
from copilot.index.base import EMBED_KEY, embed_key
from copilot.index.filters import epoch_seconds
from copilot.ingest.chunk import Chunk

_POINT_NS = uuid.UUID("6f1c5a52-8d0e-4f4e-9b7a-3c2d1e0f9a8b")


@dataclass
class Work:
    """An item on its way through the pipeline: read and hashed, then parsed and chunked."""

    item: Item
    content_hash: str
    depth: int
    chunks: list[Chunk] = field(default_factory=list)
    parsed: Parsed | None = None
    embed_title: str | None = None  # the title cut to fit the window (budget.plan_chunks)


def point_id(owner: str, item_id: str, content_hash: str, position: int) -> str:
    """Derived, not random: storing the same chunk twice overwrites it (no duplicates)."""
    return str(uuid.uuid5(_POINT_NS, f"{owner}\x00{item_id}\x00{content_hash}\x00{position}"))


def item_title(item: Item, parsed: Parsed) -> str:
    """A message shows under its parsed subject; anything else under the source's title."""
    if item.kind == "mail":
        return str(parsed.meta.get("subject") or item.title or "(no subject)")
    return item.title


def chunk_node(owner: str, work: Work, position: int) -> tuple[str, TextNode]:
    """The text to embed (title first, so it counts) and the node to store of one chunk:
    a large item is stored in slices, so its nodes and vectors are never all in memory."""
    assert work.parsed is not None
    title = item_title(work.item, work.parsed)
    chunk = work.chunks[position]
    metadata = _payload(work, title, position, chunk)
    text = f"{work.embed_title or title}\n{chunk.text}"
    if chunk.dense:
        metadata[EMBED_KEY] = embed_key(text)  # its vector can be found again: reuse.py
    else:
        metadata["keyword_only"] = True  # no dense vector: see copilot/ingest/budget.py
    node = TextNode(
        id_=point_id(owner, work.item.id, work.content_hash, position),
        text=chunk.text,
        metadata=metadata,
    )
    return text, node


def state_row(work: Work, scope: str, status: str, chunks: int) -> dict[str, Any]:
    """The item's row for ``StateStore.record_items``."""
    item = work.item
    title = item_title(item, work.parsed) if work.parsed else item.title
    row: dict[str, Any] = {
        "item_id": item.id,
        "scope": scope,
        "parent_id": item.parent,
        "kind": item.kind,
        "title": title,
        "url": item.url,
        "version": item.version,
        "content_hash": work.content_hash,
        "status": status,
        "chunks": chunks,
        "modified": item.modified.timestamp(),
    }
    if work.parsed is not None:
        row["display_text"] = work.parsed.display_text
    return row


def _date_ts(meta: dict[str, Any], fallback: datetime) -> float:
    value = meta.get("date")
    if isinstance(value, str):
        try:
            return epoch_seconds(datetime.fromisoformat(value))
        except ValueError:
            pass
    return epoch_seconds(fallback)


def _payload(work: Work, title: str, position: int, chunk: Chunk) -> dict[str, Any]:
    item, meta = work.item, (work.parsed.meta if work.parsed else {})
    return {
        "owner": item.owner,
        "acl": list(item.acl),
        "source": item.source,
        "item_id": item.id,
        "parent_id": item.parent,
        "kind": item.kind,
        "item_hash": work.content_hash,
        "chunk": position,
        "locator": chunk.locator,
        "prefix_chars": chunk.prefix_chars,
        "title": title,
        "url": item.url,
        "modified_ts": _date_ts(meta, item.modified),
        "sender": str(meta.get("from") or "").lower() or None,
        "sender_name": str(meta.get("from_name") or "") or None,  # citations name people
        "folder": meta.get("folder") or item.meta.get("folder"),
        "thread_id": meta.get("thread_id"),
    }
