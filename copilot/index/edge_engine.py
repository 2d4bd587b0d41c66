"""The search planner's calls on one Qdrant Edge shard (``planner.SearchEngine``), apart
from the store that owns the shard (``copilot.index.store``): what a search asks of the
engine, and the cache that spares it building payloads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import qdrant_edge as qe

from copilot.index.base import Hit
from copilot.index.fusion import Stage
from copilot.index.planner import Candidate, search_params
from copilot.index.points import DENSE, dense_of, has_dense

__all__ = ["ITEM_CACHE_SIZE", "EdgeEngine"]

ITEM_CACHE_SIZE = 200_000  # point id -> item id entries (~30 MB at most)


@dataclass(frozen=True)
class EdgeEngine:
    """The search planner's engine calls on one shard (see ``planner.SearchEngine``).

    A search with BM25 is two or three calls, candidates then payloads: the binding
    serialises calls, not pairs of them, which is why ``planner`` skips ids deleted in
    between.

    Candidates are asked for without payload: the binding holds the GIL while it builds a
    payload per point, which made a 100-point list 5× slower (0.63 vs 0.11 ms on 300 notes),
    and under 20 streaming runs the engine's calls were a quarter of the API process's
    interpreter time. A point's id as text and its item come from ``known``, filled from
    payloads only for points not seen before, and keyed by the id's 128-bit number: the
    binding hands ids back as ``uuid.UUID`` objects, and writing each as text again took
    more time than the engine's own query (0.6 µs a point, ~300 points a search). That
    cache can never be stale: a point id is a hash of owner, item and content
    (``copilot.ingest.items``, ``items.item_point_id``), so an id names one item for ever,
    even after the point is deleted and written again.
    """

    shard: qe.EdgeShard
    dim: int
    known: dict[int | str, tuple[str, str]]  # id's key -> (id as text, item id)

    def nearest(self, owner: str, flt: qe.Filter, stage: Stage, k: int) -> list[Hit]:
        query, params = _query(owner, stage)
        request = qe.QueryRequest(
            limit=k, query=query, filter=flt, params=params, with_payload=True
        )
        return _hits(self.shard.query(request))

    def candidates(
        self, owner: str, requests: Sequence[tuple[Stage, qe.Filter]]
    ) -> list[list[Candidate]]:
        batch = []
        for stage, flt in requests:
            query, params = _query(owner, stage)
            batch.append(
                qe.QueryRequest(
                    limit=stage.limit,
                    query=query,
                    filter=flt,
                    params=params,
                    with_payload=False,
                )
            )
        answers = self.shard.query_batch(qe.QueryBatchRequest(batch))
        keyed = [_keyed(points) for points in answers]
        known = self.known
        unknown = {key: i for ranked in keyed for key, i, _ in ranked if key not in known}
        if unknown:
            if len(known) + len(unknown) > ITEM_CACHE_SIZE:
                known.clear()  # a bound on memory; refilled by the next searches
            selector = qe.PayloadSelector.Include(["item_id"])
            for record in self.shard.retrieve(list(unknown.values()), selector, False):
                item = str((record.payload or {}).get("item_id", ""))
                known[_key(record.id)] = (str(record.id), item)
        return [[_candidate(known, key, i, s) for key, i, s in ranked] for ranked in keyed]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        records = self.shard.retrieve(list(ids), True, False)
        return {str(r.id): dict(r.payload or {}) for r in records}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        records = self.shard.retrieve(list(ids), False, [DENSE])
        return {str(r.id): dense_of(r.vector) for r in records if has_dense(r.vector)}


def _keyed(points: Sequence[qe.ScoredPoint]) -> list[tuple[int | str, Any, float]]:
    """``(key, id, score)`` per point. ``point.id`` builds a new uuid.UUID at every access
    (~1 µs), so it is read once a point."""
    out = []
    for point in points:
        point_id = point.id
        out.append((_key(point_id), point_id, point.score))
    return out


def _key(point_id: int | uuid.UUID | str) -> int | str:
    # Our ids are UUIDs (``points.point_id``); an int or text id keys as its text.
    return point_id.int if isinstance(point_id, uuid.UUID) else str(point_id)


def _candidate(
    known: dict[int | str, tuple[str, str]], key: int | str, point_id: object, score: float
) -> Candidate:
    found = known.get(key)
    if found is None:  # deleted between the query and the read (a concurrent sync)
        return str(point_id), score, ""
    return found[0], score, found[1]


def _query(owner: str, stage: Stage) -> tuple[qe.Query, qe.SearchParams]:
    ef, corpus = search_params(owner, stage)
    params = qe.SearchParams(
        hnsw_ef=ef, idf=None if corpus is None else qe.IdfParams(corpus=corpus)
    )
    return qe.Query.Nearest(stage.query, using=stage.field), params


def _hits(points: Sequence[qe.ScoredPoint]) -> list[Hit]:
    return [Hit(id=str(p.id), score=p.score, payload=dict(p.payload or {})) for p in points]
