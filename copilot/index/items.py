"""Whole-item BM25 points: one per indexed item, beside its chunks, in both stores.

Why (issue 18): BM25 over chunks ranks an item by one chunk, with term statistics counted
over chunks; on long documents that lost to BM25 over whole documents. So each item gets
one more point in the ``bm25`` field holding its whole-item vector (``bm25.item_vector``),
marked ``level = "item"``. Search uses these points twice (``copilot.index.planner``):
as the IDF corpus of every BM25 query (IDF counted over the owner's items, not chunks),
and as a second candidate list whose scores are added to each item's best chunk.

Rules both stores keep:
- the point id is derived from owner and item id: one item point per item, re-written in
  place when the item changes, so a re-sync never adds points;
- it carries the item's ``item_id``, ``item_hash`` and filterable fields, so
  ``delete_item`` (with or without ``keep_hash``) and every search filter treat it with its
  chunks, and no item point outlives its chunks;
- it has no dense vector and no text: dense search never sees it, and every chunk-level
  read (``count``, ``item_chunk_ids``, the chunk lists of a search) excludes it by
  ``must_not level = item`` (:data:`IS_ITEM`);
- it is rewritten whenever chunks of its item are added, from the stored chunks or from
  a running tally of them (:class:`Tallies`), so it never depends on how the caller
  batches an item's chunks, and a large item streamed in slices costs no re-reads.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import qdrant_edge as qe

from copilot.index import bm25
from copilot.index.base import EMBED_KEY
from copilot.index.filters import scoped
from copilot.index.points import PointParts, dense_of, has_dense

LEVEL = "level"
ITEM = "item"
IS_ITEM = qe.FieldCondition(LEVEL, match=qe.MatchValue(ITEM))
# Payload an item point copies from its chunks: what search filters and deletes look at.
COPIED = (
    "acl", "source", "kind", "sender", "folder", "thread_id", "parent_id", "modified_ts",
    "title", "url",
)  # fmt: skip
# Payload fields of a chunk that making its item's point reads.
CHUNK_FIELDS = ["owner", "item_id", "item_hash", "text", "prefix_chars", *COPIED]
_NAMESPACE = uuid.UUID("5b0c3c1e-5f0e-4f59-9a43-0d7f1c1e6a18")
KEYED_READ = 4  # points read per key asked by ``vectors_by_key`` (copies share a key)
ITEM_KEYED_READ = 4096  # points read of one item by ``item_vectors_by_key``
READ_ITEMS = 256  # items whose chunks one read fetches when item points are rebuilt

ItemKey = tuple[str, str, str | None]  # owner, item id, item hash (None: any version)


def batched(values: Iterable[PointParts], size: int) -> Iterator[list[PointParts]]:
    """``values`` in lists of at most ``size`` (itertools.batched arrives in Python 3.12)."""
    batch: list[PointParts] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


SCROLL_PAGE = 1000  # points one scroll call returns


def scrolled(page: Callable[[Any], tuple[Sequence[Any], Any]]) -> Iterator[dict[str, Any]]:
    """The payload (and ``id``) of every record ``page(offset)`` returns, page after page,
    until it gives no next offset: the read loop of both stores' ``_scroll``."""
    offset = None
    while True:
        records, offset = page(offset)
        for r in records:
            yield {**(r.payload or {}), "id": str(r.id)}
        if offset is None:
            return


def item_point_id(owner: str, item_id: str) -> str:
    """The one point id of ``owner``'s item ``item_id`` (a UUID, as every point id)."""
    return str(uuid.uuid5(_NAMESPACE, f"{owner}\x00{item_id}"))


def key_of(payload: dict[str, Any]) -> ItemKey:
    """The item (and version) a chunk with this payload belongs to."""
    item_hash = payload.get("item_hash")
    return (
        str(payload["owner"]),
        str(payload["item_id"]),
        item_hash if isinstance(item_hash, str) else None,
    )


def rebuild(
    keys: Iterable[ItemKey], read: Callable[[qe.Filter], Iterable[dict[str, Any]]]
) -> Iterator[Tally]:
    """The tallies of ``keys``, each made from its chunks' payloads as ``read`` (a store's
    scroll over a filter, reading ``CHUNK_FIELDS``) returns them; an item without chunks
    is left out.

    One read per ``READ_ITEMS`` items of one owner, not one per item: against a Qdrant
    server each read is a round trip, and an ``add`` of small items touches hundreds.
    """
    wanted: dict[str, dict[str, str | None]] = defaultdict(dict)
    for owner, item_id, item_hash in keys:
        wanted[owner][item_id] = item_hash
    for owner in sorted(wanted):
        ids = sorted(wanted[owner])
        for start in range(0, len(ids), READ_ITEMS):
            part = ids[start : start + READ_ITEMS]
            condition = qe.FieldCondition("item_id", match=qe.MatchAny(part))
            tallies = {item_id: Tally((owner, item_id, wanted[owner][item_id])) for item_id in part}
            for payload in read(scoped(owner, condition, must_not=[IS_ITEM])):
                tally = tallies.get(str(payload.get("item_id")))
                if tally is not None and tally.key[2] in (None, payload.get("item_hash")):
                    tally.add(payload)
            yield from (tally for tally in tallies.values() if tally.first is not None)


