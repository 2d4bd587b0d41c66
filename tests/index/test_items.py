"""Whole-item BM25 points (issue 18) in both stores: one per item, kept with its chunks
through re-syncs, new versions and deletes, invisible to every chunk-level read, built for
an index made before they existed, and what they change in the ranking."""

from __future__ import annotations

import json

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient

from copilot.index import bm25
from copilot.index.base import embed_key
from copilot.index.filters import SearchFilters
from copilot.index.items import IS_ITEM, Tallies, item_parts, item_point_id
from copilot.index.server_store import ServerVectorStore
from copilot.index.store import META_FILE, EdgeVectorStore
from tests.index.test_store import DIM, chunk, random_unit


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path):
    if request.param == "edge":
        s: EdgeVectorStore | ServerVectorStore = EdgeVectorStore(tmp_path / "index", DIM)
    else:
        s = ServerVectorStore(QdrantClient(":memory:"), "copilot_test", DIM)
    with s:
        yield s


def points(store) -> int:
    """Every point of the store, item points included."""
    if isinstance(store, EdgeVectorStore):
        return store.client.count(qe.CountRequest(exact=True))
    return store.client.count(store.collection_name, exact=True).count


def item_payload(store, owner: str, item_id: str) -> dict | None:
    pid = item_point_id(owner, item_id)
    if isinstance(store, EdgeVectorStore):
        records = store.client.retrieve([pid], True, False)
    else:
        records = store.client.retrieve(store.collection_name, [pid])
    return dict(records[0].payload or {}) if records else None


def report(item_id="local:report.docx", item_hash="h1", **meta):
    return [
        chunk(text, item_id=item_id, chunk=i, item_hash=item_hash, title="Report", **meta)
        for i, text in enumerate(["turbine maintenance log", "blade inspection notes"])
    ]


def test_one_item_point_per_item_and_no_chunk_read_sees_it(store):
    nodes = [*report(), chunk("lunch menu", item_id="local:menu.txt", item_hash="m1")]
    store.add(nodes)
    assert points(store) == 3 + 2  # three chunks, two items
    assert store.count("alice") == store.count() == 3
    assert store.item_chunk_ids("alice", "local:report.docx") == [n.node_id for n in nodes[:2]]
    hits = store.search("alice", text="", dense=np.array(random_unit()), mode="dense", k=10)
    assert {h.id for h in hits} == {n.node_id for n in nodes}
    found = item_payload(store, "alice", "local:report.docx")
    assert found is not None and found["level"] == "item" and "text" not in found
    assert found["item_hash"] == "h1" and found["title"] == "Report"

    store.add(nodes)  # a re-sync of unchanged items writes no new point
    assert points(store) == 5


def test_a_new_version_replaces_the_item_point_and_deletes_leave_no_orphan(store):
    store.add(report(item_hash="h1"))
    new = [chunk("rotor balancing", item_id="local:report.docx", item_hash="h2")]
    store.add(new)
    store.delete_item("alice", "local:report.docx", keep_hash="h2")
    assert points(store) == 1 + 1
    assert item_payload(store, "alice", "local:report.docx")["item_hash"] == "h2"
    # The old version's words are gone from the item too, not only from its chunks.
    assert store.search("alice", text="turbine", dense=None, mode="bm25") == []
    assert [h.id for h in store.search("alice", text="rotor", dense=None, mode="bm25")] == [
        new[0].node_id
    ]

    store.delete_item("alice", "local:report.docx")
    assert points(store) == 0


def test_a_long_item_with_the_words_spread_over_its_chunks_outranks_one_chunk_with_two(store):
    """The case issue 18 measured: ranked by its best chunk alone, a long report whose
    chunks each mention one query word loses to a note that has two of them."""
    filler = "general remarks on the schedule and the budget of the site"
    spread = [
        chunk(f"{word} {filler}", item_id="local:long.docx", chunk=i, locator={"paragraph": i})
        for i, word in enumerate(["turbine", "blade", "vibration", "fatigue"])
    ]
    note = chunk(f"turbine blade {filler}", item_id="local:note.txt")
    others = [chunk(f"{filler} {i}", item_id=f"local:other{i}.txt") for i in range(6)]
    store.add([*spread, note, *others])
    hits = store.search("alice", text="turbine blade vibration fatigue", dense=None, mode="bm25")
    assert hits[0].payload["item_id"] == "local:long.docx"
    # Its best chunk is the hit, with its locator: one with a word the note lacks (rarer).
    assert hits[0].payload["locator"] in ({"paragraph": 2}, {"paragraph": 3})
    items = list(dict.fromkeys(h.payload["item_id"] for h in hits))
    assert items[:2] == ["local:long.docx", "local:note.txt"]


