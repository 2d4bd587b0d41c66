"""The scale-out index: the same store as :mod:`copilot.index.store`, on a Qdrant server.

``COPILOT_QDRANT_URL`` picks it (see :func:`open_client` for the accepted forms). It is a
LlamaIndex ``QdrantVectorStore`` (batched, retried uploads come from there) whose public
methods, payload, BM25 vectors and search behave like :class:`EdgeVectorStore`'s, so the
pipeline, search and tests do not care which one they hold:

- one collection per embedding model, with a dense (cosine) vector, a BM25 sparse vector
  with ``Modifier.IDF``, per-tenant HNSW (``m=0``, ``payload_m=16``) and payload indexes,
  ``owner`` being a keyword index with ``is_tenant=True`` (see :mod:`.server_schema`);
- every read and delete filter is built by ``filters.scoped`` (``owner == X`` in ``must``)
  and translated to the client's models by :func:`client_filter`, so the filter semantics
  cannot drift from the embedded store's;
- BM25 IDF is computed over the querying owner's points only (``IdfCorpusParams``); hybrid
  search fuses the dense and BM25 candidate lists as the embedded store does: weighted
  DBSF in Python by default (``copilot.index.fusion``), or weighted RRF on the server.

``QdrantVectorStore``'s own ``query``/``delete``/``get_nodes`` filter on nothing but what the
caller passes; they are replaced here by owner-scoped versions or refused.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from qdrant_client import models
from qdrant_client.local.qdrant_local import QdrantLocal

from copilot.index import bm25
from copilot.index.filters import (
    SearchFilters,
    search_conditions,
)
from copilot.index.fusion import Fusion, check_request, dbsf, plan_stages
from copilot.index.llama_query import plan_query, to_result
from copilot.index.points import DENSE, SPARSE, dense_list, point_id
from copilot.index.server_client import (
    client_filter,
    client_point,
    client_query,
    collection_name,
    open_client,
    owner_filter,
    sparse_encoder,
)
from copilot.index.server_schema import ensure_collection
from copilot.index.store import UPSERT_BATCH, Hit, Mode

__all__ = ["ServerVectorStore", "client_filter", "collection_name", "open_client"]


class ServerVectorStore(QdrantVectorStore):
    """Vector store on one Qdrant collection; see the module docstring."""

    dim: int = 0

    def __init__(
        self,
        client: qdrant_client.QdrantClient,
        collection: str,
        dim: int,
        *,
        batch_size: int = UPSERT_BATCH,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
    ) -> None:
        if dim < 1:
            raise ValueError(f"vector size must be positive, got {dim}")
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
            dense_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            sparse_config=models.SparseVectorParams(modifier=models.Modifier.IDF),
            shard_number=shard_number,
            replication_factor=replication_factor,
            write_consistency_factor=write_consistency_factor,
        )
        self.dim = dim
        try:
            ensure_collection(
                self.client,
                collection,
                dim,
                dense_config=self._dense_config,
                sparse_config=self._sparse_config,
                shard_number=shard_number,
                replication_factor=replication_factor,
                write_consistency_factor=write_consistency_factor,
            )
        except BaseException:
            self.close()  # a local-mode client holds its folder's lock until closed
            raise
        self._collection_initialized = True
        self._legacy_vector_format = False  # ours: named vectors, checked above

    # ---- LlamaIndex interface ------------------------------------------------------------

    def _build_points(
        self, nodes: list[BaseNode], sparse_vector_name: str
    ) -> tuple[list[Any], list[str]]:
        """Our payload and BM25 vectors (title boosted), exactly as the embedded store writes
        them; called by ``QdrantVectorStore.add``, which uploads in batches with retries."""
        points = [client_point(node, self.dim) for node in nodes]  # validates each node
        return points, [node.node_id for node in nodes]

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert nodes (ids are UUID strings; re-adding an id replaces that point).

        Every node is checked before the first batch is sent, as in the embedded store.
        """
        size, self.batch_size = self.batch_size, int(kwargs.pop("batch_size", self.batch_size))
        try:
            return super().add(list(nodes), **kwargs)
        finally:
            self.batch_size = size

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every chunk of item ``ref_doc_id``; needs ``owner=``."""
        owner = delete_kwargs.get("owner")
        if owner is None:
            raise ValueError("delete() needs owner=...: items are only ever deleted per owner")
        self.delete_item(owner, ref_doc_id)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """LlamaIndex query with the embedded store's semantics: needs ``owner=`` or an
        ``owner == X`` filter; DEFAULT dense, SPARSE BM25, HYBRID RRF (``alpha`` weights)."""
        owner, conditions, params = plan_query(query, kwargs)
        return to_result(self._search(owner, conditions, **params))

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return self.add(list(nodes), **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        self.delete(ref_doc_id, **delete_kwargs)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return self.query(query, **kwargs)

    def get_nodes(self, *args: Any, **kwargs: Any) -> list[BaseNode]:
        raise NotImplementedError("not owner-scoped: use query(..., owner=) or item_chunk_ids")

    def delete_nodes(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("not owner-scoped: use delete_item(owner, item_id)")

    def clear(self) -> None:
        raise NotImplementedError("would delete every user's index: drop the collection instead")

    aget_nodes = get_nodes  # type: ignore[assignment]
    adelete_nodes = delete_nodes  # type: ignore[assignment]
    aclear = clear  # type: ignore[assignment]

    # ---- our own API (same as EdgeVectorStore) -------------------------------------------

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
        fusion: Fusion = "dbsf",
    ) -> list[Hit]:
        """The ``k`` best chunks of ``owner``; see ``EdgeVectorStore.search`` (same fusion:
        DBSF in Python by default, or the server's weighted RRF)."""
        return self._search(
            owner,
            search_conditions(filters),
            text=text,
            dense=dense,
            mode=mode,
            k=k,
            dense_limit=max(candidates, k),
            sparse_limit=max(candidates, k),
            rrf_k=rrf_k,
            weights=weights,
            fusion=fusion,
        )

    def delete_item(self, owner: str, item_id: str, keep_hash: str | None = None) -> None:
        """Delete ``owner``'s chunks of ``item_id``, except those of version ``keep_hash``."""
        keep = [qe.FieldCondition("item_hash", match=qe.MatchValue(keep_hash))] if keep_hash else []
        item = qe.FieldCondition("item_id", match=qe.MatchValue(item_id))
        self.client.delete(
            self.collection_name,
            points_selector=models.FilterSelector(filter=owner_filter(owner, item, must_not=keep)),
            wait=True,
        )

    def set_item_payload(self, owner: str, item_id: str, values: dict[str, Any]) -> None:
        """Overwrite payload fields (``title``, ``url``) on every chunk of one item."""
        item = qe.FieldCondition("item_id", match=qe.MatchValue(item_id))
        self.client.set_payload(
            self.collection_name,
            payload=values,
            points=models.FilterSelector(filter=owner_filter(owner, item)),
            wait=True,
        )

    def count(self, owner: str | None = None) -> int:
        """Exact number of chunks: all of them, or ``owner``'s."""
        flt = None if owner is None else owner_filter(owner)
        return self.client.count(self.collection_name, count_filter=flt, exact=True).count

    def item_chunk_ids(self, owner: str, item_id: str) -> list[str]:
        """Point ids of one item's chunks, in chunk order."""
        flt = owner_filter(owner, qe.FieldCondition("item_id", match=qe.MatchValue(item_id)))
        found: list[tuple[int, str]] = []
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection_name,
                scroll_filter=flt,
                limit=1000,
                offset=offset,
                with_payload=["chunk"],
                with_vectors=False,
            )
            found += [(int((r.payload or {}).get("chunk", 0)), str(r.id)) for r in records]
            if offset is None:
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
        return {str(r.id): np.asarray(r.vector[DENSE], dtype=np.float32) for r in records}  # type: ignore[index]

    def optimize(self) -> None:
        """Nothing to do: the server indexes in the background as points arrive."""

    def flush(self) -> None:
        """Nothing to do: writes are sent with ``wait=True``, so they are in the server's WAL."""

    def close(self) -> None:
        """Close the client (and release a local-mode folder). Safe to call twice."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ServerVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> qdrant_client.QdrantClient:
        if self._client is None:
            raise RuntimeError(f"the index collection {self.collection_name!r} is closed")
        return self._client

    # ---- internals -----------------------------------------------------------------------

    def _search(
        self,
        owner: str,
        conditions: list[Any],
        *,
        text: str,
        dense: np.ndarray | None,
        mode: str,
        k: int,
        dense_limit: int,
        sparse_limit: int,
        rrf_k: int,
        weights: tuple[float, float] | None,
        fusion: Fusion = "dbsf",
    ) -> list[Hit]:
        check_request(k, mode, fusion, dense is not None, text)
        flt = owner_filter(owner, *conditions)
        # IDF over this owner's chunks only, as in the embedded store: no side channel.
        sparse_params = models.SearchParams(idf=models.IdfCorpusParams(corpus=owner_filter(owner)))
        dense_params = models.SearchParams(hnsw_ef=max(dense_limit, 128))
        if isinstance(getattr(self.client, "_client", None), QdrantLocal):
            dense_params = None  # local mode searches exactly and warns about any other param
        vector = None if dense is None else dense_list(dense, self.dim)
        params = {DENSE: dense_params, SPARSE: sparse_params}
        stages = [
            (client_query(st.query), st.field, params[st.field], st.limit, st.weight)
            for st in plan_stages(mode, vector, text, dense_limit, sparse_limit, weights)
        ]
        if not stages:
            return []  # BM25 with only stop words / empty text: nothing can match
        if mode == "hybrid" and len(stages) > 1 and fusion == "dbsf":
            return self._dbsf(flt, stages, k)
        if mode != "hybrid" or len(stages) == 1:
            query, using, params, _, _ = stages[0]
            response = self.client.query_points(
                self.collection_name,
                query=query,
                using=using,
                query_filter=flt,
                search_params=params,
                limit=k,
                with_payload=True,
            )
        else:
            response = self.client.query_points(
                self.collection_name,
                prefetch=[
                    models.Prefetch(query=q, using=u, params=p, limit=n, filter=flt)
                    for q, u, p, n, _ in stages
                ],
                query=models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=[w for *_, w in stages])),
                query_filter=flt,
                limit=k,
                with_payload=True,
            )
        return [
            Hit(id=str(p.id), score=p.score, payload=dict(p.payload or {})) for p in response.points
        ]

    def _dbsf(self, flt: models.Filter, stages: list[Any], k: int) -> list[Hit]:
        """Weighted DBSF in Python, as the embedded store does: both candidate lists in one
        batched call without payloads, then only the ``k`` winners' payloads."""
        requests = [
            models.QueryRequest(query=q, using=u, params=p, limit=n, filter=flt)
            for q, u, p, n, _ in stages
        ]
        lists = self.client.query_batch_points(self.collection_name, requests=requests)
        ranked = [[(str(p.id), p.score) for p in answer.points] for answer in lists]
        fused = dbsf(ranked, [w for *_, w in stages])
        # The ids came from owner-filtered lists, so reading them back stays in the tenant.
        # A point deleted between the two calls (a concurrent sync) is skipped and the next
        # fused id read instead, rather than returned without its payload.
        hits: list[Hit] = []
        start = 0
        while len(hits) < k and start < len(fused):
            part = fused[start : start + (k - len(hits))]
            start += len(part)
            records = self.client.retrieve(self.collection_name, [i for i, _ in part])
            payloads = {str(r.id): dict(r.payload or {}) for r in records}
            hits += [Hit(id=i, score=s, payload=payloads[i]) for i, s in part if i in payloads]
        return hits
