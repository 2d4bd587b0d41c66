"""The Qdrant collection a :class:`~copilot.index.server_store.ServerVectorStore` writes to:
created with our vectors, per-tenant HNSW and payload indexes, or checked when it exists.

Checked rather than trusted, because a collection outlives the code that made it: one made
by another tool, for another embedding model or with other BM25 settings would answer
searches with wrong results instead of an error.
"""

from __future__ import annotations

import warnings
from typing import Any

import qdrant_client
from qdrant_client import models

from copilot.index import bm25
from copilot.index.base import FORMAT, KEYWORD_FIELDS
from copilot.index.points import DENSE, SPARSE


def ensure_collection(
    client: qdrant_client.QdrantClient,
    name: str,
    dim: int,
    *,
    dense_config: models.VectorParams,
    sparse_config: models.SparseVectorParams,
    shard_number: int | None = None,
    replication_factor: int | None = None,
    write_consistency_factor: int | None = None,
) -> bool:
    """Create collection ``name`` if missing, then check it and add missing payload indexes.

    ValueError when it exists but was not made by the copilot for ``dim``-d vectors and the
    current BM25 settings. True when its whole-item points were made with other settings
    (or before they existed): the store rebuilds them, then calls :func:`record_items`.
    """
    meta = _meta(dim)
    if not client.collection_exists(name):
        client.create_collection(
            name,
            vectors_config={DENSE: dense_config},
            sparse_vectors_config={SPARSE: sparse_config},
            # No global graph, one per owner: every query filters on one owner (as in the
            # embedded store, where a global graph lost recall under that filter).
            hnsw_config=models.HnswConfigDiff(m=0, payload_m=16),
            shard_number=shard_number,
            replication_factor=replication_factor,
            write_consistency_factor=write_consistency_factor,
            metadata=meta,
        )
    info = client.get_collection(name)
    vectors = info.config.params.vectors
    sparse = info.config.params.sparse_vectors or {}
    if not isinstance(vectors, dict) or DENSE not in vectors or SPARSE not in sparse:
        raise ValueError(f"collection {name!r} was not made by the copilot (no {DENSE}/{SPARSE})")
    if vectors[DENSE].size != dim:
        raise ValueError(
            f"collection {name!r} holds {vectors[DENSE].size}-d vectors, not {dim}-d: "
            "use one collection per embedding model"
        )
    found = (info.config.metadata or {}).get("bm25")
    if found not in (None, bm25.SIGNATURE):
        raise ValueError(
            f"collection {name!r} was built with other BM25 settings ({found}); "
            "delete it and sync again to rebuild"
        )
    wanted: dict[str, Any] = {
        "owner": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
        "modified_ts": models.PayloadSchemaType.FLOAT,
        **{field: models.PayloadSchemaType.KEYWORD for field in KEYWORD_FIELDS},
    }
    with warnings.catch_warnings():  # local mode: "payload indexes have no effect"
        warnings.filterwarnings("ignore", "Payload indexes have no effect", UserWarning)
        for field, schema in wanted.items():
            if field not in (info.payload_schema or {}):
                client.create_payload_index(name, field, field_schema=schema, wait=True)
    return (info.config.metadata or {}).get("items") != bm25.ITEM_SIGNATURE


def record_items(client: qdrant_client.QdrantClient, name: str) -> None:
    """Record in the collection's metadata that its item points follow today's settings."""
    dim = client.get_collection(name).config.params.vectors
    size = dim[DENSE].size if isinstance(dim, dict) else 0
    client.update_collection(name, metadata=_meta(size))


def _meta(dim: int) -> dict[str, object]:
    return {"format": FORMAT, "dim": dim, "bm25": bm25.SIGNATURE, "items": bm25.ITEM_SIGNATURE}
