"""The search planner's calls on one Qdrant Edge shard (``planner.SearchEngine``), apart
from the store that owns the shard (``copilot.index.store``): what a search asks of the
engine, and the cache that spares it building payloads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import qdrant_edge as qe

from copilot.index.base import Hit
from copilot.index.fusion import Stage
from copilot.index.planner import Candidate, search_params

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
    interpreter time. The item of a point comes from ``item_of``, filled from payloads only
    for points not seen before. That cache can never be stale: a point id is a hash of
    owner, item and content (``copilot.ingest.items``, ``items.item_point_id``), so an id
    names one item for ever, even after the point is deleted and written again.
    """

    shard: qe.EdgeShard
    dim: int
    item_of: dict[str, str]

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
        lists = [
            [(str(p.id), p.score) for p in points]
            for points in self.shard.query_batch(qe.QueryBatchRequest(batch))
        ]
        item_of = self.item_of
        unknown: list[int | uuid.UUID | str] = list(
            {i for ranked in lists for i, _ in ranked if i not in item_of}
        )
        if unknown:
            if len(item_of) + len(unknown) > ITEM_CACHE_SIZE:
                item_of.clear()  # a bound on memory; refilled by the next searches
            selector = qe.PayloadSelector.Include(["item_id"])
            for record in self.shard.retrieve(unknown, selector, False):
                item_of[str(record.id)] = str((record.payload or {}).get("item_id", ""))
        return [[(i, score, item_of.get(i, "")) for i, score in ranked] for ranked in lists]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        records = self.shard.retrieve(list(ids), True, False)
        return {str(r.id): dict(r.payload or {}) for r in records}


def _query(owner: str, stage: Stage) -> tuple[qe.Query, qe.SearchParams]:
    ef, corpus = search_params(owner, stage)
    params = qe.SearchParams(
        hnsw_ef=ef, idf=None if corpus is None else qe.IdfParams(corpus=corpus)
    )
    return qe.Query.Nearest(stage.query, using=stage.field), params


def _hits(points: Sequence[qe.ScoredPoint]) -> list[Hit]:
    return [Hit(id=str(p.id), score=p.score, payload=dict(p.payload or {})) for p in points]
