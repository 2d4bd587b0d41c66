"""A chunk whose exact text the owner's index already holds takes its stored vector.

Why: embedding is most of a sync's time (80 % of the real-file benchmark), and much of
what a sync embeds was embedded before. An edited document is stored again as a new
version, every chunk of it, though one paragraph changed; a file copied to another folder,
an attachment forwarded in three mails, an export of a mailbox holding each message in two
folders, a sync killed and run again: each repeats texts whose vectors are in the index.
Each dense chunk's payload keeps the key of the text its vector was made from
(``index.base.embed_key``: title line and text), so a slice of chunks asks the store once
for the keys it has and embeds only the rest, each distinct text once.

A delta source (Graph mail, IMAP) reports a moved message as a deletion in one folder and
a new message in another, in either order. So the vectors of an item a ``Deleted`` event
removes are kept (``Kept``) for the rest of the sync: the message (and its attachments)
arriving under its new id later in the same sync finds them there.

It is exact, not approximate: the default embedder (int8, each text alone) gives a text
the same vector to the bit whatever it runs beside, so a reused vector is the one the text
would get (``tests/ingest/test_reuse.py``). The float backend batches texts, which moves a
vector by ~1e-7; a remote model's vectors are its own business, and reusing them saves
its fees. Only the owner's own chunks are read (the store's filter cannot be widened), and
an index made before the key existed simply has none to offer. A key means something only
within one index, and there is one index per model id: whatever changes the vector a text
gets (model file, quantisation, truncation) must change the model id, as it already must
for the index to hold one kind of vector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from copilot.index.base import IndexStore

__all__ = ["KEPT_MAX", "Kept", "vectors_reusing"]

KEPT_MAX = 20_000  # vectors of deleted items kept for the rest of a sync: ~30 MB at 384-d


class Kept:
    """Vectors of the items a sync deleted, by key, the oldest dropped past ``limit``."""

    def __init__(self, limit: int = KEPT_MAX) -> None:
        self.limit = limit
        self._vectors: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._vectors)

    def add(self, vectors: Mapping[str, np.ndarray]) -> None:
        self._vectors.update(vectors)
        while len(self._vectors) > self.limit:
            del self._vectors[next(iter(self._vectors))]

    def get(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)


def vectors_reusing(
    store: IndexStore,
    owner: str,
    texts: Sequence[str],
    keys: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    kept: Kept | None = None,
) -> tuple[np.ndarray, int]:
    """The vectors of ``texts`` (``keys[i]`` is ``embed_key(texts[i])``), and how many of
    them were not embedded here: found in ``owner``'s index, among the vectors ``kept`` of
    items this sync deleted, or repeated in ``texts``."""
    found = store.vectors_by_key(owner, sorted(set(keys)))
    todo: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in found and kept is not None and (vector := kept.get(key)) is not None:
            found[key] = vector
        if key not in found:
            todo.setdefault(key, text)
    if todo:
        made = embed(list(todo.values()))
        found.update(zip(todo, made, strict=True))
    vectors = np.stack([found[key] for key in keys]) if keys else np.empty((0, 0), np.float32)
    return vectors, len(keys) - len(todo)
