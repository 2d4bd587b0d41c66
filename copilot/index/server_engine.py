"""The search planner's calls on one Qdrant server collection (``planner.SearchEngine``),
apart from the store that owns the collection (``copilot.index.server_store``), as
``edge_engine`` is for the embedded shard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import qdrant_client
import qdrant_edge as qe
from qdrant_client import models

from copilot.index.base import Hit
from copilot.index.fusion import Stage
from copilot.index.planner import Candidate, search_params
from copilot.index.points import DENSE, dense_of, has_dense
from copilot.index.server_client import client_filter, client_query

__all__ = ["ClientEngine"]


@dataclass(frozen=True)
class ClientEngine:
    """The search planner's engine calls on one collection (see ``planner.SearchEngine``)."""

    client: qdrant_client.QdrantClient
    collection: str
    dim: int
    exact: bool = False  # qdrant-client's local mode: no HNSW parameters

    def _params(self, owner: str, stage: Stage) -> models.SearchParams | None:
        ef, corpus = search_params(owner, stage)
        if corpus is not None:
            return models.SearchParams(idf=models.IdfCorpusParams(corpus=client_filter(corpus)))
        return None if self.exact else models.SearchParams(hnsw_ef=ef)

    def nearest(self, owner: str, flt: qe.Filter, stage: Stage, k: int) -> list[Hit]:
        response = self.client.query_points(
            self.collection,
            query=client_query(stage.query),
            using=stage.field,
            query_filter=client_filter(flt),
            search_params=self._params(owner, stage),
            limit=k,
            with_payload=True,
        )
        return _hits(response.points)

    def candidates(
        self, owner: str, requests: Sequence[tuple[Stage, qe.Filter]]
    ) -> list[list[Candidate]]:
        batch = [
            models.QueryRequest(
                query=client_query(stage.query),
                using=stage.field,
                params=self._params(owner, stage),
                limit=stage.limit,
                filter=client_filter(flt),
                with_payload=["item_id"],
            )
            for stage, flt in requests
        ]
        lists = self.client.query_batch_points(self.collection, requests=batch)
        return [
            [(str(p.id), p.score, str((p.payload or {}).get("item_id", ""))) for p in answer.points]
            for answer in lists
        ]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        records = self.client.retrieve(self.collection, list(ids))
        return {str(r.id): dict(r.payload or {}) for r in records}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        records = self.client.retrieve(
            self.collection, list(ids), with_payload=False, with_vectors=[DENSE]
        )
        return {str(r.id): dense_of(r.vector) for r in records if has_dense(r.vector)}


def _hits(points: Sequence[models.ScoredPoint]) -> list[Hit]:
    return [Hit(id=str(p.id), score=p.score, payload=dict(p.payload or {})) for p in points]