def test_filters_hold_for_the_whole_item_list(store):
    mail = chunk("turbine", item_id="mail:1", kind="mail")
    store.add([*report(kind="file"), mail])
    hits = store.search(
        "alice",
        text="turbine blade",
        dense=None,
        mode="bm25",
        filters=SearchFilters(kinds=("mail",)),
    )
    assert [h.id for h in hits] == [mail.node_id]
    assert store.search("bob", text="turbine", dense=None, mode="bm25") == []


def test_a_repeated_table_header_counts_once_per_item():
    header = "Region | Quarter | Revenue\n"
    rows = [f"{header}North | Q{i} | {100 + i}" for i in range(1, 5)]
    payloads = [{"text": row, "prefix_chars": len(header)} for row in rows]
    parts = item_parts(("alice", "local:sales.xlsx", None), payloads)
    assert parts is not None
    once = bm25.item_vector(bm25.term_counts(header + "\n".join(r[len(header) :] for r in rows)))
    assert parts.sparse.indices == once.indices
    assert parts.sparse.values == pytest.approx(once.values)
    [region] = bm25.query_vector("region").indices
    assert bm25.term_counts(header)[region] == 1


def test_an_index_from_before_item_points_gets_them_on_open(tmp_path):
    nodes = [*report(), *report(item_id="local:other.docx"), chunk("blade", item_id="local:b")]
    path = tmp_path / "index"
    with EdgeVectorStore(path, DIM) as s:
        s.add(nodes)
        before = s.search("alice", text="blade inspection", dense=None, mode="bm25")
        # What an index of format 1 looks like: no item points, no "items" in the meta.
        s.client.update(qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[IS_ITEM])))
    (path / META_FILE).write_text(json.dumps({"format": 1, "dim": DIM, "bm25": bm25.SIGNATURE}))

    with EdgeVectorStore(path, DIM) as s:
        assert points(s) == len(nodes) + 3
        after = s.search("alice", text="blade inspection", dense=None, mode="bm25")
    assert [(h.id, h.score) for h in after] == [(h.id, pytest.approx(h.score)) for h in before]
    assert json.loads((path / META_FILE).read_text())["items"] == bm25.ITEM_SIGNATURE


def test_a_collection_from_before_item_points_gets_them_on_open(tmp_path):
    from copilot.index.server_client import client_filter, open_client

    url = f"local:{tmp_path / 'qdrant'}"
    nodes = [*report(), chunk("blade", item_id="local:b")]
    with ServerVectorStore(open_client(url), "c", DIM) as s:
        s.add(nodes)
        before = s.search("alice", text="blade inspection", dense=None, mode="bm25")
        s.client.delete("c", client_filter(qe.Filter(must=[IS_ITEM])), wait=True)
        s.client.update_collection("c", metadata={"items": "older settings"})

    with ServerVectorStore(open_client(url), "c", DIM) as s:
        assert points(s) == len(nodes) + 2
        after = s.search("alice", text="blade inspection", dense=None, mode="bm25")
        assert s.client.get_collection("c").config.metadata["items"] == bm25.ITEM_SIGNATURE
    assert [(h.id, h.score) for h in after] == [(h.id, pytest.approx(h.score)) for h in before]


def test_a_large_item_stored_in_slices_is_read_back_once_not_after_every_slice():
    """The pipeline streams a large item in slices: its item point is kept up to date from
    a running tally, not by re-reading every chunk after every slice (quadratic)."""
    stored: list[dict] = []
    reads: list[qe.Filter] = []

    def read(flt):  # the store's scroll; one item here, so the filter is not needed
        reads.append(flt)
        return list(stored)

    key = ("alice", "local:big.xlsx", "h1")
    rows = [
        {"id": f"c{i}", "owner": key[0], "item_id": key[1], "item_hash": key[2], "text": f"row {i}"}
        for i in range(10)
    ]
    tallies = Tallies()
    for start in range(0, 10, 2):
        stored += rows[start : start + 2]
        [parts] = tallies.update(rows[start : start + 2], read)
    whole = item_parts(key, rows)
    assert whole is not None and len(reads) == 1
    assert parts.sparse.indices == whole.sparse.indices
    assert parts.sparse.values == pytest.approx(whole.sparse.values)

    # A chunk stored again (its text changed) is not counted twice: the item is re-read.
    stored[0] = {**rows[0], "text": "other words"}
    [again] = tallies.update([stored[0]], read)
    expected = item_parts(key, stored)
    assert len(reads) == 2 and expected is not None
    assert again.sparse.indices == expected.sparse.indices


