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
from copilot.index.fusion import Stage, dbsf, rrf
from copilot.index.planner import (
    FURNITURE_SLACK,
    Candidate,
    SearchRequest,
    run_search,
    search_params,
)
from copilot.index.server_client import client_filter

DENSE = [("a", 0.91), ("b", 0.90), ("c", 0.52), ("d", 0.50)]
BM25 = [("b", 7.5), ("d", 3.1), ("a", 1.2)]  # chunk BM25; each chunk its own item here
ITEMS: list[tuple[str, float]] = []  # whole-item BM25 by item id: none unless a test says


class Engine:
    """Answers from fixed candidate lists; ``deleted`` ids have lost their payload since
    (a concurrent sync replaced the item between the two calls of a fused search).

    Chunk ids double as item ids (``item_of``), except where ``items`` maps them."""

    dim = 4

    def __init__(
        self,
        deleted: Sequence[str] = (),
        items: Sequence[tuple[str, float]] = ITEMS,
        chunks: Sequence[tuple[str, float]] = BM25,
        item_of: dict[str, str] | None = None,
    ) -> None:
        self.deleted = set(deleted)
        self.items, self.chunks, self.item_of = list(items), list(chunks), item_of or {}
        self.calls: list[tuple[Any, ...]] = []
        self.filters: list[qe.Filter] = []
        self.dense_queries: list[list[float]] = []
        # The stored vectors (for feedback), and what a dense query other than the first
        # one finds: the fake's answer to a query moved towards them.
        self.stored: dict[str, list[float]] = {}
        self.moved = DENSE

    def nearest(self, owner: str, flt: qe.Filter, stage: Stage, k: int) -> list[Hit]:
        self.calls.append(("nearest", stage.field, k))
        self.filters.append(flt)
        return [Hit(i, s, {"text": i}) for i, s in DENSE]

    def candidates(
        self, owner: str, requests: Sequence[tuple[Stage, qe.Filter]]
    ) -> list[list[Candidate]]:
        out = []
        names = []
        for stage, flt in requests:
            self.filters.append(flt)
            wanted = _item_wanted(flt)
            if stage.field == "dense":
                names.append("dense")
                self.dense_queries.append(list(stage.query))  # type: ignore[arg-type]
                first = self.dense_queries[0] == self.dense_queries[-1]
                out.append([(i, s, i) for i, s in (DENSE if first else self.moved)])
            elif _is_item_stage(flt):
                names.append("items")
                out.append([(f"p-{i}", s, i) for i, s in self.items])
            else:
                names.append("bm25" if wanted is None else f"best of {wanted}")
                ranked = [(i, s, self.item_of.get(i, i)) for i, s in self.chunks]
                out.append([c for c in ranked if wanted in (None, c[2])][: stage.limit])
        self.calls.append(("candidates", names))
        return out

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.calls.append(("payloads", list(ids)))
        return {i: {"text": i} for i in ids if i not in self.deleted}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        self.calls.append(("vectors", list(ids)))
        return {i: np.asarray(self.stored[i]) for i in ids if i in self.stored}


def _is_item_stage(flt: qe.Filter) -> bool:
    return any(getattr(c, "key", None) == "level" for c in flt.must or [])


def _item_wanted(flt: qe.Filter) -> str | None:
    found = [c.match.value for c in flt.must or [] if getattr(c, "key", None) == "item_id"]
    return found[0] if found else None


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
    assert engine.calls == [("candidates", ["dense", "bm25", "items"]), ("payloads", fused[:2])]


def test_a_chunk_scores_its_own_bm25_plus_its_items_whole_text() -> None:
    # Chunks b1 and b2 belong to report B, d1 to D; A's chunk missed the chunk list.
    chunks = [("d1", 6.0), ("b1", 5.0), ("b2", 4.0)]
    engine = Engine(
        items=[("B", 3.0), ("A", 2.5), ("D", 0.5)],
        chunks=[*chunks, ("a7", 1.0)],
        item_of={"b1": "B", "b2": "B", "d1": "D", "a7": "A"},
    )
    hits = run_search(engine, request(mode="bm25", k=4, sparse_limit=3))
    # b1 3.0 + 5.0 and b2 3.0 + 4.0 (item B); d1 0.5 + 6.0; A: 2.5 + 1.0, its best chunk
    # a7 fetched by one more call because the chunk list (3 long) did not reach it.
    assert [(h.id, h.score) for h in hits] == [("b1", 8.0), ("b2", 7.0), ("d1", 6.5), ("a7", 3.5)]
    assert engine.calls == [
        ("candidates", ["bm25", "items"]),
        ("candidates", ["best of A"]),
        ("payloads", ["b1", "b2", "d1", "a7"]),
    ]


