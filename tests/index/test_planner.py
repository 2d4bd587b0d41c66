"""The search planner both stores share: which engine call a request becomes, that every
call is scoped to the owner, and that a fused search never returns a hit without payload.

The engine here is a recording fake, so these tests say what the planner asks for; the
stores' own tests (test_store.py, test_server_store.py) say the engines answer it alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import models

from copilot.index.base import Hit
from copilot.index.fusion import Stage, dbsf
from copilot.index.planner import SearchRequest, run_search, search_params
from copilot.index.server_client import client_filter

DENSE = [("a", 0.91), ("b", 0.90), ("c", 0.52), ("d", 0.50)]
BM25 = [("b", 7.5), ("d", 3.1), ("a", 1.2)]


class Engine:
    """Answers from fixed candidate lists; ``deleted`` ids have lost their payload since
    (a concurrent sync replaced the item between the two calls of a fused search)."""

    dim = 4

    def __init__(self, deleted: Sequence[str] = ()) -> None:
        self.deleted = set(deleted)
        self.calls: list[tuple[Any, ...]] = []
        self.filters: list[qe.Filter] = []

    def nearest(self, owner: str, flt: qe.Filter, stage: Stage, k: int) -> list[Hit]:
        self.calls.append(("nearest", stage.field, k))
        self.filters.append(flt)
        return [Hit(i, s, {"text": i}) for i, s in (DENSE if stage.field == "dense" else BM25)]

    def rrf(
        self, owner: str, flt: qe.Filter, stages: Sequence[Stage], k: int, rrf_k: int
    ) -> list[Hit]:
        self.calls.append(("rrf", [st.field for st in stages], k, rrf_k))
        self.filters.append(flt)
        return []

    def candidates(
        self, owner: str, flt: qe.Filter, stages: Sequence[Stage]
    ) -> list[list[tuple[str, float]]]:
        self.calls.append(("candidates", [st.field for st in stages]))
        self.filters.append(flt)
        return [DENSE if st.field == "dense" else BM25 for st in stages]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.calls.append(("payloads", list(ids)))
        return {i: {"text": i} for i in ids if i not in self.deleted}


def request(**kw: Any) -> SearchRequest:
    values: dict[str, Any] = dict(
        owner="alice", text="quarterly budget", dense=np.ones(4), mode="hybrid", k=2,
        dense_limit=10, sparse_limit=10,
    )  # fmt: skip
    values.update(kw)
    return SearchRequest(**values)


def test_hybrid_search_fuses_both_lists_and_reads_only_the_winners_payloads() -> None:
    engine = Engine()
    hits = run_search(engine, request())
    fused = [i for i, _ in dbsf([DENSE, BM25], [1.0, 1.0])]
    assert [h.id for h in hits] == fused[:2]
    assert engine.calls == [("candidates", ["dense", "bm25"]), ("payloads", fused[:2])]


def test_a_point_deleted_between_the_two_calls_is_skipped_not_returned_empty() -> None:
    fused = [i for i, _ in dbsf([DENSE, BM25], [1.0, 1.0])]
    engine = Engine(deleted=[fused[0]])
    hits = run_search(engine, request())
    assert [h.id for h in hits] == fused[1:3]  # read on down the fused list
    assert all(h.payload for h in hits)
    assert engine.calls[1:] == [("payloads", fused[:2]), ("payloads", fused[2:3])]


def test_one_list_or_rrf_is_left_to_the_engine() -> None:
    engine = Engine()
    run_search(engine, request(mode="dense", k=3))
    run_search(engine, request(text="the of and"))  # only stop words: no BM25 side
    run_search(engine, request(fusion="rrf", rrf_k=20))
    assert engine.calls == [
        ("nearest", "dense", 3),
        ("nearest", "dense", 2),
        ("rrf", ["dense", "bm25"], 2, 20),
    ]
    assert run_search(engine, request(mode="bm25", text="the of")) == []  # nothing to match


def test_every_engine_call_is_scoped_to_the_owner() -> None:
    engine = Engine()
    item = qe.FieldCondition("kind", match=qe.MatchValue("mail"))
    run_search(engine, request(conditions=(item,)))
    run_search(engine, request(mode="bm25"))
    alice = models.FieldCondition(key="owner", match=models.MatchValue(value="alice"))
    mail = models.FieldCondition(key="kind", match=models.MatchValue(value="mail"))
    assert [client_filter(flt).must for flt in engine.filters] == [[alice, mail], [alice]]
    # BM25's IDF counts this owner's chunks only; dense searches a beam of at least 128.
    ef, corpus = search_params("alice", Stage("bm25", [], 10, 1.0))
    assert ef is None and corpus is not None and client_filter(corpus).must == [alice]
    assert search_params("alice", Stage("dense", [], 300, 1.0)) == (300, None)
    assert search_params("alice", Stage("dense", [], 10, 1.0)) == (128, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"owner": ""}, "owner"),
        ({"k": 0}, "k must be at least 1"),
        ({"fusion": "max"}, "unknown fusion"),
        ({"dense": np.ones(3)}, "expected a 4-d vector"),
        ({"dense": np.array([1.0, np.nan, 0, 0])}, "NaN"),
        ({"mode": "dense", "dense": None}, "needs a query vector"),
    ],
)
def test_a_bad_request_fails_before_any_engine_call(changes: dict[str, Any], message: str) -> None:
    engine = Engine()
    with pytest.raises(ValueError, match=message):
        run_search(engine, request(**changes))
    assert engine.calls == []