def test_a_page_footer_ranks_after_every_passage_and_still_answers_alone(store):
    """A docx footer ("Internal — Project Atlas", on every page) matched "Atlas" as well
    as any passage and, short, scored high: third of three in the demo's search for the
    migration's risks. Page furniture now takes a place only where passages leave one."""
    risks = "The largest risk of the Atlas migration is the legacy invoice export job"
    dates = "The Atlas go-live moved to 21 March so that testing of the billing interface ends"
    footer_vector = random_unit()
    body = [
        chunk(risks, item_id="local:status.docx", locator={"paragraph": 4}),
        chunk(dates, item_id="local:plan.docx", locator={"paragraph": 2}),
    ]
    footer = chunk("Internal Project Atlas", item_id="local:status.docx", chunk=1,
                   locator={"footer": 0, "paragraph": 0}, vector=footer_vector)  # fmt: skip
    store.add([*body, footer])

    hits = store.search("alice", text="Atlas", dense=None, mode="bm25", k=3)
    assert {h.id for h in hits[:2]} == {n.node_id for n in body} and hits[2].id == footer.node_id
    top_two = store.search("alice", text="Atlas", dense=None, mode="bm25", k=2)
    assert footer.node_id not in {h.id for h in top_two}
    # Its own vector as the query: nearest of all, still after the passages.
    nearest = store.search("alice", text="", dense=np.array(footer_vector), mode="dense", k=3)
    assert nearest[-1].id == footer.node_id and len(nearest) == 3
    # Words only the footer has still find it.
    assert [h.id for h in store.search("alice", text="internal", dense=None, mode="bm25")] == [
        footer.node_id
    ]


def test_a_vector_is_found_by_the_key_of_its_text_for_its_owner_only(store):
    """``vectors_by_key``: what a sync asks before it embeds (copilot/ingest/reuse.py)."""
    shared, own = embed_key("Report\nturbine maintenance log"), embed_key("Report\nblades")
    alice = chunk("turbine maintenance log", embed_key=shared)
    copy = chunk("turbine maintenance log", item_id="local:copy.docx", embed_key=shared,
                 vector=alice.embedding)  # fmt: skip
    store.add([alice, copy, chunk("blades", embed_key=own), chunk("no key, an older index")])
    store.add([chunk("turbine maintenance log", owner="bob", embed_key=shared)])

    found = store.vectors_by_key("alice", [shared, own, embed_key("never stored")])
    assert set(found) == {shared, own}
    assert np.allclose(found[shared], alice.embedding, atol=1e-6)
    assert set(store.vectors_by_key("carol", [shared])) == set()
    assert store.vectors_by_key("alice", []) == {}
    bob = store.vectors_by_key("bob", [shared, own])
    assert set(bob) == {shared} and not np.allclose(bob[shared], alice.embedding, atol=1e-3)


def test_an_items_keyed_vectors_are_read_for_its_owner_only(store):
    """``item_vectors_by_key``: what a sync keeps of an item a delta source deleted."""
    own = [chunk(t, embed_key=embed_key(t), chunk=i) for i, t in enumerate(["a b", "c d"])]
    store.add([*own, chunk("no key"), chunk("other item", item_id="local:b.docx",
                                               embed_key=embed_key("x"))])  # fmt: skip
    store.add([chunk("a b", owner="bob", embed_key=embed_key("a b"))])
    found = store.item_vectors_by_key("alice", "local:a.docx")
    assert set(found) == {embed_key("a b"), embed_key("c d")}
    assert np.allclose(found[embed_key("a b")], own[0].embedding, atol=1e-6)
    assert store.item_vectors_by_key("carol", "local:a.docx") == {}
