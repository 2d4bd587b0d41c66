"""How a search runs, for both stores: which candidate lists, fused how, read back how.

The embedded and the server store differ only in how they talk to their engine. What a
search does is decided here once: the request is checked, the candidate lists are planned
(``fusion.plan_stages``), and then one of three things happens:

- one list (a single mode, or hybrid with one side empty): the engine's nearest search;
- hybrid with ``fusion="rrf"``: the engine fuses both lists itself (weighted RRF);
- hybrid with ``fusion="dbsf"`` (the default): both lists without payloads in one batched
  call, fused in Python (the engines' DBSF takes no weights), then only the ``k`` winners'
  payloads are read.

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
from copilot.index.filters import SearchFilters, scoped, search_conditions
from copilot.index.fusion import Fusion, Stage, check_request, dbsf, plan_stages
from copilot.index.points import dense_list

__all__ = ["PlannedSearch", "SearchEngine", "SearchRequest", "run_search"]

MIN_EF = 128  # HNSW beam for dense candidates: at least this, or the candidate count


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


class SearchEngine(Protocol):
    """The four engine calls a store makes for the planner.

    ``flt`` is an engine filter from ``filters.scoped`` (only the owner's points); a
    sparse stage needs ``owner`` as well, for IDF over that owner's chunks only.
    """

    @property
    def dim(self) -> int: ...

    def nearest(self, owner: str, flt: qe.Filter, stage: Stage, k: int) -> list[Hit]:
        """The ``k`` best points of one stage, with payloads."""
        ...

    def rrf(
        self, owner: str, flt: qe.Filter, stages: Sequence[Stage], k: int, rrf_k: int
    ) -> list[Hit]:
        """The ``k`` best points of the stages fused by weighted RRF, with payloads."""
        ...

    def candidates(
        self, owner: str, flt: qe.Filter, stages: Sequence[Stage]
    ) -> list[list[tuple[str, float]]]:
        """Each stage's ranked ``(point id, score)`` list, without payloads, in one call."""
        ...

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Payloads of the points ``ids`` that still exist."""
        ...


def search_params(owner: str, stage: Stage) -> tuple[int | None, qe.Filter | None]:
    """``(hnsw_ef, IDF corpus)`` of a stage: a dense stage searches a beam of at least
    ``MIN_EF``; a sparse stage computes IDF over the owner's chunks only, so other users'
    words neither shape the ranking nor leak through it."""
    if stage.field == "dense":
        return max(stage.limit, MIN_EF), None
    return None, scoped(owner)


def run_search(engine: SearchEngine, request: SearchRequest) -> list[Hit]:
    """Hits for ``request`` through ``engine``; see the module docstring."""
    r = request
    check_request(r.k, r.mode, r.fusion, r.dense is not None, r.text)
    flt = scoped(r.owner, *r.conditions)  # raises without an owner, before anything else
    vector = None if r.dense is None else dense_list(r.dense, engine.dim)
    stages = plan_stages(r.mode, vector, r.text, r.dense_limit, r.sparse_limit, r.weights)
    if not stages:
        return []  # BM25 with only stop words / empty text: nothing can match
    if r.mode != "hybrid" or len(stages) == 1:
        return engine.nearest(r.owner, flt, stages[0], r.k)
    if r.fusion == "rrf":
        return engine.rrf(r.owner, flt, stages, r.k, r.rrf_k)
    return _dbsf(engine, r.owner, flt, stages, r.k)


def _dbsf(
    engine: SearchEngine, owner: str, flt: qe.Filter, stages: Sequence[Stage], k: int
) -> list[Hit]:
    fused = dbsf(engine.candidates(owner, flt, stages), [st.weight for st in stages])
    # The ids came from owner-filtered lists, so reading them back stays in the tenant.
    # A sync in another thread can delete a point between the two calls (it replaces an
    # item's chunks): such a point has no record any more. Skip it and read on down the
    # fused list, rather than return a hit without payload (seen under a concurrent sync:
    # 1560 payload-less hits in 5790 searches before this loop).
    hits: list[Hit] = []
    start = 0
    while len(hits) < k and start < len(fused):
        part = fused[start : start + k - len(hits)]
        start += len(part)
        payloads = engine.payloads([i for i, _ in part])
        hits += [Hit(id=i, score=s, payload=payloads[i]) for i, s in part if i in payloads]
    return hits


class PlannedSearch(ABC):
    """``search()`` for a store that says how to reach its engine (``_engine``).

    ``fusion`` is the store's default for hybrid search (``COPILOT_FUSION``).
    """

    if TYPE_CHECKING:  # fields of the stores (pydantic models), declared there
        fusion: Fusion

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
    ) -> list[Hit]:
        """The ``k`` best chunks of ``owner`` for a query.

        ``hybrid`` takes ``candidates`` from dense and from BM25 and fuses them, by default
        (``fusion`` None: the store's setting) with distribution-based score fusion (see
        ``fusion.py`` for why), or with the engine's RRF (``rrf_k``); ``weights`` = dense,
        BM25. If one side has nothing to go on (no vector, or only stop words) the other
        side alone is used.
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
        )
        return run_search(self._engine(), request)
