"""The index interface: what the embedded and the server vector store both offer.

Two stores keep the same index (:class:`~copilot.index.store.EdgeVectorStore` in-process on
Qdrant Edge, :class:`~copilot.index.server_store.ServerVectorStore` on a Qdrant server) so
the sync pipeline, search and the API hold either without knowing which. ``IndexStore``
names that shared API; it is a ``Protocol`` like ``connectors.base.Connector``, so the two
stores keep their own LlamaIndex base classes and nothing else has to inherit from it.

Every read and delete takes the owner: no method here can reach another user's chunks.
The layout both stores write (payload fields with an index, the format number) is here too,
so a collection made by one means the same as a shard made by the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeGuard, get_args

import numpy as np
from llama_index.core.schema import BaseNode

from copilot.index.filters import SearchFilters
from copilot.index.fusion import Fusion

__all__ = [
    "EMBED_KEY",
    "FORMAT",
    "KEYWORD_FIELDS",
    "UPSERT_BATCH",
    "Fusion",
    "Hit",
    "IndexStore",
    "Mode",
    "QueryEmbedder",
    "SearchFilters",
    "embed_key",
    "is_mode",
]

Mode = Literal["hybrid", "dense", "bm25"]


def is_mode(value: str) -> TypeGuard[Mode]:
    """Whether a mode a person typed (CLI option, request field) is one the index knows."""
    return value in get_args(Mode)


EMBED_KEY = "embed_key"  # of the text a chunk's dense vector was made from: see embed_key()
KEYWORD_FIELDS = (
    "acl", "source", "item_id", "parent_id", "kind", "item_hash", "sender", "folder", "thread_id",
    "level",  # "item" on the whole-item BM25 points (copilot/index/items.py), else absent
    EMBED_KEY,
)  # fmt: skip


def embed_key(text: str) -> str:
    """The identity of the exact text a chunk's dense vector was made from (title line
    included), kept in the chunk's payload so that a sync finds the vector of a text the
    owner's index already holds instead of embedding it again: an edited document's
    unchanged chunks, a file copied to another folder, an attachment sent twice. 128 bits
    of SHA-256. The index is one per embedding model, so the key need not name it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# Of the shard / collection metadata. 2: whole-item BM25 points (an index of format 1 gets
# them built from its chunks on open; see copilot/index/items.py).
FORMAT = 2
# Points per write. The embedded engine's binding holds the GIL through a write, and a sync
# writes while the API serves: 256 points held every request thread for ~7 ms, 64 for ~2 ms,
# at the same total time (512 points in 12-15 ms either way).
UPSERT_BATCH = 64


@dataclass(frozen=True)
class Hit:
    """One chunk found by a search: its point id, score and payload (``text`` included)."""

    id: str
    score: float
    payload: dict[str, Any]


class QueryEmbedder(Protocol):
    """What search needs of an embedder: one query turned into a vector."""

    def embed_query(self, text: str) -> np.ndarray: ...


class IndexStore(Protocol):
    """A vector store holding every user's chunks, each read and delete under one owner."""

    @property
    def dim(self) -> int:
        """The size of the dense vectors (one store per embedding model)."""
        ...

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert chunks (UUID ids; re-adding an id replaces that point); their ids. The
        whole-item BM25 point of each item they belong to is rewritten from its stored
        chunks (``copilot.index.items``)."""
        ...

    def search(
        self,
        owner: str,
        *,
        text: str,
        dense: np.ndarray | None,
        k: int = 10,
        mode: Mode = "hybrid",
        filters: SearchFilters | None = None,
        candidates: int = 100,
        rrf_k: int = 60,
        weights: tuple[float, float] | None = None,
        fusion: Fusion | None = None,
        feedback: int | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks of ``owner``; ``fusion`` and ``feedback`` None are the
        store's own settings."""
        ...

    def delete_item(self, owner: str, item_id: str, keep_hash: str | None = None) -> None:
        """Delete ``owner``'s chunks of ``item_id``, except those of version ``keep_hash``
        (the item's whole-item point goes or stays with the chunks of its version)."""
        ...

    def set_item_payload(self, owner: str, item_id: str, values: dict[str, Any]) -> None:
        """Overwrite payload fields (``title``, ``url``) on every chunk of one item."""
        ...

    def count(self, owner: str | None = None) -> int:
        """Exact number of chunks: all of them, or ``owner``'s (item points not counted)."""
        ...

    def item_chunk_ids(self, owner: str, item_id: str) -> list[str]:
        """Point ids of one item's chunks, in chunk order."""
        ...

    def vectors(self, owner: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored dense vectors of ``owner``'s chunks ``ids``; others are left out."""
        ...

    def vectors_by_key(self, owner: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """A stored dense vector of ``owner``'s for each of ``keys`` (``embed_key``) that
        some chunk of theirs has; keys none has, or more than a read returns, left out."""
        ...

    def item_vectors_by_key(self, owner: str, item_id: str) -> dict[str, np.ndarray]:
        """The keyed dense vectors of ``owner``'s item ``item_id`` (of any version), by
        ``embed_key``: what a sync keeps of an item it is about to delete."""
        ...

    def optimize(self) -> None:
        """Make searches fast after bulk writes (may take seconds)."""
        ...

    def flush(self) -> None:
        """Make the writes so far durable."""
        ...

    def close(self) -> None:
        """Release the store (and its lock or connection); safe to call twice."""
        ...
