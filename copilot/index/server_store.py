"""The scale-out index: the same store as :mod:`copilot.index.store`, on a Qdrant server.

``COPILOT_QDRANT_URL`` picks it (see :func:`open_client` for the accepted forms). It is a
LlamaIndex ``QdrantVectorStore`` (batched, retried uploads come from there) whose public
methods, payload, BM25 vectors and search behave like :class:`EdgeVectorStore`'s (both are
an ``IndexStore``, see :mod:`.base`), so the pipeline, search and tests do not care which
one they hold:

- one collection per embedding model, with a dense (cosine) vector, a BM25 sparse vector
  with ``Modifier.IDF``, per-tenant HNSW (``m=0``, ``payload_m=16``) and payload indexes,
  ``owner`` being a keyword index with ``is_tenant=True`` (see :mod:`.server_schema`);
- every read and delete filter is built by ``filters.scoped`` (``owner == X`` in ``must``)
  and translated to the client's models by :func:`client_filter`, so the filter semantics
  cannot drift from the embedded store's;
- a search runs as the embedded store's does, planned by :mod:`copilot.index.planner`:
  BM25 IDF over the querying owner's items only (``IdfCorpusParams``), whole-item BM25
  added to the best chunk's, and the dense and BM25 lists fused in Python. Only the
  engine calls differ (:class:`copilot.index.server_engine.ClientEngine`);
- the same whole-item BM25 points (:mod:`copilot.index.items`), rewritten after each
  ``add`` and rebuilt on open for a collection made with other item settings.

``QdrantVectorStore``'s own ``query``/``delete``/``get_nodes`` filter on nothing but what the
caller passes; they are replaced here by owner-scoped versions or refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import qdrant_client
import qdrant_edge as qe
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    VectorStoreQuery,
    VectorStoreQueryResult,
)
from llama_index.vector_stores.qdrant import QdrantVectorStore
from pydantic import PrivateAttr
from qdrant_client import models
from qdrant_client.local.qdrant_local import QdrantLocal

from copilot.index import bm25, items
from copilot.index.base import EMBED_KEY
from copilot.index.filters import scoped
from copilot.index.fusion import Fusion
from copilot.index.llama_query import plan_query, to_result
from copilot.index.planner import PlannedSearch, run_search
from copilot.index.points import (
    DENSE,
    SPARSE,
    PointParts,
    chunk_view,
    dense_of,
    has_dense,
    point_id,
)
from copilot.index.server_client import (
    client_filter,
    client_point,
    client_query,
    collection_name,
    open_client,
    owner_filter,
    sparse_encoder,
)
from copilot.index.server_engine import ClientEngine
from copilot.index.server_schema import ensure_collection, record_items

__all__ = ["ServerVectorStore", "client_filter", "collection_name", "open_client"]

log = logging.getLogger(__name__)

SERVER_UPSERT_BATCH = 256  # points per HTTP request to a Qdrant server


class ServerVectorStore(PlannedSearch, QdrantVectorStore):
    """Vector store on one Qdrant collection; see the module docstring.

    ``fusion`` is how ``search`` fuses hybrid results and ``feedback`` how many top chunks
    its dense leg is moved towards (``copilot.index.feedback``), unless told otherwise.
    """

    dim: int = 0
    fusion: Fusion = "dbsf"
    feedback: int = 0
    _closed: bool = PrivateAttr(default=False)
    _tallies: items.Tallies = PrivateAttr(default_factory=items.Tallies)

    def __init__(
        self,
        client: qdrant_client.QdrantClient,
        collection: str,
        dim: int,
        *,
        fusion: Fusion = "dbsf",
        feedback: int = 0,
        batch_size: int = SERVER_UPSERT_BATCH,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
    ) -> None:
        if dim < 1:
            raise ValueError(f"vector size must be positive, got {dim}")
        dense_config = models.VectorParams(size=dim, distance=models.Distance.COSINE)
        sparse_config = models.SparseVectorParams(modifier=models.Modifier.IDF)
        super().__init__(
            collection_name=collection,
            client=client,
            batch_size=batch_size,
            enable_hybrid=True,
            sparse_doc_fn=sparse_encoder(bm25.document_vector),
            sparse_query_fn=sparse_encoder(bm25.query_vector),
            index_doc_id=False,
            dense_vector_name=DENSE,
            sparse_vector_name=SPARSE,
            dense_config=dense_config,
            sparse_config=sparse_config,
            shard_number=shard_number,
            replication_factor=replication_factor,
            write_consistency_factor=write_consistency_factor,
        )
        self.dim, self.fusion, self.feedback = dim, fusion, feedback
        try:
            stale = ensure_collection(
                self.client,
                collection,
                dim,
                dense_config=dense_config,
                sparse_config=sparse_config,
                shard_number=shard_number,
                replication_factor=replication_factor,
                write_consistency_factor=write_consistency_factor,
            )
            self._collection_initialized = True
            self._legacy_vector_format = False  # ours: named vectors, checked above
            if stale:
                self._rebuild_items()
        except BaseException:
            self.close()  # a local-mode client holds its folder's lock until closed
            raise

    # ---- LlamaIndex interface ------------------------------------------------------------

    def _build_points(
        self, nodes: list[BaseNode], sparse_vector_name: str
    ) -> tuple[list[Any], list[str]]:
        """Our payload and BM25 vectors (title boosted), exactly as the embedded store writes
        them; called by ``QdrantVectorStore.add``, which uploads in batches with retries."""
        points = [client_point(node, self.dim) for node in nodes]  # validates each node
        return points, [node.node_id for node in nodes]

    def add(
        self, nodes: Sequence[BaseNode], shard_identifier: Any | None = None, **kwargs: Any
    ) -> list[str]:
        """Upsert nodes (ids are UUID strings; re-adding an id replaces that point).

        Every node is checked before the first batch is sent, as in the embedded store.
        """
        size, self.batch_size = self.batch_size, int(kwargs.pop("batch_size", self.batch_size))
        try:
            ids = super().add(list(nodes), shard_identifier, **kwargs)
        finally:
            self.batch_size = size
        read = self._read_chunks
        self._write(parts for parts in self._tallies.update([chunk_view(n) for n in nodes], read))
        return ids

    def delete(
        self, ref_doc_id: str, shard_identifier: Any | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete every chunk of item ``ref_doc_id``; needs ``owner=``. The chunks are found
        by owner and item, so QdrantVectorStore's ``shard_identifier`` is not needed."""
        owner = delete_kwargs.get("owner")
        if owner is None:
            raise ValueError("delete() needs owner=...: items are only ever deleted per owner")
        self.delete_item(owner, ref_doc_id)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """LlamaIndex query with the embedded store's semantics: needs ``owner=`` or an
        ``owner == X`` filter; DEFAULT dense, SPARSE BM25, HYBRID both fused (``alpha``
        weights dense vs. BM25)."""
        request = plan_query(query, kwargs, self.fusion, self.feedback)
        return to_result(run_search(self._engine(), request))

    async def async_add(
        self, nodes: Sequence[BaseNode], shard_identifier: Any | None = None, **kwargs: Any
    ) -> list[str]:
        return self.add(list(nodes), shard_identifier, **kwargs)

    async def adelete(
        self, ref_doc_id: str, shard_identifier: Any | None = None, **delete_kwargs: Any
    ) -> None:
        self.delete(ref_doc_id, shard_identifier, **delete_kwargs)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return self.query(query, **kwargs)

    def get_nodes(self, *args: Any, **kwargs: Any) -> list[BaseNode]:
        raise NotImplementedError("not owner-scoped: use query(..., owner=) or item_chunk_ids")

    def delete_nodes(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("not owner-scoped: use delete_item(owner, item_id)")

    def clear(self) -> None:
        raise NotImplementedError("would delete every user's index: drop the collection instead")

    async def aget_nodes(self, *args: Any, **kwargs: Any) -> list[BaseNode]:
        return self.get_nodes(*args, **kwargs)

    async def adelete_nodes(self, *args: Any, **kwargs: Any) -> None:
        self.delete_nodes(*args, **kwargs)

    async def aclear(self) -> None:
        self.clear()

    # ---- our own API (as EdgeVectorStore's; ``search`` comes from PlannedSearch) --------

    def delete_item(self, owner: str, item_id: str, keep_hash: str | None = None) -> None:
        """Delete ``owner``'s chunks of ``item_id``, except those of version ``keep_hash``."""
        keep = [qe.FieldCondition("item_hash", match=qe.MatchValue(keep_hash))] if keep_hash else []
        item = qe.FieldCondition("item_id", match=qe.MatchValue(item_id))
        self._tallies.forget(owner, item_id)
        self.client.delete(
            self.collection_name,
            points_selector=models.FilterSelector(filter=owner_filter(owner, item, must_not=keep)),
            wait=True,
        )

    def set_item_payload(self, owner: str, item_id: str, values: dict[str, Any]) -> None:
        """Overwrite payload fields (``title``, ``url``) on every chunk of one item."""
        item = qe.FieldCondition("item_id", match=qe.MatchValue(item_id))
        self._tallies.forget(owner, item_id)
        self.client.set_payload(
            self.collection_name,
            payload=values,
            points=models.FilterSelector(filter=owner_filter(owner, item)),
            wait=True,
        )

    def count(self, owner: str | None = None) -> int:
        """Exact number of chunks: all of them, or ``owner``'s (item points not counted)."""
        flt = items.chunks_only(qe.Filter() if owner is None else scoped(owner))
        return self.client.count(
            self.collection_name, count_filter=client_filter(flt), exact=True
        ).count

    def item_chunk_ids(self, owner: str, item_id: str) -> list[str]:
        """Point ids of one item's chunks, in chunk order."""
        flt = items.chunks_filter((owner, item_id, None))
        found = [(int(p.get("chunk", 0)), p["id"]) for p in self._scroll(flt, ["chunk"])]
        return [pid for _, pid in sorted(found)]

    def vectors(self, owner: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored dense vectors of ``owner``'s chunks ``ids`` (for MMR); others are skipped."""
        if not ids:
            return {}
        flt = owner_filter(owner, qe.HasIdCondition({point_id(i) for i in ids}))
        records, _ = self.client.scroll(
            self.collection_name,
            scroll_filter=flt,
            limit=len(ids),
            with_payload=False,
            with_vectors=[DENSE],
        )
        return {str(r.id): dense_of(r.vector) for r in records if has_dense(r.vector)}

    def vectors_by_key(self, owner: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """As ``IndexStore.vectors_by_key``, in one read (``items.keyed_read``)."""
        return self._keyed(*items.keyed_read(owner, keys)) if keys else {}

    def item_vectors_by_key(self, owner: str, item_id: str) -> dict[str, np.ndarray]:
        """As ``IndexStore.item_vectors_by_key``, in one read (``items.item_keyed_read``)."""
        return self._keyed(*items.item_keyed_read(owner, item_id))

    def _keyed(self, flt: qe.Filter, limit: int) -> dict[str, np.ndarray]:
        records, _ = self.client.scroll(
            self.collection_name, scroll_filter=client_filter(flt), limit=limit,
            with_payload=[EMBED_KEY], with_vectors=[DENSE],
        )  # fmt: skip
        return items.by_key(records)

    def optimize(self) -> None:
        """Nothing to do: the server indexes in the background as points arrive."""

    def flush(self) -> None:
        """Nothing to do: writes are sent with ``wait=True``, so they are in the server's WAL."""

    def close(self) -> None:
        """Close the client (and release a local-mode folder). Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> ServerVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> qdrant_client.QdrantClient:
        if self._closed:
            raise RuntimeError(f"the index collection {self.collection_name!r} is closed")
        return self._client

    # ---- internals -----------------------------------------------------------------------

    def _engine(self) -> ClientEngine:
        # Local mode searches exactly and warns about any search parameter.
        exact = isinstance(getattr(self.client, "_client", None), QdrantLocal)
        return ClientEngine(self.client, self.collection_name, self.dim, exact)

    def _scroll(self, flt: qe.Filter, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Payload ``fields`` (and ``id``) of every point matching ``flt``, page by page."""
        condition = client_filter(flt)
        return items.scrolled(
            lambda offset: self.client.scroll(
                self.collection_name, scroll_filter=condition, limit=items.SCROLL_PAGE,
                offset=offset, with_payload=fields, with_vectors=False,
            )
        )  # fmt: skip

    def _read_chunks(self, flt: qe.Filter) -> Iterator[dict[str, Any]]:
        return self._scroll(flt, items.CHUNK_FIELDS)

    def _write_items(self, keys: Iterable[items.ItemKey]) -> None:
        """(Re)write the item points of ``keys`` from their stored chunks."""
        self._write(tally.parts() for tally in items.rebuild(keys, self._read_chunks))

    def _write(self, parts: Iterable[PointParts]) -> None:
        """Upsert item points in batches."""
        for batch in items.batched(parts, self.batch_size):
            points = [_point(one) for one in batch]
            self.client.upsert(self.collection_name, points, wait=True)

    def _rebuild_items(self) -> None:
        """Rewrite every item point from the stored chunks, then record the settings (last:
        a crash midway rebuilds again on the next open)."""
        chunks = qe.Filter(must_not=[items.IS_ITEM])
        keys = {items.key_of(p) for p in self._scroll(chunks, ["owner", "item_id", "item_hash"])}
        log.warning(
            "collection %s: building whole-item BM25 points for %d items (made by an older "
            "version); this runs once",
            self.collection_name,
            len(keys),
        )
        self.client.delete(
            self.collection_name,
            points_selector=models.FilterSelector(
                filter=client_filter(qe.Filter(must=[items.IS_ITEM]))
            ),
            wait=True,
        )
        self._write_items(keys)
        record_items(self.client, self.collection_name)


def _point(parts: PointParts) -> models.PointStruct:
    """Checked point parts in the client's model (an item point: BM25 only)."""
    vector: dict[str, models.Vector] = {SPARSE: client_query(parts.sparse)}
    if parts.dense is not None:
        vector[DENSE] = parts.dense
    return models.PointStruct(id=parts.id, vector=vector, payload=parts.payload)