def test_a_point_deleted_between_the_two_calls_is_skipped_not_returned_empty() -> None:
    fused = [i for i, _ in dbsf([DENSE, BM25], [1.0, 1.0])]
    engine = Engine(deleted=[fused[0]])
    hits = run_search(engine, request())
    assert [h.id for h in hits] == fused[1:3]  # read on down the fused list
    assert all(h.payload for h in hits)
    assert engine.calls[1:] == [("payloads", fused[:2]), ("payloads", fused[2:3])]


def test_dense_alone_is_one_engine_call_and_rrf_fuses_in_python() -> None:
    engine = Engine()
    run_search(engine, request(mode="dense", k=3))
    run_search(engine, request(text="the of and"))  # only stop words: no BM25 side
    hits = run_search(engine, request(fusion="rrf", rrf_k=20, k=4))
    # Dense alone reads FURNITURE_SLACK more, so passages can fill what page furniture leaves.
    slack = FURNITURE_SLACK
    assert engine.calls[:2] == [("nearest", "dense", 3 + slack), ("nearest", "dense", 2 + slack)]
    assert [h.id for h in hits] == [i for i, _ in rrf([DENSE, BM25], [1.0, 1.0], 20)]
    assert hits[0].id == "b"  # 1/22 + 1/21: second in dense, first in BM25
    assert run_search(engine, request(mode="bm25", text="the of")) == []  # nothing to match


def test_every_engine_call_is_scoped_to_the_owner() -> None:
    engine = Engine()
    item = qe.FieldCondition("kind", match=qe.MatchValue("mail"))
    run_search(engine, request(conditions=(item,)))
    run_search(engine, request(mode="dense"))
    alice = models.FieldCondition(key="owner", match=models.MatchValue(value="alice"))
    mail = models.FieldCondition(key="kind", match=models.MatchValue(value="mail"))
    level = models.FieldCondition(key="level", match=models.MatchValue(value="item"))
    assert [client_filter(flt).must for flt in engine.filters] == [
        [alice, mail],  # dense chunks
        [alice, mail],  # BM25 chunks
        [alice, level, mail],  # BM25 whole items, under the same filters
        [alice],  # dense alone
    ]
    chunk_lists = [engine.filters[i] for i in (0, 1, 3)]
    assert all(client_filter(flt).must_not == [level] for flt in chunk_lists)
    # BM25's IDF counts this owner's items only; dense searches a beam of at least 128.
    ef, corpus = search_params("alice", Stage("bm25", [], 10, 1.0))
    assert ef is None and corpus is not None and client_filter(corpus).must == [alice, level]
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


def test_feedback_runs_the_dense_list_again_towards_the_fused_top_chunks_and_fuses_again() -> None:
    engine = Engine()
    engine.stored = {"b": [0.0, 2.0, 0.0, 0.0], "a": [0.0, 0.0, 3.0, 0.0]}
    engine.moved = [("d", 0.95), ("b", 0.80), ("c", 0.20)]  # what the moved query finds
    hits = run_search(engine, request(feedback=2, k=4))
    first = [i for i, _ in dbsf([DENSE, BM25], [1.0, 1.0])]
    assert first[:2] == ["b", "a"]
    assert engine.calls == [
        ("candidates", ["dense", "bm25", "items"]),
        ("vectors", ["b", "a"]),  # the first fused list's top 2, read back, not embedded
        ("candidates", ["dense"]),  # only the dense list again; BM25's stays
        ("payloads", [h.id for h in hits]),
    ]
    # Rocchio, both weights 1: the unit query plus the mean of the unit passages.
    moved = np.array([0.5, 0.5, 0.5, 0.5]) + np.array([0.0, 0.5, 0.5, 0.0])
    assert engine.dense_queries[1] == pytest.approx((moved / np.linalg.norm(moved)).tolist())
    assert [h.id for h in hits] == [i for i, _ in dbsf([engine.moved, BM25], [1.0, 1.0])][:4]
    assert [h.id for h in hits] == ["b", "d", "a", "c"]  # d was third: first for the moved query


def test_feedback_is_for_hybrid_only_and_needs_stored_vectors() -> None:
    for changes in ({"mode": "dense"}, {"mode": "bm25"}, {"text": "the of and"}):
        engine = Engine()
        run_search(engine, request(feedback=3, **changes))
        assert not any(call[0] == "vectors" for call in engine.calls), changes
    engine = Engine()  # top chunks without a dense vector (keyword-only): the query stays
    hits = run_search(engine, request(feedback=3))
    assert engine.dense_queries == [[1.0] * 4]  # no second dense list
    assert engine.calls[1] == ("vectors", ["b", "a", "d"])
    assert [h.id for h in hits] == [i for i, _ in dbsf([DENSE, BM25], [1.0, 1.0])][:2]
