"""Conversion between LlamaIndex nodes and Qdrant Edge points, with the checks it needs.

Kept apart from the store so the store reads as engine calls only. The checks matter:
the engine stores a NaN vector or a point without an owner without complaint, and such a
point would poison searches or escape the tenant filter.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import qdrant_edge as qe
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)

from copilot.index import bm25
from copilot.index.filters import epoch_seconds, owner_condition

DENSE = "dense"
SPARSE = "bm25"


def dense_list(vector: Sequence[float] | np.ndarray, dim: int) -> list[float]:
    array = np.asarray(vector, dtype=np.float32).ravel()
    if array.shape[0] != dim:
        raise ValueError(f"expected a {dim}-d vector, got {array.shape[0]}-d")
    if not np.all(np.isfinite(array)):
        raise ValueError("the vector holds NaN or infinite values")
    return array.tolist()


def has_dense(vector: object) -> bool:
    """Whether a point read back with its named vectors has a dense one (a keyword-only
    chunk, see copilot/ingest/budget.py, has none)."""
    return isinstance(vector, dict) and vector.get(DENSE) is not None


def dense_of(vector: object) -> np.ndarray:
    """The dense vector of a point read back with its named vectors (either engine's form)."""
    if not isinstance(vector, dict) or DENSE not in vector:
        raise ValueError("the index returned a point without its dense vector")
    return np.asarray(vector[DENSE], dtype=np.float32)


@dataclass(frozen=True)
class PointParts:
    """A checked node as both engines store it: id, dense and BM25 vectors, payload."""

    id: str
    dense: list[float] | None  # None: a keyword-only chunk (metadata ``keyword_only``)
    sparse: qe.SparseVector
    payload: dict[str, Any]


def to_point(node: BaseNode, dim: int) -> qe.Point:
    """The node as a Qdrant Edge point; see :func:`point_parts` for the checks."""
    return edge_point(point_parts(node, dim))


def edge_point(parts: PointParts) -> qe.Point:
    """Checked point parts as a Qdrant Edge point."""
    vectors: dict[str, list[float] | list[list[float]] | qe.SparseVector] = {SPARSE: parts.sparse}
    if parts.dense is not None:
        vectors[DENSE] = parts.dense
    return qe.Point(parts.id, vectors, parts.payload)


def chunk_view(node: BaseNode) -> dict[str, Any]:
    """What counting a stored node into its item's whole-item vector reads: point id,
    owner, item id and hash, text, title and prefix length (as its payload holds them)."""
    meta = node.metadata
    return {
        "id": point_id(node.node_id),
        "owner": meta.get("owner"),
        "item_id": meta.get("item_id") or node.ref_doc_id,
        "item_hash": meta.get("item_hash"),
        "text": node.get_content(metadata_mode=MetadataMode.NONE),
        "title": meta.get("title"),
        "prefix_chars": meta.get("prefix_chars"),
    }


def point_parts(node: BaseNode, dim: int) -> PointParts:
    """Payload and vectors of ``node``; ValueError without an owner, an item id or a finite
    ``dim``-d embedding (unless it is marked ``keyword_only``: BM25 only, no dense vector),
    or with an id that is not a UUID."""
    meta = dict(node.metadata)
    owner = meta.get("owner")
    owner_condition(owner)  # raises on a missing owner: no point may be stored without one
    item_id = meta.get("item_id") or node.ref_doc_id
    if not item_id:
        raise ValueError(f"node {node.node_id} has no item_id (metadata or ref_doc_id)")
    keyword_only = bool(meta.get("keyword_only"))
    if node.embedding is None and not keyword_only:
        raise ValueError(f"node {node.node_id} has no embedding")
    payload = {key: jsonable(value) for key, value in meta.items()}
    payload.update(owner=owner, item_id=item_id)
    payload["text"] = node.get_content(metadata_mode=MetadataMode.NONE)
    if isinstance(meta.get("modified_ts"), datetime):
        payload["modified_ts"] = epoch_seconds(meta["modified_ts"])
    if isinstance(payload.get("sender"), str):
        payload["sender"] = payload["sender"].lower()
    title = payload.get("title")
    return PointParts(
        id=point_id(node.node_id),
        dense=None if keyword_only or node.embedding is None else dense_list(node.embedding, dim),
        sparse=bm25.document_vector(payload["text"], title if isinstance(title, str) else ""),
        payload=payload,
    )


def point_id(node_id: str) -> str:
    try:
        return str(uuid.UUID(node_id))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"point ids must be UUID strings, got {node_id!r}") from None


def jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_node(hit_id: str, payload: dict[str, Any]) -> TextNode:
    metadata = dict(payload)
    text = metadata.pop("text", "")
    node = TextNode(id_=hit_id, text=text, metadata=metadata)
    if metadata.get("item_id"):
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=metadata["item_id"])
    return node