class Tallies:
    """The running tallies of the items a store wrote last, so that a large item stored in
    slices (the pipeline streams it) is not re-read in full after every slice, which made
    writing it quadratic. The stored chunks stay the truth: a tally is used only when the
    new chunks extend it (same version, chunk ids not counted yet), else the item is
    re-read. Kept for the ``keep`` most recent items."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._tallies: OrderedDict[tuple[str, str], Tally] = OrderedDict()

    def update(
        self,
        chunks: Sequence[dict[str, Any]],
        read: Callable[[qe.Filter], Iterable[dict[str, Any]]],
    ) -> Iterator[PointParts]:
        """Item points of the items of ``chunks`` (payloads just stored, with ``id``)."""
        fresh: dict[ItemKey, list[dict[str, Any]]] = defaultdict(list)
        for payload in chunks:
            fresh[key_of(payload)].append(payload)
        stale: list[ItemKey] = []
        for key, payloads in fresh.items():
            tally = self._tallies.get(key[:2])
            if tally is None or tally.key != key or any(p["id"] in tally.ids for p in payloads):
                stale.append(key)
                continue
            for payload in payloads:
                tally.add(payload)
            self._tallies.move_to_end(key[:2])
            yield tally.parts()
        for tally in rebuild(stale, read):
            self._remember(tally)
            yield tally.parts()

    def forget(self, owner: str, item_id: str) -> None:
        """Drop an item's tally (deleted, or its payload changed)."""
        self._tallies.pop((owner, item_id), None)

    def _remember(self, tally: Tally) -> None:
        self._tallies[tally.key[:2]] = tally
        self._tallies.move_to_end(tally.key[:2])
        while len(self._tallies) > self.keep:
            self._tallies.popitem(last=False)


def chunks_filter(key: ItemKey) -> qe.Filter:
    """The chunks of one item (of one version when the key has a hash), never the item
    point itself."""
    owner, item_id, item_hash = key
    conditions = [qe.FieldCondition("item_id", match=qe.MatchValue(item_id))]
    if item_hash is not None:
        conditions.append(qe.FieldCondition("item_hash", match=qe.MatchValue(item_hash)))
    return scoped(owner, *conditions, must_not=[IS_ITEM])


def keyed_read(owner: str, keys: Sequence[str]) -> tuple[qe.Filter, int]:
    """The filter and the page size of the one read ``vectors_by_key`` makes: ``owner``'s
    chunks whose dense vector was made from a text of ``keys``, up to ``KEYED_READ`` points
    a key (copies share a key; a key held only by points past that is embedded again)."""
    any_key = qe.FieldCondition(EMBED_KEY, match=qe.MatchAny(list(keys)))
    return scoped(owner, any_key, must_not=[IS_ITEM]), KEYED_READ * len(keys)


def item_keyed_read(owner: str, item_id: str) -> tuple[qe.Filter, int]:
    """The filter and page size of ``item_vectors_by_key``'s one read: the item's chunks,
    as many as ``ITEM_KEYED_READ`` (an item embeds at most ``embed_item_chunks``, 1,000 by
    default; past the read, the rest are keyword-only or simply embedded again)."""
    return chunks_filter((owner, item_id, None)), ITEM_KEYED_READ


def by_key(records: Iterable[Any]) -> dict[str, np.ndarray]:
    """Key -> dense vector of records read with their ``EMBED_KEY`` and dense vector
    (either engine's records); those without both are left out."""
    return {
        str(r.payload[EMBED_KEY]): dense_of(r.vector)
        for r in records
        if r.payload and r.payload.get(EMBED_KEY) and has_dense(r.vector)
    }


def chunks_only(flt: qe.Filter) -> qe.Filter:
    """``flt`` (made by ``filters.scoped``) narrowed to chunks: item points left out."""
    return qe.Filter(must=flt.must, should=flt.should, must_not=[*(flt.must_not or []), IS_ITEM])


def item_parts(key: ItemKey, chunks: Iterable[dict[str, Any]]) -> PointParts | None:
    """The item point of ``key`` from its chunks' payloads (``CHUNK_FIELDS``); None when
    it has no chunks."""
    tally = Tally(key)
    for payload in chunks:
        tally.add(payload)
    return tally.parts() if tally.first is not None else None


class Tally:
    """An item's term counts so far, from its chunks' payloads.

    The item's text is its title (repeated as in every chunk) and its chunks' texts. A
    chunk that starts with a repeated heading path or table header (``prefix_chars``)
    counts that prefix once per item, not once per chunk: a wide table's header would
    otherwise dominate the item's term counts and length.
    """

    def __init__(self, key: ItemKey) -> None:
        self.key = key
        self.counts: dict[int, int] = {}
        self.prefixes: set[str] = set()
        self.ids: set[str] = set()
        self.first: dict[str, Any] | None = None

    def add(self, payload: dict[str, Any]) -> None:
        """Count one chunk (its payload: ``text``, ``prefix_chars``, ``id`` if stored)."""
        self.first = self.first or payload
        if "id" in payload:
            self.ids.add(str(payload["id"]))
        text = str(payload.get("text") or "")
        cut = int(payload.get("prefix_chars") or 0)
        prefix, body = text[:cut], text[cut:]
        if prefix and prefix not in self.prefixes:
            self.prefixes.add(prefix)
            body = text
        for term, n in bm25.term_counts(body).items():
            self.counts[term] = self.counts.get(term, 0) + n

    def parts(self) -> PointParts:
        """The item point: whole-item vector and the payload filters and deletes need."""
        owner, item_id, item_hash = self.key
        first = self.first or {}
        counts = dict(self.counts)
        title = first.get("title")
        for term, n in bm25.title_counts(title if isinstance(title, str) else "").items():
            counts[term] = counts.get(term, 0) + n
        payload = {f: first[f] for f in COPIED if first.get(f) is not None}
        payload.update(owner=owner, item_id=item_id, **{LEVEL: ITEM})
        if item_hash is not None or first.get("item_hash") is not None:
            payload["item_hash"] = item_hash or first["item_hash"]
        return PointParts(
            id=item_point_id(owner, item_id),
            dense=None,
            sparse=bm25.item_vector(counts),
            payload=payload,
        )
