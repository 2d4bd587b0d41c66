"""How a search runs, for both stores: which candidate lists, fused how, read back how.

The embedded and the server store differ only in how they talk to their engine. What a
search does is decided here once: the request is checked, the candidate lists are planned
(``fusion.plan_stages``), and then:

- dense alone (dense mode, or hybrid when the text has only stop words): the engine's
  nearest search, payloads included;
- anything with BM25: one batched engine call for the lists without payloads (dense
  chunks, BM25 chunks, BM25 whole items), then BM25 per item (below), fusion in Python
  (weighted DBSF by default, weighted RRF with ``fusion="rrf"``); a hybrid search with
  ``feedback`` asks for the dense list once more, its query moved towards the fused
  list's top chunks (``copilot.index.feedback``), and fuses again; then only the ``k``
  winners' payloads are read.

BM25 per item (issue 18, measured in docs/benchmarks.md "BM25 on chunks"): IDF is counted
over the owner's items (the whole-item points of ``copilot.index.items``), and a chunk
scores its own BM25 plus its item's whole-item BM25, so an item ranks by its best chunk
plus its whole text. The hit is still a chunk and keeps its locator. An item in the
whole-item list none of whose chunks made the chunk list gets its best chunk from one
more batched call (one chunk per item); a chunk whose item has no whole-item score (a
filter on a chunk-only field, a chunk stored before its item point) keeps its own.

Page furniture last: a chunk of a document's header or footer (a docx's "Internal —
Project Atlas" on every page) ranks after every passage the search returns, and takes one
of the ``k`` places only when fewer passages match. Its few words match a query on the
project's name as well as any passage, and short chunks score high, so it came third for
"What are the risks for the Atlas migration?" in a 12-chunk demo; in a library where
every file carries the footer, footers would crowd the list. A footer's words still find
it when nothing else has them.

A store gives its engine calls as a :class:`SearchEngine` and gets ``search()`` from
:class:`PlannedSearch`; every filter it is handed is already scoped to the owner.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import qdrant_edge as qe

from copilot.index.base import Hit, Mode
from copilot.index.feedback import feedback_query
from copilot.index.filters import SearchFilters, scoped, search_conditions
from copilot.index.fusion import Fusion, Stage, check_request, dbsf, plan_stages, rrf
from copilot.index.items import IS_ITEM
from copilot.index.points import dense_list

__all__ = ["Candidate", "PlannedSearch", "SearchEngine", "SearchRequest", "run_search"]

MIN_EF = 128  # HNSW beam for dense candidates: at least this, or the candidate count
FURNITURE_SLACK = 10  # more dense-only hits read, so passages can fill what furniture leaves
Candidate = tuple[str, float, str]  # point id, score, item id


@dataclass(frozen=True)
class SearchRequest:
    """One owner-scoped search, as both the public ``search()`` and LlamaIndex ask it.

    ``conditions`` are engine filter conditions ANDed under ``owner == X``;
    ``dense_limit`` and ``sparse_limit`` are the candidate counts of each side.
    """

    owner: str
    text: str
    dense: np.ndarray | None
    mode: Mode
    k: int
    dense_limit: int
    sparse_limit: int
    conditions: tuple[Any, ...] = ()
    rrf_k: int = 60
    weights: tuple[float, float] | None = None
    fusion: Fusion = "dbsf"
    feedback: int = 0  # passages the dense leg of a hybrid search is moved towards


class SearchEngine(Protocol):
    """The three engine calls a store makes for the planner.

    Every filter is one from ``filters.scoped`` (only the owner's points); a sparse
    stage needs ``owner`` as well, for IDF over that owner's items only.
    """

    @property
    def dim(self) -> int: ...

    def nearest(self, owner: str, flt: qe.Filter, stage: Stage, k: int) -> list[Hit]:
        """The ``k`` best points of one stage, with payloads."""
        ...

    def candidates(
        self, owner: str, requests: Sequence[tuple[Stage, qe.Filter]]
    ) -> list[list[Candidate]]:
        """Each request's ranked ``(point id, score, item id)`` list, in one call."""
        ...

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Payloads of the points ``ids`` that still exist."""
        ...

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored dense vectors of the points ``ids`` that still exist and have one."""
        ...


def search_params(owner: str, stage: Stage) -> tuple[int | None, qe.Filter | None]:
    """``(hnsw_ef, IDF corpus)`` of a stage: a dense stage searches a beam of at least
    ``MIN_EF``; a sparse stage computes IDF over the owner's items only (their whole-item
    points), so other users' words neither shape the ranking nor leak through it, and a
    long item split into many chunks counts once."""
    if stage.field == "dense":
        return max(stage.limit, MIN_EF), None
    return None, scoped(owner, IS_ITEM)


def run_search(engine: SearchEngine, request: SearchRequest) -> list[Hit]:
    """Hits for ``request`` through ``engine``; see the module docstring."""
    r = request
    check_request(r.k, r.mode, r.fusion, r.dense is not None, r.text)
    chunks = scoped(r.owner, *r.conditions, must_not=[IS_ITEM])  # raises without an owner
    vector = None if r.dense is None else dense_list(r.dense, engine.dim)
    stages = plan_stages(r.mode, vector, r.text, r.dense_limit, r.sparse_limit, r.weights)
    if not stages:
        return []  # BM25 with only stop words / empty text: nothing can match
    if len(stages) == 1 and stages[0].field == "dense":
        nearest = engine.nearest(r.owner, chunks, stages[0], r.k + FURNITURE_SLACK)
        return furniture_last(nearest, r.k)
    requests = [(stage, chunks) for stage in stages]
    sparse = stages[-1]  # plan_stages puts BM25 last
    requests.append((sparse, scoped(r.owner, IS_ITEM, *r.conditions)))
    found = engine.candidates(r.owner, requests)
    lists = [[(i, s) for i, s, _ in ranked] for ranked in found[: len(stages) - 1]]
    lists.append(item_bm25(engine, r.owner, r.conditions, sparse, found[-2], found[-1]))
    weights = [stage.weight for stage in stages]
    fused = _fuse(lists, weights, r)
    if r.feedback > 0 and r.dense is not None and len(lists) > 1:
        # Dense stage first, BM25 last (plan_stages); see copilot.index.feedback.
        passages = engine.vectors([i for i, _ in fused[: r.feedback]])
        if passages:  # none: the top chunks are keyword-only, the query stays as it is
            moved = feedback_query(r.dense, list(passages.values()))
            stage = stages[0]._replace(query=dense_list(moved, engine.dim))
            (again,) = engine.candidates(r.owner, [(stage, chunks)])
            lists[0] = [(i, s) for i, s, _ in again]
            fused = _fuse(lists, weights, r)
    return _read(engine, fused, r.k)


def _fuse(
    lists: list[list[tuple[str, float]]], weights: list[float], r: SearchRequest
) -> list[tuple[str, float]]:
    if len(lists) == 1:
        return lists[0]
    if r.fusion == "rrf":
        return rrf(lists, weights, r.rrf_k)
    return dbsf(lists, weights)


def item_bm25(
    engine: SearchEngine,
    owner: str,
    conditions: Sequence[Any],
    stage: Stage,
    chunk_list: Sequence[Candidate],
    item_list: Sequence[Candidate],
) -> list[tuple[str, float]]:
    """The BM25 list: each chunk scores its own BM25 plus its item's whole-item BM25.

    An item so ranks by its best chunk plus its whole text (what was measured), and its
    other matching chunks stay in the list below that one, as passages for an answer.
    """
    whole = {item: score for _, score, item in item_list}
    seen = {item for _, _, item in chunk_list}
    missing = [item for item in whole if item not in seen]
    found = list(chunk_list)
    if missing:
        one = stage._replace(limit=1)
        lookups = [
            (one, scoped(owner, *conditions, _item_is(item), must_not=[IS_ITEM]))
            for item in missing
        ]
        for ranked in engine.candidates(owner, lookups):
            found += ranked[:1]
    scored = [(point, score + whole.get(item, 0.0)) for point, score, item in found]
    return sorted(scored, key=lambda pair: pair[1], reverse=True)


def _item_is(item_id: str) -> qe.FieldCondition:
    return qe.FieldCondition("item_id", match=qe.MatchValue(item_id))


def _read(engine: SearchEngine, fused: Sequence[tuple[str, float]], k: int) -> list[Hit]:
    # The ids came from owner-filtered lists, so reading them back stays in the tenant.
    # A sync in another thread can delete a point between the two calls (it replaces an
    # item's chunks): such a point has no record any more. Skip it and read on down the
    # fused list, rather than return a hit without payload (seen under a concurrent sync:
    # 1560 payload-less hits in 5790 searches before this loop).
    # Page furniture read on the way is held back, and goes last (module docstring).
    hits: list[Hit] = []
    furniture: list[Hit] = []
    start = 0
    while len(hits) < k and start < len(fused):
        part = fused[start : start + k - len(hits)]
        start += len(part)
        payloads = engine.payloads([i for i, _ in part])
        for i, s in part:
            if i in payloads:
                hit = Hit(id=i, score=s, payload=payloads[i])
                (furniture if is_furniture(hit) else hits).append(hit)
    return hits + furniture[: k - len(hits)]


def furniture_last(hits: Sequence[Hit], k: int) -> list[Hit]:
    """The first ``k`` of ``hits`` with page furniture after every passage."""
    passages = [hit for hit in hits if not is_furniture(hit)]
    return (passages + [hit for hit in hits if is_furniture(hit)])[:k]


def is_furniture(hit: Hit) -> bool:
    """Whether ``hit`` is a chunk of a page header or footer (the docx parser's locator)."""
    locator = hit.payload.get("locator")
    return isinstance(locator, dict) and ("header" in locator or "footer" in locator)


class PlannedSearch(ABC):
    """``search()`` for a store that says how to reach its engine (``_engine``).

    ``fusion`` is the store's default for hybrid search (``COPILOT_FUSION``).
    """

    if TYPE_CHECKING:  # fields of the stores (pydantic models), declared there
        fusion: Fusion
        feedback: int

    @abstractmethod
    def _engine(self) -> SearchEngine:
        """This store's engine calls."""

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
        fusion: Fusion | None = None,
        feedback: int | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks of ``owner`` for a query.

        ``hybrid`` takes ``candidates`` from dense and from BM25 and fuses them, by default
        (``fusion`` None: the store's setting) with distribution-based score fusion (see
        ``fusion.py`` for why), or with weighted RRF (``rrf_k``); ``weights`` = dense,
        BM25. If one side has nothing to go on (no vector, or only stop words) the other
        side alone is used. ``feedback`` (None: the store's setting) is how many of the
        fused list's top chunks the dense leg of a hybrid search is moved towards; 0 off.
        """
        request = SearchRequest(
            owner=owner,
            text=text,
            dense=dense,
            mode=mode,
            k=k,
            dense_limit=max(candidates, k),
            sparse_limit=max(candidates, k),
            conditions=tuple(search_conditions(filters)),
            rrf_k=rrf_k,
            weights=weights,
            fusion=fusion or self.fusion,
            feedback=self.feedback if feedback is None else feedback,
        )
        return run_search(self._engine(), request)
