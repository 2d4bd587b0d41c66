"""Reaching a Qdrant server from the copilot: the URL forms, collection names, and the
translation of our engine filters, points and query vectors into qdrant-client's models.

Kept apart from :mod:`copilot.index.server_store` so the store reads as client calls only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, overload

import qdrant_client
import qdrant_edge as qe
from llama_index.core.schema import BaseNode
from qdrant_client import models

from copilot.index.filters import scoped
from copilot.index.points import DENSE, SPARSE, point_parts

__all__ = [
    "client_filter",
    "client_point",
    "client_query",
    "collection_name",
    "open_client",
    "owner_filter",
    "sparse_encoder",
]


def open_client(
    url: str, api_key: str | None = None, timeout: int = 30
) -> qdrant_client.QdrantClient:
    """A client for ``COPILOT_QDRANT_URL``.

    ``http://host:6333`` / ``https://...``: a Qdrant server or cluster (``api_key`` optional).
    ``local:/some/dir``: qdrant-client's local mode persisted in that folder (one process at
    a time; exact search, fine for tests and small setups). ``:memory:``: local mode in memory.
    """
    url = url.strip()
    if url == ":memory:":
        return qdrant_client.QdrantClient(location=":memory:")
    if url.startswith("local:"):
        path = url.removeprefix("local:")
        if not path:
            raise ValueError("COPILOT_QDRANT_URL=local:PATH needs a folder after 'local:'")
        return qdrant_client.QdrantClient(path=path)
    if url.startswith(("http://", "https://")):
        return qdrant_client.QdrantClient(url=url, api_key=api_key, timeout=timeout)
    raise ValueError(
        f"COPILOT_QDRANT_URL={url!r} is not understood: use http(s)://host:6333 for a server, "
        "local:/path/to/dir or :memory: for qdrant-client's local mode"
    )


def collection_name(model_id: str) -> str:
    """One collection per embedding model: vectors of two models never share a space."""
    return "copilot_" + re.sub(r"[^A-Za-z0-9_-]+", "_", model_id)


def client_filter(flt: qe.Filter) -> models.Filter:
    """An engine filter made by ``copilot.index.filters`` as a ``qdrant_client`` filter.

    Translating the objects (rather than re-deriving them from ``SearchFilters``) keeps one
    definition of what each filter means for both stores. ValueError for anything it has
    no translation for (a filter it could not translate must not be dropped silently).
    """
    if not isinstance(flt, qe.Filter):
        raise ValueError(f"unsupported filter {flt!r}: expected an engine Filter")
    return models.Filter(
        must=_conditions(flt.must),
        should=_conditions(flt.should),
        must_not=_conditions(flt.must_not),
    )


def _conditions(conditions: Sequence[object] | None) -> list[models.Condition] | None:
    return [_condition(c) for c in conditions] if conditions else None


def _condition(flt: object) -> models.Condition:
    if isinstance(flt, qe.Filter):
        return client_filter(flt)
    if isinstance(flt, qe.FieldCondition):
        if flt.match is not None:
            match: models.Match
            if isinstance(flt.match, qe.MatchAny):
                match = models.MatchAny(any=flt.match.value)
            elif isinstance(flt.match, qe.MatchValue):
                match = models.MatchValue(value=flt.match.value)
            else:
                raise ValueError(f"unsupported match in a filter on {flt.key!r}")
            return models.FieldCondition(key=flt.key, match=match)
        if isinstance(flt.range, qe.RangeFloat):
            r = flt.range
            return models.FieldCondition(
                key=flt.key, range=models.Range(gt=r.gt, gte=r.gte, lt=r.lt, lte=r.lte)
            )
        raise ValueError(f"unsupported condition on {flt.key!r}")
    if isinstance(flt, qe.HasIdCondition):
        return models.HasIdCondition(has_id=sorted(str(i) for i in flt.point_ids))
    raise ValueError(f"unsupported filter element {flt!r}")


def owner_filter(owner: str, *conditions: Any, must_not: Sequence[Any] = ()) -> models.Filter:
    """``filters.scoped`` for the client: can only ever match ``owner``'s points."""
    return client_filter(scoped(owner, *conditions, must_not=must_not))


def client_point(node: BaseNode, dim: int) -> models.PointStruct:
    """The node as the embedded store writes it (payload, dense and title-boosted BM25
    vectors), in the client's model; ``point_parts`` checks owner, item id and vector."""
    parts = point_parts(node, dim)
    vector: dict[str, models.Vector] = {SPARSE: client_query(parts.sparse)}
    if parts.dense is not None:  # a keyword-only chunk has none
        vector[DENSE] = parts.dense
    return models.PointStruct(id=parts.id, vector=vector, payload=parts.payload)


@overload
def client_query(query: list[float]) -> list[float]: ...
@overload
def client_query(query: qe.SparseVector) -> models.SparseVector: ...
def client_query(query: list[float] | qe.SparseVector) -> list[float] | models.SparseVector:
    """A dense vector passes as is; a BM25 vector becomes the client's SparseVector."""
    if isinstance(query, list):
        return query
    return models.SparseVector(indices=list(query.indices), values=list(query.values))


SparseEncoder = Callable[[list[str]], tuple[list[list[int]], list[list[float]]]]


def sparse_encoder(encode: Callable[[str], qe.SparseVector]) -> SparseEncoder:
    """LlamaIndex's sparse encoder hook (unused by our ``_build_points``, which needs titles)."""

    def encoder(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = [encode(t) for t in texts]
        return [list(v.indices) for v in vectors], [list(v.values) for v in vectors]

    return encoder
