"""A LlamaIndex ``VectorStoreQuery`` turned into our owner-scoped search, for both stores.

The embedded and the server store answer LlamaIndex queries the same way; this is the one
place that says how (which owner, which extra conditions, which mode and limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import qdrant_edge as qe
from llama_index.core.vector_stores.types import (
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from copilot.index.base import Hit, Mode
from copilot.index.filters import metadata_filter, owner_from_metadata_filters
from copilot.index.fusion import Fusion
from copilot.index.planner import SearchRequest
from copilot.index.points import point_id, to_node

MODES: dict[VectorStoreQueryMode, Mode] = {
    VectorStoreQueryMode.DEFAULT: "dense",
    VectorStoreQueryMode.SPARSE: "bm25",
    VectorStoreQueryMode.HYBRID: "hybrid",
}


def plan_query(
    query: VectorStoreQuery, kwargs: dict[str, Any], fusion: Fusion, feedback: int = 0
) -> SearchRequest:
    """The owner-scoped search for ``query``; raises without an owner.

    ``kwargs`` are ``query()``'s: ``owner``, and optionally ``rrf_k``, ``fusion`` and
    ``feedback`` (defaults ``fusion`` and ``feedback``, the store's settings).
    """
    owner = kwargs.get("owner")
    named = owner_from_metadata_filters(query.filters)
    if owner is not None and named is not None and owner != named:
        raise ValueError(f"owner={owner!r} conflicts with the filter owner == {named!r}")
    owner = owner if owner is not None else named
    if owner is None:
        raise ValueError("query() needs owner=... or a filter owner == X")
    conditions: list[Any] = []
    if query.filters is not None:
        conditions.append(metadata_filter(query.filters))
    if query.doc_ids:
        conditions.append(qe.FieldCondition("item_id", match=qe.MatchAny(list(query.doc_ids))))
    if query.node_ids:
        conditions.append(qe.HasIdCondition({point_id(i) for i in query.node_ids}))
    if query.mode not in MODES:
        raise ValueError(f"query mode {query.mode.value!r} is not supported by this store")
    mode = MODES[query.mode]
    k = query.similarity_top_k
    if mode == "hybrid":
        k = query.hybrid_top_k or query.similarity_top_k
    return SearchRequest(
        owner=owner,
        text=query.query_str or "",
        dense=None if query.query_embedding is None else np.asarray(query.query_embedding),
        mode=mode,
        k=k,
        dense_limit=query.similarity_top_k,
        sparse_limit=query.sparse_top_k or (k if mode == "bm25" else query.similarity_top_k),
        conditions=tuple(conditions),
        rrf_k=int(kwargs.get("rrf_k", 60)),
        weights=None if query.alpha is None else (query.alpha, 1.0 - query.alpha),
        fusion=kwargs.get("fusion", fusion),
        feedback=int(kwargs.get("feedback", feedback)),
    )


def to_result(hits: Sequence[Hit]) -> VectorStoreQueryResult:
    return VectorStoreQueryResult(
        nodes=[to_node(hit.id, hit.payload) for hit in hits],
        similarities=[hit.score for hit in hits],
        ids=[hit.id for hit in hits],
    )
